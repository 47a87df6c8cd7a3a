"""Identifiers and their check characters: licence identifiers (GB/T 36904), resident identity
numbers (GB 11643), unified social credit codes (GB 32100, with the GB 11714 organisation code
inside).

Every check here exists to catch a mistyped or corrupted code at the door, before it becomes a
holder record or a licence identifier that can never be changed. Validators return the normalised
value so callers store one spelling; they raise ``InvalidInput`` naming the rule that was broken.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Container
from dataclasses import dataclass, replace
from datetime import date

from core.clock import SystemClock, china_today
from core.errors import Conflict, InvalidInput

ALNUM36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM36_VALUE = {c: i for i, c in enumerate(ALNUM36)}
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V: they read as 1, 0, 2, 5, U
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# GB 32100 registration authorities: 机构编制 1, 外交 2, 司法行政 3, 文化 4, 民政 5, 旅游 6, 宗教 7,
# 工会 8, 工商 9, 中央军委改革和编制办公室 A, 农业 N, 其他 Y.
REGISTRATION_AUTHORITIES = frozenset("123456789ANY")
RESIDENT_ID_CHECK = "10X98765432"
RESIDENT_ID_WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))
EARLIEST_BIRTH = date(1900, 1, 1)
DIGITS = frozenset("0123456789")  # str.isdigit() would also accept "١" and "²"

PREFIX = "1.2.156.3005.2."  # GB/T 36904 object identifier arc for electronic licences
MAX_SERIAL = 32
MAX_IDENTIFIER = len(PREFIX) + 21 + 18 + MAX_SERIAL + 3 + 1 + 4  # 94; the column holds 96
ID_TYPE_RESIDENT = "111"  # 居民身份证
ID_TYPE_USCC = "001"  # 统一社会信用代码

Fail = Callable[[str, str], InvalidInput]


def _failer(field: str, zh_name: str, en_name: str) -> Fail:
    """Errors for one field and one kind of code: "<名称><规则> / <name> <rule>"."""

    def fail(zh: str, en: str) -> InvalidInput:
        return InvalidInput(f"{zh_name}{zh} / {en_name} {en}", field=field)

    return fail


def _text(value: object, fail: Fail) -> str:
    """Reject non-strings up front: JSON bodies can carry numbers where a code belongs."""
    if not isinstance(value, str):
        raise fail("须为字符串", "must be a string")
    return value


def _bad_position(text: str, allowed: Container[str]) -> int:
    """1-based position of the first character not in ``allowed``; 0 when all are allowed."""
    return next((i for i, c in enumerate(text, start=1) if c not in allowed), 0)


# --- ISO 7064 MOD 37,36 -------------------------------------------------------------------------


def _mod37_36_state(data: str) -> int:
    """Run the ISO 7064 hybrid recurrence over characters already known to be in 0-9A-Z and
    return the final P (always 1..36)."""
    p = 36
    for char in data:
        s = (p + _ALNUM36_VALUE[char]) % 36 or 36
        p = s * 2 % 37
    return p


def mod37_36_check(data: str, *, field: str = "identifier") -> str:
    """The check character c such that one more step of the recurrence gives S = (P + c) mod 36
    = 1, the ISO 7064 hybrid validity condition; it detects every single substitution."""
    if bad := _bad_position(data, _ALNUM36_VALUE):
        fail = _failer(field, "校验数据", "check data")
        raise fail(f"第 {bad} 位不是 0-9A-Z", f"has a character outside 0-9A-Z at position {bad}")
    return ALNUM36[(1 - _mod37_36_state(data)) % 36]


def mod37_36_valid(data_with_check: str) -> bool:
    """True when the recurrence run over data and check character together ends with S = 1,
    i.e. with P = 2 * 1 mod 37 = 2 (S -> P is one-to-one on 1..36)."""
    if not isinstance(data_with_check, str) or not data_with_check:
        return False
    return (
        not _bad_position(data_with_check, _ALNUM36_VALUE) and _mod37_36_state(data_with_check) == 2
    )


# --- GB 32100 unified social credit code, with GB 11714 inside -----------------------------------


def organisation_code_check(body8: str) -> str:
    """GB 11714 check character over an organisation code's first 8 characters (A=10..Z=35);
    public so tests and demo data can build credit codes that are valid inside as well."""
    if len(body8) != 8 or _bad_position(body8, _ALNUM36_VALUE):
        raise _failer("organisation_code", "组织机构代码", "organisation code")(
            "本体应为 8 位 0-9A-Z", "body is 8 characters of 0-9A-Z"
        )
    c = 11 - sum(_ALNUM36_VALUE[ch] * w for ch, w in zip(body8, ORG_CODE_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def _uscc_check(body17: str) -> str:
    c = 31 - sum(_USCC_VALUE[ch] * w for ch, w in zip(body17, USCC_WEIGHTS, strict=True)) % 31
    return USCC_ALPHABET[c % 31]


def validate_uscc(value: str, *, field: str = "uscc") -> str:
    """Check a GB 32100 code rule by rule and return it upper-cased. The embedded organisation
    code is checked too: recomputing only the last character over a typo would otherwise pass."""
    fail = _failer(field, "统一社会信用代码", "credit code")
    code = _text(value, fail).upper()
    if len(code) != 18:
        raise fail(f"应为 18 位，实为 {len(code)} 位", f"has 18 characters, not {len(code)}")
    if bad := _bad_position(code, _USCC_VALUE):
        raise fail(
            f"第 {bad} 位字符 {code[bad - 1]!r} 不允许（不使用 I、O、Z、S、V）",
            f"character {code[bad - 1]!r} at position {bad} is not allowed (no I, O, Z, S, V)",
        )
    if code[0] not in REGISTRATION_AUTHORITIES:
        raise fail(
            f"登记管理部门代码 {code[0]} 不存在", f"registration authority {code[0]} is unknown"
        )
    if _bad_position(code[2:8], DIGITS):
        raise fail("第 3-8 位应为行政区划代码", "positions 3-8 must be a 6-digit division code")
    if organisation_code_check(code[8:16]) != code[16]:
        raise fail(
            "第 9-17 位组织机构代码校验码错误 (GB 11714)",
            "has a wrong check character in the organisation code, positions 9-17 (GB 11714)",
        )
    if _uscc_check(code[:17]) != code[17]:
        raise fail("校验码错误 (GB 32100)", "has a wrong check character (GB 32100)")
    return code


def make_uscc(body17: str) -> str:
    """Append the GB 32100 check character, then validate the whole: a body that breaks another
    rule (authority, division, organisation code) is refused rather than dressed up as valid."""
    fail = _failer("uscc", "统一社会信用代码本体", "credit code body")
    body = _text(body17, fail).upper()
    if len(body) != 17 or _bad_position(body, _USCC_VALUE):
        raise fail("应为 17 位代码字符", "is 17 characters of the credit code alphabet")
    return validate_uscc(body + _uscc_check(body))


# --- GB 11643 resident identity number -----------------------------------------------------------


def resident_check(body17: str) -> str:
    total = sum(int(c) * w for c, w in zip(body17, RESIDENT_ID_WEIGHTS, strict=True))
    return RESIDENT_ID_CHECK[total % 11]


def validate_resident_id(
    value: str, today: date | None = None, *, field: str = "resident_id"
) -> str:
    """Check a GB 11643 number and return it with an upper-case X. ``today`` defaults to the date
    in China, not on the server, so a baby registered just after midnight Beijing time passes."""
    fail = _failer(field, "居民身份证号码", "resident ID")
    number = _text(value, fail).upper()
    if len(number) != 18:
        raise fail(f"应为 18 位，实为 {len(number)} 位", f"has 18 characters, not {len(number)}")
    if _bad_position(number[:17], DIGITS) or number[17] not in "0123456789X":
        raise fail("前 17 位应为数字，末位为数字或 X", "is 17 digits then a digit or X")
    born_text = number[6:14]
    try:
        born = date(int(born_text[:4]), int(born_text[4:6]), int(born_text[6:]))
    except ValueError:
        raise fail(
            f"出生日期 {born_text} 不存在", f"date of birth {born_text} is not a real date"
        ) from None
    if born > (today or china_today(SystemClock().now())):
        raise fail(f"出生日期 {born_text} 晚于今天", f"date of birth {born_text} is in the future")
    if born < EARLIEST_BIRTH:
        raise fail(
            f"出生日期 {born_text} 早于 1900 年", f"date of birth {born_text} is before 1900"
        )
    if resident_check(number[:17]) != number[17]:
        raise fail("校验码错误 (GB 11643)", "has a wrong check character (GB 11643)")
    return number


def make_resident_id(body17: str) -> str:
    """Append the GB 11643 check character and validate the result (date of birth included)."""
    fail = _failer("resident_id", "居民身份证号码本体", "resident ID body")
    body = _text(body17, fail)
    if len(body) != 17 or _bad_position(body, DIGITS):
        raise fail("应为 17 位数字", "is 17 digits")
    return validate_resident_id(body + resident_check(body))


# --- GB/T 36904 licence identifier ---------------------------------------------------------------


def validate_licence_type_code(code: str, *, field: str = "code") -> str:
    """A licence type code: the defining authority's credit code plus a 3-digit sequence."""
    fail = _failer(field, "证照类型代码", "licence type code")
    text = _text(code, fail).upper()
    if len(text) != 21:
        raise fail(f"应为 21 位，实为 {len(text)} 位", f"has 21 characters, not {len(text)}")
    validate_uscc(text[:18], field=field)
    if _bad_position(text[18:], DIGITS):
        raise fail("末 3 位应为数字顺序码", "ends in a 3-digit sequence")
    return text


