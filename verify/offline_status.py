"""The domain's signed status list, read and checked offline: what lets a counter with no network
say PASSED for a printed licence.

A printed code proves the licence was issued; only a current status list (``docs/status-list.md``:
a compact JWS ``vc+jwt`` whose payload is a W3C BitstringStatusListCredential) says it has not
been revoked since. The list is believed only through the pinned trust list
(``verify.offline``): its JWS must verify under one of the list's ``credential_keys``, its ``id``
must be the list's ``status_list.url`` and its issuer the list's ``domain.base_url`` — otherwise
it is another domain's list, or a forgery, and the answer is INDETERMINATE / NO_CHAIN_FOUND with
the one-line reason. A list that is not this format (``typ``, ``type``, ``statusPurpose``,
``statusSize``) or whose bits are malformed or inflate past ``licences.bitstring.MAX_ENTRIES`` (a
GZIP bomb is a small download) is refused the same way, never with a traceback.

Loading (:func:`load_status_list`) does not depend on the time, so a list is read once and used
for many codes; :func:`check_status` applies the time: a list not yet valid, past its
``validUntil`` or older than the licence (its index beyond the list's entries) is
INDETERMINATE / TRY_LATER, as is a code with no index (printed before status lists) or no list.
Times a person reads are Beijing time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from core.errors import InvalidInput
from licences.bitstring import STATUS_SIZE, BitstringError, EntryStatus, decode, entry
from licences.payload import Claims
from trust.jose import ALG, MAX_TOKEN, JwsError, public_key_of, verify_compact
from verify.report import Indication, SubIndication
from verify.steps import Steps

TYP = "vc+jwt"
CONTEXT = "https://www.w3.org/ns/credentials/v2"
CREDENTIAL_TYPES = ("VerifiableCredential", "BitstringStatusListCredential")
SUBJECT_TYPE = "BitstringStatusList"
PURPOSE = "message"
# How times are shown to a person: Beijing time is UTC+8 all year. Only times are shown in it
# here; the licence's validity date is core.clock.china_today's, as everywhere.
BEIJING_TIME = timezone(timedelta(hours=8))

UNPUBLISHED = (
    "信任列表未发布状态列表的签名密钥或地址 / the pinned trust list publishes no status list "
    "(no credential key or status_list.url)"
)
UNKNOWN_KEY = (
    "状态列表的签名密钥不在固定的信任列表中 / the status list is signed by a key that is not "
    "in the pinned trust list"
)
BROKEN = (
    "状态列表签名无效（已被改动或伪造） / the status list's signature does not verify "
    "(altered or forged)"
)
NO_LIST = (
    "未提供状态列表，离线无法确认证照当前状态，请下载状态列表（--status-list）或联网核验 / no "
    "status list: the current status cannot be confirmed offline; pass --status-list or verify "
    "online"
)
NO_INDEX = (
    "此二维码印制于状态列表启用之前，离线无法确认当前状态，请联网核验 / this code was printed "
    "before status lists; verify online"
)

PASSED_AS_OF = (
    "证照真实有效（状态截至北京时间 {as_of}）/ the licence is genuine and valid as of {as_of} "
    "Beijing time"
)

# What each entry means to the verifier (licences.bitstring's table).
FAILURE_OF_ENTRY = {
    EntryStatus.REVOKED: SubIndication.REVOKED,
    EntryStatus.SUSPENDED: SubIndication.SUSPENDED,
    EntryStatus.SUPERSEDED: SubIndication.SUPERSEDED,
}


@dataclass(frozen=True)
class StatusSource:
    """What the pinned trust list says about its status list: the keys that sign it (by
    ``kid``), its URL and its issuer (the domain's base URL)."""

    keys: Mapping[str, ec.EllipticCurvePublicKey]
    url: str | None
    issuer: str | None


NOWHERE = StatusSource(MappingProxyType({}), None, None)  # a trust list that names no status list


@dataclass(frozen=True)
class StatusList:
    """A status list that verified under the pinned trust list, its bits inflated."""

    raw: bytes
    url: str
    kid: str
    valid_from: datetime
    valid_until: datetime

    @property
    def length(self) -> int:
        return len(self.raw) * 8 // STATUS_SIZE

    # Worded once per list, not once per code: a counter checks many codes against one list.
    @cached_property
    def as_of(self) -> str:
        return beijing(self.valid_from)

    @cached_property
    def as_of_iso(self) -> str:
        return beijing_iso(self.valid_from)

    @cached_property
    def until(self) -> str:
        return beijing(self.valid_until)

    @cached_property
    def _json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "kid": self.kid,
            "entries": self.length,
            "valid_from": self.as_of_iso,
            "valid_until": beijing_iso(self.valid_until),
        }

    def to_json(self) -> dict[str, Any]:
        return dict(self._json)


