"""The verification report: one indication, the checks that led to it, and repository data.

Nothing in a report comes from the text of an uploaded document: the licence and seal sections
are filled from the repository, found by the SHA-256 of the bytes or by the QR code.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Any


class Indication(str, Enum):
    PASSED = "PASSED"
    FAILED = "FAILED"
    INDETERMINATE = "INDETERMINATE"


class SubIndication(str, Enum):
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    MODIFIED_AFTER_SEALING = "MODIFIED_AFTER_SEALING"
    NOT_CERTIFIED = "NOT_CERTIFIED"
    NO_SIGNATURE = "NO_SIGNATURE"
    NO_CHAIN_FOUND = "NO_CHAIN_FOUND"
    NOT_IN_REPOSITORY = "NOT_IN_REPOSITORY"
    REVOKED = "REVOKED"
    SUSPENDED = "SUSPENDED"
    SUPERSEDED = "SUPERSEDED"
    EXPIRED = "EXPIRED"
    MALFORMED = "MALFORMED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    UNKNOWN_CODE = "UNKNOWN_CODE"
    NO_POE = "NO_POE"  # ETSI EN 319 102-1: the seal's time cannot be proven
    FORMAT_FAILURE = "FORMAT_FAILURE"  # a QR payload that does not parse
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"  # QR key id not trusted
    NOT_YET_VALID = "NOT_YET_VALID"  # a presentation dated in the future
    TRY_LATER = "TRY_LATER"  # offline: the current status needs the repository


class CheckResult(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    result: CheckResult
    detail: str


@dataclass(frozen=True)
class LicenceSummary:
    identifier: str
    type_code: str
    type_name: str
    issuer_code: str
    issuer_name: str
    holder_name: str  # masked
    holder_id: str  # masked
    valid_from: str
    valid_until: str | None
    status: str
    status_label: str
    version: int
    purpose: str | None = None  # a purpose-stamped copy (加注件): what it may be used for


@dataclass(frozen=True)
class SealSummary:
    seal_code: str
    seal_name: str
    department: str
    certificate_serial: str
    signing_time: str | None
    timestamp: str | None
    seal_type: str = ""  # GB/T 38540 type code, "02" for a licence seal
    seal_type_label: str = ""  # 电子证照专用章 ...
    department_code: str = ""


@dataclass(frozen=True)
class DomainSummary:
    """The recognised trust domain that issued a foreign licence (``verify.foreign``)."""

    name: str
    organisation: str
    fingerprint: str  # SHA-256 of its trust-list signer, as pinned here (never a peer URL)
    sequence: int  # of the list the decision used


@dataclass(frozen=True)
class Recognition:
    """The local licence type a foreign type is mapped to (``elicence federation map``)."""

    type_code: str
    type_name: str


@dataclass(frozen=True)
class Report:
    indication: Indication
    sub_indication: SubIndication | None
    message: str
    checks: tuple[Check, ...]
    validated_at: datetime
    channel: str
    licence: LicenceSummary | None = None
    seal: SealSummary | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    domain: DomainSummary | None = None  # set when another, recognised domain issued it
    recognised_as: Recognition | None = None

    def to_json(self) -> dict[str, Any]:
        # What ``asdict`` gives, built without its deep copy of every leaf (every QR answer).
        data = {
            name: None if name == "checks" else _plain(getattr(self, name))
            for name in _field_names(Report) or ()
        }
        data["indication"] = self.indication.value
        data["sub_indication"] = self.sub_indication.value if self.sub_indication else None
        data["checks"] = [
            {"name": c.name, "result": c.result.value, "detail": c.detail} for c in self.checks
        ]
        data["validated_at"] = self.validated_at.isoformat()
        return data


_LEAVES = (str, int, float, bool, type(None), Enum, datetime, date)


def _plain(value: Any) -> Any:
    """``dataclasses.asdict``'s conversion of one value: dataclasses, dicts, lists and tuples
    rebuilt, other values (strings, numbers, enums, times) kept as they are."""
    if isinstance(value, _LEAVES):
        return value
    kind: type = type(value)
    names = _field_names(kind)
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


@cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """A dataclass's field names, looked up once per class (every answer walks the same few)."""
    return tuple(f.name for f in fields(cls)) if is_dataclass(cls) else None


MESSAGES: dict[SubIndication | None, str] = {
    None: "证照真实有效 / the licence is genuine and valid",
    SubIndication.HASH_FAILURE: "文件在盖章后被改动 / the file was changed after it was sealed",
    SubIndication.SIG_CRYPTO_FAILURE: "印章签名无效 / the seal's signature is invalid",
    SubIndication.MODIFIED_AFTER_SEALING: "盖章后文件被追加修改 / content was added after sealing",
    SubIndication.NOT_CERTIFIED: "印章不是禁止修改的证照专用签章 / the seal does not lock the document",
    SubIndication.NO_SIGNATURE: "文件没有电子印章 / the file carries no electronic seal",
    SubIndication.NO_CHAIN_FOUND: "印章证书不属于本信任域 / the seal is not from a recognised trust domain",
    SubIndication.NOT_IN_REPOSITORY: "证照库中没有这份文件 / this file is not in the licence repository",
    SubIndication.REVOKED: "证照已被吊销或注销 / the licence has been revoked",
    SubIndication.SUSPENDED: "证照已暂停使用 / the licence is suspended",
    SubIndication.SUPERSEDED: "证照已变更，有更新版本 / the licence was superseded by a newer version",
    SubIndication.EXPIRED: "证照已过期 / the licence has expired",
    SubIndication.MALFORMED: "无法读取该文件 / the file cannot be read as a PDF",
    SubIndication.LIMIT_EXCEEDED: "文件超出大小限制 / the file exceeds the size limit",
    SubIndication.UNKNOWN_CODE: "无法识别该二维码 / the code is not known to this service",
    SubIndication.NO_POE: "无法证明盖章时间 / the time of sealing cannot be proven",
    SubIndication.FORMAT_FAILURE: "二维码内容格式错误或已被改动 / the QR content is malformed or was altered",
    SubIndication.NO_SIGNING_CERTIFICATE_FOUND: "二维码的签名密钥不在信任列表中 / the QR was signed with a key not in the trust list",
    SubIndication.NOT_YET_VALID: "出示码的时间晚于现在，请核对设备时间 / the presentation code is dated in the future; check the clock",
    SubIndication.TRY_LATER: "签名真实，但离线无法确认证照当前状态，请联网核验 / genuine signature, but the current status cannot be confirmed offline; verify online",
}

# A QR payload fails on its own signature, not a seal's; presentation codes expire by design.
QR_MESSAGES: dict[SubIndication | None, str] = {
    SubIndication.SIG_CRYPTO_FAILURE: "二维码签名无效，内容可能被伪造 / the QR code's signature is invalid; it may be forged",
    SubIndication.HASH_FAILURE: "二维码内容与证照库记录不一致 / the QR content does not match the repository's record",
}
PRESENTATION_EXPIRED = "出示码已过期，请持证人刷新后重新出示 / this presentation code has expired; ask the holder to show a fresh one"


def reason(method: str | None, sub: SubIndication | None) -> str:
    """The plain-words reason for a result, worded for what was verified (a QR code's expiry is
    not the licence's)."""
    if method in ("qr-payload", "presentation"):
        if method == "presentation" and sub is SubIndication.EXPIRED:
            return PRESENTATION_EXPIRED
        if sub in QR_MESSAGES:
            return QR_MESSAGES[sub]
    return MESSAGES[sub]
