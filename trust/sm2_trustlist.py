"""The SM2 part of the signed trust list: the SM2 CAs and the SM2 seal certificates.

Additive: a ``sm2`` member beside ``cas`` and ``seals``, present once the domain has its SM2
hierarchy; the list itself stays signed with the trust-list key (ES256), so every relying party
that reads the list today reads it unchanged. Fingerprints are SHA-256 of the DER, as for the
ECDSA entries; a seal's SM2 certificate names the ECDSA certificate it follows, whose status it
shares.
"""

from __future__ import annotations

import base64
import hashlib
import textwrap
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.db import as_utc
from trust.sm2_pki import SM2_CA_NAMES, Sm2Pki


def pem(der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def _seal_status(status: str, not_after: datetime, now: datetime) -> str:
    if status == "revoked":
        return "revoked"
    if status == "hold":
        return "suspended"
    return "expired" if not_after <= now else "valid"


def ca_entries(pki: Sm2Pki, session: Session) -> list[dict[str, Any]]:
    """The SM2 CAs as published (and as ``elicence trust sm2`` shows them)."""
    entries = []
    for ca_name in SM2_CA_NAMES:
        certificate, record = pki.authority(session, ca_name)
        entries.append(
            {
                "name": ca_name,
                "subject": certificate.subject.human_friendly,
                "not_after": as_utc(record.not_after).isoformat(),
                "certificate": pem(record.der),
                "sha256": hashlib.sha256(record.der).hexdigest(),
                "crl_url": pki.endpoints.crl(ca_name),
                "ocsp_url": pki.endpoints.ocsp,
            }
        )
    return entries


def sm2_members(pki: Sm2Pki, session: Session, now: datetime) -> dict[str, Any]:
    """``{"sm2": {...}}``, or nothing for a domain without SM2 CAs (a key store without SM2)."""
    if not pki.is_initialised(session):
        return {}
    cas = [
        {k: v for k, v in entry.items() if k not in ("subject", "not_after")}
        for entry in ca_entries(pki, session)
    ]
    seals = []
    for record in pki.seal_certificates(session):
        status = pki.status(session, record)
        seals.append(
            {
                "seal": record.name,
                "serial": record.serial,
                "follows": record.follows_serial,
                "certificate": pem(record.der),
                "status": _seal_status(status.status, as_utc(record.not_after), now),
            }
        )
    return {
        "sm2": {
            "signature_algorithm": "1.2.156.10197.1.501",  # SM2-with-SM3, ID 1234567812345678
            "cas": cas,
            "seals": seals,
        }
    }