@dataclass(frozen=True)
class Refused:
    """A status list that is not believed: the sub-indication and the one-line reason."""

    sub: SubIndication
    reason: str


def status_source(document: Any) -> StatusSource:
    """The credential keys, status-list URL and issuer a trust-list document names. A key entry
    that is not an ES256 P-256 JWK whose ``kid`` is its thumbprint is left out: a list may not
    name a key by another key's id, and nothing it signs is then believed."""
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    entries = document.get("credential_keys") if isinstance(document, dict) else None
    for item in entries if isinstance(entries, list) else []:
        if not isinstance(item, dict) or item.get("alg") != ALG:
            continue
        jwk = item.get("jwk")
        if not isinstance(jwk, dict) or item.get("kid") != jwk.get("kid"):
            continue
        try:
            keys[str(item["kid"])] = public_key_of(jwk)
        except JwsError:
            continue
    listed = document.get("status_list") if isinstance(document, dict) else None
    url = listed.get("url") if isinstance(listed, dict) else None
    domain = document.get("domain") if isinstance(document, dict) else None
    issuer = domain.get("base_url") if isinstance(domain, dict) else None
    return StatusSource(
        keys, url if isinstance(url, str) else None, issuer if isinstance(issuer, str) else None
    )


def read_status_list(path: Path) -> bytes:
    """The file's bytes, at most one more than a JWS may have (the rest is never read)."""
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_TOKEN + 1)
    except OSError as exc:
        raise InvalidInput(
            f"无法读取状态列表 / cannot read the status list {path}: {exc.strerror}",
            field="status-list",
        ) from None


