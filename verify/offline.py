"""Offline verification of a QR payload against a downloaded trust list: no server, no database.

What can be known offline is narrower than online, and the indication says so:

* a **presentation** code was minted by the service only for a licence valid at that moment, and
  lives a few minutes; a valid signature within its window is PASSED (status as of
  ``presented_at``);
* a **printed licence** code proves the licence was issued by this domain, but not that it is
  still valid (it may have been revoked since it was printed): past ``valid_until`` (the China
  date) it is FAILED / EXPIRED; otherwise its entry in the domain's signed **status list**
  (``--status-list``, ``verify.offline_status``), read through this pinned trust list, decides:
  PASSED as of the list's ``validFrom``, FAILED / REVOKED, SUSPENDED or SUPERSEDED; without a
  current list that covers it, INDETERMINATE / TRY_LATER, never PASSED.

The trust list is the domain's signed trust list (``GET /pki/trust-list``), with a ``qr_keys``
member (``kid``, ``alg``, ``public_key_pem``). Offline there is no server to ask whose list it
is, so the verifier **pins** the SHA-256 of the domain's trust-list signer certificate
(``--fingerprint``, or a pin saved once with ``elicence trust pin``), as federation does. Nothing
is PASSED unless the file is anchored to that pin: its signer certificate has the pinned
fingerprint, its JWS verifies under it (``trust.trustlist.verify_trust_list``: ``typ``,
algorithm, signature length), the signer is issued by a CA of the list with the trust-list
signing EKU and valid now, and ``next_update`` is present and still ahead (a list past it may
miss a withdrawn key). Without a pin, with an unsigned key file (``GET /pki/qr-keys``) or a list
from another signer the answer is INDETERMINATE / NO_CHAIN_FOUND; a list without or past its
``next_update`` is INDETERMINATE / TRY_LATER. Each says why in one line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.clock import china_today
from core.errors import InvalidInput
from licences.identifiers import LicenceIdentifier
from licences.links import code_from_text, is_random_code
from licences.payload import Claims, PayloadType, key_id
from licences.qrkeys import ALG
from trust.federation_list import authenticate, parse
from trust.trustlist import fingerprint
from verify.code import check_signed
from verify.offline_status import (
    NOWHERE,
    Refused,
    StatusList,
    StatusSource,
    check_status,
    status_source,
)
from verify.report import Indication, Report, SubIndication
from verify.steps import Steps, Stop, build_report, qr_wording

NO_PIN = (
    "未固定信任列表签名者，请用 --fingerprint SHA256 或 elicence trust pin 固定 / no pinned "
    "trust-list signer: pass --fingerprint SHA256, or save one with `elicence trust pin`"
)
UNSIGNED = (
    "二维码密钥文件未签名，离线核验只接受签名的信任列表 / an unsigned key file is refused; "
    "use the domain's signed trust list (GET /pki/trust-list)"
)
NO_NEXT_UPDATE = (
    "信任列表没有下次更新时间，无法判断是否过期，请下载最新列表 / the trust list has no "
    "next_update, so it cannot be known to be current; download a fresh one"
)
STALE = "信任列表已过期，请联网更新后再核验 / the trust list is out of date; download a fresh one"


@dataclass(frozen=True)
class TrustedKeys:
    """The QR keys of a trust-list file and whether the file is anchored to the pin.

    ``refusal`` (sub-indication, one-line reason) is set when it is not: then nothing verified
    against these keys is PASSED."""

    keys: dict[bytes, ec.EllipticCurvePublicKey]
    next_update: datetime | None = None
    signed: bool = False
    refusal: tuple[SubIndication, str] | None = None
    signer: str | None = None  # the pinned signer's fingerprint, once anchored
    signer_valid: tuple[datetime, datetime] | None = None
    # Who signs the status list and where it is; believed only once the list is anchored.
    status: StatusSource = NOWHERE


def load_qr_keys(path: Path, pinned: str | None = None) -> TrustedKeys:
    """The QR keys of a trust-list file, by key id (recomputed from each key), and whether the
    file is anchored to the pinned signer fingerprint."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        keys = _qr_keys(data["qr_keys"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"无法读取信任列表 / cannot read the trust list {path}: {exc}", field="trust-list"
        ) from None
    signed = "signature" in data
    if not signed:
        return TrustedKeys(keys, refusal=(SubIndication.NO_CHAIN_FOUND, UNSIGNED))
    if pinned is None:
        return TrustedKeys(keys, signed=True, refusal=(SubIndication.NO_CHAIN_FOUND, NO_PIN))
    try:
        authenticate(data, pinned)
        if not isinstance(data.get("next_update"), str):
            return TrustedKeys(keys, signed=True, refusal=(SubIndication.TRY_LATER, NO_NEXT_UPDATE))
        listed = parse(data)
    except InvalidInput as refused:
        return TrustedKeys(
            keys, signed=True, refusal=(SubIndication.NO_CHAIN_FOUND, refused.message)
        )
    return TrustedKeys(
        keys,
        listed.next_update,
        signed=True,
        signer=fingerprint(listed.signer),
        signer_valid=(listed.signer.not_valid_before_utc, listed.signer.not_valid_after_utc),
        status=status_source(data),
    )


