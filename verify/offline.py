"""Offline verification of a QR payload against a downloaded trust list: no server, no database.

What can be known offline is narrower than online, and the indication says so:

* a **presentation** code was minted by the service only for a licence valid at that moment, and
  lives a few minutes; a valid signature within its window is PASSED (status as of
  ``presented_at``);
* a **printed licence** code proves the licence was issued by this domain, but not that it is
  still valid (it may have been revoked since it was printed): a valid signature within the
  validity dates is INDETERMINATE / TRY_LATER, never PASSED; past ``valid_until`` it is FAILED.

The trust list is a JSON file with a ``qr_keys`` member (``kid``, ``alg``, ``public_key_pem``):
the domain's signed trust list (``GET /pki/trust-list``, whose signature is then checked with
``trust.trustlist.verify_trust_list``) or the bare key file ``GET /pki/qr-keys``. A list past its
``next_update`` may miss a withdrawn key, so nothing is PASSED against it.
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
from licences.links import code_from_text, is_legacy_code
from licences.payload import Claims, PayloadType, key_id
from licences.qrkeys import ALG
from trust.trustlist import verify_trust_list
from verify.code import Steps, Stop, check_signed
from verify.report import MESSAGES, Indication, Report, SubIndication


@dataclass(frozen=True)
class TrustedKeys:
    keys: dict[bytes, ec.EllipticCurvePublicKey]
    next_update: datetime | None = None
    signed: bool = False


def load_qr_keys(path: Path) -> TrustedKeys:
    """The QR keys of a trust-list file, by key id; the id is recomputed from each key."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        signed = "signature" in data
        if signed and not verify_trust_list(data):
            raise ValueError("its signature does not verify")
        next_update = data.get("next_update")
        entries = data["qr_keys"]
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
        until = datetime.fromisoformat(next_update.replace("Z", "+00:00")) if next_update else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"无法读取信任列表 / cannot read the trust list {path}: {exc}", field="trust-list"
        ) from None
    return TrustedKeys(keys, until, signed)


def verify_offline(text: str, trusted: TrustedKeys, now: datetime, channel: str = "cli") -> Report:
    steps = Steps()
    code = code_from_text(text)
    try:
        if trusted.next_update is not None and trusted.next_update < now:
            raise steps.fail(
                "trust_list",
                f"out of date since {trusted.next_update.isoformat()}; download a fresh one",
                Indication.INDETERMINATE,
                SubIndication.TRY_LATER,
                "信任列表已过期，请联网更新后再核验 / the trust list is out of date; "
                "download a fresh one",
            )
        steps.ok("trust_list", "signed trust list" if trusted.signed else "QR key file")
        if code is None or is_legacy_code(code):
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
            raise steps.fail(
                "status",
                "offline: revocation and suspension need the repository",
                Indication.INDETERMINATE,
                SubIndication.TRY_LATER,
            )
        indication, sub, message = Indication.PASSED, None, MESSAGES[None]
    except Stop as stop:
        indication, sub, message = stop.indication, stop.sub, stop.message
    steps.extra["offline"] = True
    return Report(
        indication=indication,
        sub_indication=sub,
        message=message,
        checks=tuple(steps.checks),
        validated_at=now,
        channel=channel,
        extra=steps.extra,
    )


def _claims_json(claims: Claims) -> dict[str, Any]:
    return {
        "type": claims.type.name.lower(),
        "identifier": claims.identifier,
        "issuer_code": claims.issuer_code,
        "version": claims.version,
        "valid_until": claims.valid_until.isoformat() if claims.valid_until else None,
        "issued_at": claims.issued_at.isoformat(),
        "expires_at": claims.expires_at.isoformat() if claims.expires_at else None,
    }