def load_status_list(data: bytes | str, source: StatusSource) -> StatusList | Refused:
    """The list, once its signature, format and origin hold; else why it is refused."""
    if not source.keys or source.url is None or source.issuer is None:
        return Refused(SubIndication.NO_CHAIN_FOUND, UNPUBLISHED)
    try:
        token = data.decode("ascii") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        return _malformed("not ASCII text")
    asked: list[str] = []

    def lookup(kid: str) -> ec.EllipticCurvePublicKey | None:
        asked.append(kid)
        return source.keys.get(kid)

    try:
        header, payload = verify_compact(token, lookup, typ=TYP)
    except JwsError as exc:
        if asked and asked[0] not in source.keys:
            return Refused(SubIndication.NO_CHAIN_FOUND, f"{UNKNOWN_KEY} ({asked[0][:64]})")
        if asked:
            return Refused(SubIndication.NO_CHAIN_FOUND, f"{BROKEN}: {exc}")
        return _malformed(str(exc))
    try:
        return _credential(header, payload, source)
    except (BitstringError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        return _malformed(str(exc)[:200])
    except _Foreign as exc:
        return Refused(SubIndication.NO_CHAIN_FOUND, str(exc))


class _Foreign(Exception):
    """A well-formed list that names another list or another issuer."""


def _malformed(detail: str) -> Refused:
    return Refused(
        SubIndication.NO_CHAIN_FOUND,
        f"不是本格式的状态列表 / not a status list of this format: {detail}",
    )


def _credential(header: dict[str, Any], payload: bytes, source: StatusSource) -> StatusList:
    """The credential's members, in the order a reader meets them."""
    if header.get("cty", "vc") != "vc":
        raise ValueError(f"cty {header.get('cty')!r} is not vc")
    body = json.loads(payload)
    if not isinstance(body, dict):
        raise ValueError("the payload is not a JSON object")
    context = body["@context"]
    if not isinstance(context, list) or not context or context[0] != CONTEXT:
        raise ValueError(f"@context must start with {CONTEXT}")
    types = body["type"]
    if not isinstance(types, list) or not all(t in types for t in CREDENTIAL_TYPES):
        raise ValueError(f"type {types!r} is not a BitstringStatusListCredential")
    subject = body["credentialSubject"]
    if subject["type"] != SUBJECT_TYPE:
        raise ValueError(f"credentialSubject.type {subject['type']!r} is not {SUBJECT_TYPE}")
    if subject["statusPurpose"] not in (PURPOSE, [PURPOSE]):
        raise ValueError(f"statusPurpose {subject['statusPurpose']!r} is not {PURPOSE}")
    if subject.get("statusSize", STATUS_SIZE) != STATUS_SIZE:
        raise ValueError(f"statusSize {subject['statusSize']!r} is not {STATUS_SIZE}")
    issuer = body["issuer"]
    issuer_id = issuer["id"] if isinstance(issuer, dict) else issuer
    if body["id"] != source.url:
        raise _Foreign(
            f"状态列表不属于该信任域 / the status list {body['id']!r} is not the trust list's "
            f"{source.url}"
        )
    if issuer_id != source.issuer:
        raise _Foreign(
            f"状态列表的签发者不是该信任域 / the status list's issuer {issuer_id!r} is not the "
            f"trust domain {source.issuer}"
        )
    valid_from, valid_until = _time(body["validFrom"]), _time(body["validUntil"])
    if valid_until <= valid_from:
        raise ValueError("validUntil is not after validFrom")
    encoded = subject["encodedList"]
    if not isinstance(encoded, str):
        raise ValueError("encodedList is not a string")
    return StatusList(decode(encoded), str(body["id"]), str(header["kid"]), valid_from, valid_until)


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("validFrom and validUntil must be RFC 3339 times")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{value} has no time zone")
    return moment


def beijing(moment: datetime) -> str:
    """A time as a person at the counter reads it."""
    return moment.astimezone(BEIJING_TIME).strftime("%Y-%m-%d %H:%M")


def beijing_iso(moment: datetime) -> str:
    return moment.astimezone(BEIJING_TIME).isoformat(timespec="seconds")


def check_status(
    claims: Claims, status: StatusList | Refused | None, steps: Steps, now: datetime
) -> str:
    """The licence's entry in the list, as of the list's ``validFrom``: the PASSED message, or
    the Stop raised (FAILED for a set entry, INDETERMINATE when the list cannot tell)."""
    index = claims.status_index
    if index is None:
        raise steps.fail(
            "status", "no status index", Indication.INDETERMINATE, SubIndication.TRY_LATER, NO_INDEX
        )
    if status is None:
        raise steps.fail(
            "status", "no status list", Indication.INDETERMINATE, SubIndication.TRY_LATER, NO_LIST
        )
    if isinstance(status, Refused):
        raise steps.fail(
            "status_list", status.reason, Indication.INDETERMINATE, status.sub, status.reason
        )
    steps.extra["status_list"] = status.to_json()
    if now < status.valid_from:
        reason = (
            f"状态列表尚未生效（{beijing(status.valid_from)} 起），请核对本机时间 / the status "
            f"list is not valid until {beijing(status.valid_from)} Beijing time; check this "
            "device's clock"
        )
        raise steps.fail(
            "status_list", reason, Indication.INDETERMINATE, SubIndication.TRY_LATER, reason
        )
    if now > status.valid_until:
        reason = (
            f"状态列表已过期（有效至 {beijing(status.valid_until)}），请下载最新状态列表 / the "
            f"status list is out of date since {beijing(status.valid_until)} Beijing time; "
            "download a fresh one"
        )
        raise steps.fail(
            "status_list", reason, Indication.INDETERMINATE, SubIndication.TRY_LATER, reason
        )
    if index >= status.length:
        reason = (
            f"状态列表早于这份证照，请下载最新状态列表 / the status list predates this licence "
            f"(entry {index}, the list has {status.length}); download a fresh one"
        )
        raise steps.fail(
            "status_list", reason, Indication.INDETERMINATE, SubIndication.TRY_LATER, reason
        )
    as_of = status.as_of
    steps.extra["status_as_of"] = status.as_of_iso
    steps.ok(
        "status_list",
        f"signed by credential key {status.kid}, valid until {status.until} Beijing time",
    )
    found = entry(status.raw, index)
    detail = f"entry {index}: {found.message}, as of {as_of} Beijing time (北京时间)"
    if found is not EntryStatus.VALID:
        raise steps.fail("status", detail, Indication.FAILED, FAILURE_OF_ENTRY[found])
    steps.ok("status", detail)
    return PASSED_AS_OF.format(as_of=as_of)