def _qr_keys(entries: Any) -> dict[bytes, ec.EllipticCurvePublicKey]:
    if not isinstance(entries, list):
        raise TypeError("qr_keys is not a list")
    keys: dict[bytes, ec.EllipticCurvePublicKey] = {}
    for entry in entries:
        if entry.get("alg") != ALG:
            continue
        public = serialization.load_pem_public_key(entry["public_key_pem"].encode("ascii"))
        if not isinstance(public, ec.EllipticCurvePublicKey):
            continue
        kid = key_id(public)
        if entry.get("kid") != kid.hex():
            raise ValueError(f"kid {entry.get('kid')} does not match its key")
        keys[kid] = public
    return keys


def _check_anchor(trusted: TrustedKeys, steps: Steps, now: datetime) -> None:
    """Raise the Stop that keeps a result from being PASSED when the list is not anchored to
    the pin, or not current."""
    if trusted.refusal is not None:
        sub, reason = trusted.refusal
        raise steps.fail("trust_list", reason, Indication.INDETERMINATE, sub, reason)
    if trusted.signer is None or trusted.signer_valid is None or trusted.next_update is None:
        raise steps.fail(
            "trust_list", NO_PIN, Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND, NO_PIN
        )
    if trusted.next_update <= now:
        raise steps.fail(
            "trust_list",
            f"out of date since {trusted.next_update.isoformat()}; download a fresh one",
            Indication.INDETERMINATE,
            SubIndication.TRY_LATER,
            STALE,
        )
    not_before, not_after = trusted.signer_valid
    if not not_before <= now <= not_after:
        reason = "信任列表签名证书不在有效期内 / the trust-list signer certificate is not valid now"
        raise steps.fail(
            "trust_list", reason, Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND, reason
        )
    steps.ok("trust_list", f"signed trust list, signer {trusted.signer} as pinned")


def verify_offline(
    text: str,
    trusted: TrustedKeys,
    now: datetime,
    channel: str = "cli",
    status: StatusList | Refused | None = None,
) -> Report:
    """The offline answer for a QR text; ``status`` is the status list loaded once
    (``verify.offline_status.load_status_list`` with ``trusted.status``) for as many codes."""
    steps = Steps(wording=qr_wording)
    code = code_from_text(text)
    passed: str | None = None
    try:
        _check_anchor(trusted, steps, now)
        if code is None or is_random_code(code):
            raise steps.fail(
                "format",
                "not a signed QR payload; earlier random codes can only be checked online",
                Indication.FAILED if code is None else Indication.INDETERMINATE,
                SubIndication.UNKNOWN_CODE if code is None else SubIndication.TRY_LATER,
            )
        signed = check_signed(code, steps, trusted.keys.get, now)
        claims = signed.claims
        steps.extra["claims"] = _claims_json(signed.claims)
        if claims.type is PayloadType.PRESENTATION:
            steps.ok("status", "valid when presented (checked by the service when minted)")
        elif claims.valid_until is not None and claims.valid_until < china_today(now):
            raise steps.fail(
                "validity",
                f"valid until {claims.valid_until.isoformat()}",
                Indication.FAILED,
                SubIndication.EXPIRED,
            )
        else:
            steps.ok("validity", "within its validity dates")
            passed = check_status(claims, status, steps, now)
        stop = None
    except Stop as failed:
        stop = failed
    steps.extra["offline"] = True
    if passed is None:
        return build_report(steps, stop, at=now, channel=channel)
    return build_report(steps, stop, at=now, channel=channel, passed=passed)


def _claims_json(claims: Claims) -> dict[str, Any]:
    arcs = LicenceIdentifier.parse(claims.identifier)  # once: each property parses it again
    return {
        "type": claims.type.name.lower(),
        "identifier": claims.identifier,
        "issuer_code": arcs.issuer_code,
        "version": int(arcs.version),
        "valid_until": claims.valid_until.isoformat() if claims.valid_until else None,
        "issued_at": claims.issued_at.isoformat(),
        "expires_at": claims.expires_at.isoformat() if claims.expires_at else None,
        "status_index": claims.status_index,
    }