def random_serial(length: int = 12) -> str:
    """A serial from ``secrets``: unguessable, so identifiers reveal nothing about issue volume."""
    if not 1 <= length <= MAX_SERIAL:
        raise ValueError(f"serial length must be 1..{MAX_SERIAL}")
    return "".join(secrets.choice(ALNUM36) for _ in range(length))


@dataclass(frozen=True)
class LicenceIdentifier:
    """``1.2.156.3005.2.<type>.<issuer>.<serial>.<version>.<check>``. Parts must already be in
    canonical upper-case form: the string is a primary key and must have exactly one spelling."""

    type_code: str
    issuer_code: str
    serial: str
    version: str = "001"

    def __post_init__(self) -> None:
        fail = _failer("identifier", "证照标识", "identifier")
        if validate_licence_type_code(self.type_code, field="identifier") != self.type_code:
            raise fail("中的证照类型代码须为大写", "type code must be upper-case")
        if validate_uscc(self.issuer_code, field="identifier") != self.issuer_code:
            raise fail("中的颁证单位代码须为大写", "issuer code must be upper-case")
        serial = _text(self.serial, fail)
        if not 1 <= len(serial) <= MAX_SERIAL or _bad_position(serial, _ALNUM36_VALUE):
            raise fail("中的顺序号应为 1-32 位 0-9A-Z", "serial is 1-32 characters of 0-9A-Z")
        version = _text(self.version, fail)
        if len(version) != 3 or _bad_position(version, DIGITS) or version == "000":
            raise fail("中的版本号应为 001-999", "version is 3 digits, 001-999")

    @property
    def check(self) -> str:
        return mod37_36_check(self.type_code + self.issuer_code + self.serial + self.version)

    def __str__(self) -> str:
        parts = (self.type_code, self.issuer_code, self.serial, self.version, self.check)
        return PREFIX + ".".join(parts)

    @classmethod
    def parse(cls, text: str) -> LicenceIdentifier:
        """Parse and check every part; the check character catches any single mistyped character."""
        fail = _failer("identifier", "证照标识", "identifier")
        raw = _text(text, fail)
        if len(raw) > MAX_IDENTIFIER:
            raise fail(
                f"不超过 {MAX_IDENTIFIER} 个字符", f"has at most {MAX_IDENTIFIER} characters"
            )
        if not raw.startswith(PREFIX):
            raise fail(f"须以 {PREFIX} 开头", f"starts with {PREFIX}")
        parts = raw[len(PREFIX) :].split(".")
        if len(parts) != 5:
            raise fail(
                f"前缀后应有 5 段，实为 {len(parts)} 段",
                f"has 5 parts after the prefix, not {len(parts)}",
            )
        type_code, issuer_code, serial, version, check = parts
        identifier = cls(type_code, issuer_code, serial, version)
        if check != identifier.check:
            raise fail(
                "校验码错误 (ISO 7064 MOD 37,36)",
                "has a wrong check character (ISO 7064 MOD 37,36)",
            )
        return identifier

    def next_version(self) -> LicenceIdentifier:
        """The same licence's next version; a new version is a new identifier with a new check."""
        number = int(self.version) + 1
        if number > 999:
            raise Conflict("版本号已达上限 999 / the version cannot go past 999", field="version")
        return replace(self, version=f"{number:03d}")
