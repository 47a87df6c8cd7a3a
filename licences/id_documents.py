"""The identity documents holders actually hold, by their code in the public security list of
document types (GA/T 517 style), each with its published format and check rule.

A licence's holder is found by (ID type, number) for the rest of its life, so the number is
checked at the door by the rule of its document, and stored in one spelling. Every path that
takes a holder ID (issuance, batch CSV, exchange import, holder sign-in, search, the supervisor's
audit search) goes through ``validate_holder_id`` here; ``identify`` reads the type from the
number's shape where the caller gives none. Sources of the codes and rules are in
docs/identity-documents.md; a wrong check character is refused naming the document and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pycountry

from core.clock import SystemClock, china_today
from core.errors import InvalidInput
from licences.identifiers import (
    DIGITS,
    EARLIEST_BIRTH,
    ID_TYPE_RESIDENT,
    ID_TYPE_USCC,
    resident_check,
    validate_resident_id,
    validate_uscc,
)

ID_TYPE_PASSPORT = "414"  # 普通护照 (GA/T 517)
ID_TYPE_HK_MACAO_PERMIT = "516"  # 港澳居民来往内地通行证 (GA/T 517: 港澳同胞回乡证)
ID_TYPE_TAIWAN_PERMIT = "511"  # 台湾居民来往大陆通行证 (GA/T 517)
ID_TYPE_PERMANENT_RESIDENCE = "553"  # 外国人永久居留身份证 (GA/T 517: 外国人永久居留证)
ID_TYPE_RESIDENCE_PERMIT = "560"  # 港澳台居民居住证: project code, none found in GA/T 517

CHINA = "CHN"
COUNTRY_SEPARATOR = ":"  # a foreign passport is stored as "<ISO 3166-1 alpha-3>:<number>"
# 港澳台居民居住证 address codes: 香港 810000, 澳门 820000, 台湾 830000 (State Council 2018 measures).
RESIDENCE_PERMIT_REGIONS = {"810000": "香港", "820000": "澳门", "830000": "台湾"}

_CHINESE_PASSPORT = re.compile(r"[EG][0-9]{8}|E[A-HJ-NP-Z][0-9]{7}")
_FOREIGN_PASSPORT = re.compile(r"[0-9A-Z]{5,20}")
_HK_MACAO_PERMIT = re.compile(r"[HM]([0-9]{8}|[0-9]{10})")
_TAIWAN_PERMIT = re.compile(r"[0-9]{8}|[0-9]{10}[A-Z]")
_OLD_PERMANENT_RESIDENCE = re.compile(r"([A-Z]{3})[0-9]{12}")
_COUNTRIES_ALPHA3 = frozenset(c.alpha_3 for c in pycountry.countries)

Fail = Callable[[str, str], InvalidInput]


@dataclass(frozen=True)
class IdDocument:
    """One document type: its code, names and whether its holder is a natural person."""

    code: str
    zh: str
    en: str
    is_person: bool
    validate: Callable[[str, date | None, Fail], str]


def _fail_for(zh: str, en: str, field: str) -> Fail:
    def fail(zh_rule: str, en_rule: str) -> InvalidInput:
        return InvalidInput(f"{zh}{zh_rule} / {en} {en_rule}", field=field)

    return fail


def _clean(value: object, fail: Fail) -> str:
    """Upper-cased, with the spaces and brackets people type around permit letters removed."""
    if not isinstance(value, str):
        raise fail("须为字符串", "must be a string")
    return re.sub(r"[\s()（）]", "", value).upper()


def _birth_date(text: str, today: date | None, fail: Fail) -> None:
    try:
        born = date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise fail(f"出生日期 {text} 不存在", f"date of birth {text} is not a real date") from None
    if born > (today or china_today(SystemClock().now())):
        raise fail(f"出生日期 {text} 晚于今天", f"date of birth {text} is in the future")
    if born < EARLIEST_BIRTH:
        raise fail(f"出生日期 {text} 早于 1900 年", f"date of birth {text} is before 1900")


def _gb11643_form(number: str, today: date | None, fail: Fail) -> str:
    """The 18-character GB 11643 form shared by residence permits and the 2023 permanent
    residence card: 17 digits, a real date of birth at positions 7-14, MOD 11-2 check."""
    if len(number) != 18:
        raise fail(f"应为 18 位，实为 {len(number)} 位", f"has 18 characters, not {len(number)}")
    if any(c not in DIGITS for c in number[:17]) or number[17] not in "0123456789X":
        raise fail("前 17 位应为数字，末位为数字或 X", "is 17 digits then a digit or X")
    _birth_date(number[6:14], today, fail)
    if resident_check(number[:17]) != number[17]:
        raise fail(
            "校验码错误 (GB 11643 ISO 7064 MOD 11-2)",
            "has a wrong check character (GB 11643, ISO 7064 MOD 11-2)",
        )
    return number


def _resident(value: str, today: date | None, fail: Fail) -> str:
    """GB 11643, refusing the numbers of the two documents that borrow its form: a holder has
    one record, so a residence permit or permanent residence card number is taken only under
    its own type, never as a second "resident" of the same person."""
    number = validate_resident_id(value, today, field="holder.id")
    if number[:6] in RESIDENCE_PERMIT_REGIONS:
        raise fail(
            f"地址码 {number[:6]} 属于港澳台居民居住证，证件类型应为 {ID_TYPE_RESIDENCE_PERMIT}",
            f"address code {number[:6]} is a residence permit's; its id_type is "
            f"{ID_TYPE_RESIDENCE_PERMIT}",
        )
    if number.startswith("9"):
        raise fail(
            f"首位 9 属于外国人永久居留身份证，证件类型应为 {ID_TYPE_PERMANENT_RESIDENCE}",
            f"a leading 9 is a permanent residence card's; its id_type is "
            f"{ID_TYPE_PERMANENT_RESIDENCE}",
        )
    return number


def _uscc(value: str, today: date | None, fail: Fail) -> str:
    return validate_uscc(value, field="holder.id")


def _passport(value: str, today: date | None, fail: Fail) -> str:
    """A Chinese ordinary passport: G + 8 digits (before 2012), E + 8 digits (electronic), or
    E + a letter other than I and O + 7 digits (from April 2017); no check character is
    published for the number. Another country's: its ISO 3166-1 alpha-3 code, a colon, and
    5-20 letters or digits (ICAO 9303 check digits belong to the MRZ, not the number)."""
    text = _clean(value, fail)
    country, separator, number = text.rpartition(COUNTRY_SEPARATOR)
    if not separator:
        country, number = CHINA, text
    if country not in _COUNTRIES_ALPHA3:
        raise fail(
            f"签发国代码 {country!r} 不是 ISO 3166-1 三字母代码",
            f"issuing country {country!r} is not an ISO 3166-1 alpha-3 code",
        )
    if country == CHINA:
        if not _CHINESE_PASSPORT.fullmatch(number):
            raise fail(
                "（中国）应为 E 或 G 加 8 位数字，或 E 加字母（不含 I、O）加 7 位数字",
                "(Chinese) is E or G and 8 digits, or E, a letter other than I and O, 7 digits",
            )
        return number
    if not _FOREIGN_PASSPORT.fullmatch(number):
        raise fail("号码应为 5-20 位字母或数字", "number is 5-20 letters or digits")
    return f"{country}{COUNTRY_SEPARATOR}{number}"


def _hk_macao(value: str, today: date | None, fail: Fail) -> str:
    """H (Hong Kong) or M (Macao) and 8 digits (card, 2013 on), or the older 10 digits."""
    text = _clean(value, fail)
    if not _HK_MACAO_PERMIT.fullmatch(text):
        raise fail(
            "应为 H 或 M 加 8 位数字（旧版 10 位数字）",
            "is H or M then 8 digits (10 digits on older permits)",
        )
    return text


def _taiwan(value: str, today: date | None, fail: Fail) -> str:
    """8 digits (card, 2015 on), or the older 10 digits with its issue letter, e.g. 0123456789(B)."""
    text = _clean(value, fail)
    if not _TAIWAN_PERMIT.fullmatch(text):
        raise fail(
            "应为 8 位数字（旧版 10 位数字加 1 个字母）",
            "is 8 digits (10 digits and a letter on older permits)",
        )
    return text


def _residence_permit(value: str, today: date | None, fail: Fail) -> str:
    """A 港澳台居民居住证 number: a GB 11643 citizen number whose address code is 810000,
    820000 or 830000."""
    number = _gb11643_form(_clean(value, fail), today, fail)
    if number[:6] not in RESIDENCE_PERMIT_REGIONS:
        raise fail(
            f"地址码应为 810000、820000 或 830000，实为 {number[:6]}",
            f"address code is 810000, 820000 or 830000, not {number[:6]}",
        )
    return number


def _permanent_residence(value: str, today: date | None, fail: Fail) -> str:
    """The 2023 card: 18 characters, 9 first, GB 11643 form with the MOD 11-2 check. The 2004/2017
    card: an ISO 3166-1 alpha-3 nationality code and 12 digits (no check rule is published)."""
    text = _clean(value, fail)
    if old := _OLD_PERMANENT_RESIDENCE.fullmatch(text):
        if old.group(1) not in _COUNTRIES_ALPHA3:
            raise fail(
                f"（旧版）国籍代码 {old.group(1)} 不是 ISO 3166-1 三字母代码",
                f"(old form) nationality {old.group(1)} is not an ISO 3166-1 alpha-3 code",
            )
        return text
    if len(text) == 18 and not text.startswith("9"):
        raise fail("（2023 版）首位应为 9", "(2023 form) starts with 9")
    if len(text) != 18:
        raise fail(
            "应为 18 位（2023 版）或 3 个字母加 12 位数字（旧版）",
            "has 18 characters (2023 form) or 3 letters and 12 digits (old form)",
        )
    return _gb11643_form(text, today, fail)


DOCUMENTS: dict[str, IdDocument] = {
    d.code: d
    for d in (
        IdDocument(ID_TYPE_RESIDENT, "居民身份证", "resident ID", True, _resident),
        IdDocument(ID_TYPE_USCC, "统一社会信用代码", "credit code", False, _uscc),
        IdDocument(ID_TYPE_PASSPORT, "护照", "passport", True, _passport),
        IdDocument(
            ID_TYPE_HK_MACAO_PERMIT,
            "港澳居民来往内地通行证",
            "Mainland Travel Permit for Hong Kong and Macao Residents",
            True,
            _hk_macao,
        ),
        IdDocument(
            ID_TYPE_TAIWAN_PERMIT,
            "台湾居民来往大陆通行证",
            "Mainland Travel Permit for Taiwan Residents",
            True,
            _taiwan,
        ),
        IdDocument(
            ID_TYPE_RESIDENCE_PERMIT,
            "港澳台居民居住证",
            "Residence Permit for Hong Kong, Macao and Taiwan Residents",
            True,
            _residence_permit,
        ),
        IdDocument(
            ID_TYPE_PERMANENT_RESIDENCE,
            "外国人永久居留身份证",
            "Foreign Permanent Resident ID Card",
            True,
            _permanent_residence,
        ),
    )
}
PERSON_ID_TYPES = frozenset(code for code, d in DOCUMENTS.items() if d.is_person)


def is_person_id_type(id_type: str) -> bool:
    return id_type in PERSON_ID_TYPES


def validate_holder_id(id_type: str, value: str, today: date | None = None) -> str:
    """Validate a holder's ID number by its type code and return the stored spelling."""
    document = DOCUMENTS.get(id_type) if isinstance(id_type, str) else None
    if document is None:
        known = "、".join(f"{c} {d.zh}" for c, d in DOCUMENTS.items())
        raise InvalidInput(
            f"证件类型 {id_type!r} 未知（支持 {known}） / id_type {id_type!r} is unknown "
            f"(one of {', '.join(DOCUMENTS)})",
            field="holder.id_type",
        )
    fail = _fail_for(f"{document.zh}号码", f"{document.en} number", "holder.id")
    return document.validate(value, today, fail)


# Tried in this order when no type is given: the checked 18-character forms first (their check
# characters make a false match unlikely), then the unchecked shapes.
_GUESS_ORDER = (
    ID_TYPE_RESIDENT,
    ID_TYPE_RESIDENCE_PERMIT,
    ID_TYPE_PERMANENT_RESIDENCE,
    ID_TYPE_USCC,
    ID_TYPE_HK_MACAO_PERMIT,
    ID_TYPE_TAIWAN_PERMIT,
    ID_TYPE_PASSPORT,
)


def identify(value: str, today: date | None = None) -> tuple[str, str]:
    """The (type, stored number) of an ID given without its type (search boxes). The person
    documents exclude one another, so at most one matches. When nothing matches, the error is
    a resident ID's (for 17 leading digits) or a credit code's: the rule most callers broke."""
    errors: dict[str, InvalidInput] = {}
    for code in _GUESS_ORDER:
        try:
            return code, validate_holder_id(code, value, today)
        except InvalidInput as exc:
            errors[code] = exc
    body = value.strip()[:17] if isinstance(value, str) else ""
    digits = len(body) == 17 and all(c in DIGITS for c in body)
    raise errors[ID_TYPE_RESIDENT if digits else ID_TYPE_USCC]
