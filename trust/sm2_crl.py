"""The SM2 CAs' CRLs (GB/T 20518 profile, signed with SM2 through the key store).

A CA's CRL lists the SM2 certificates it issued whose followed ECDSA certificate row is revoked
or on hold (``trust.sm2_records``): the seal's one revocation row decides both forms, so no seal
code has to remember the SM2 CRL. A CRL is kept on the authority's row and made anew only when
what it lists changed (a digest of the entries), when it nears its next update, or when none
exists — so a relying party's fetch costs no signature while nothing changes.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from core.db import as_utc
from core.errors import NotFound
from keys.audit import AuditedKeyUse
from keys.store import KeyRef
from trust.models import CertificateRecord
from trust.sm2_records import Sm2AuthorityRecord, Sm2CertificateRecord
from trust.sm2_x509 import CrlEntry, Sm2Signer, build_crl

if TYPE_CHECKING:
    from trust.sm2_pki import Sm2Pki

CRL_LIFETIME = timedelta(hours=24)
CRL_REFRESH_MARGIN = timedelta(hours=12)


def current_crl(pki: Sm2Pki, session: Session, ca_name: str, actor: str) -> bytes:
    """The SM2 CA's current DER CRL. Made anew when none exists, when it nears its next
    update, or when what it should list changed (a seal revoked, suspended or resumed)."""
    authority = session.get(Sm2AuthorityRecord, ca_name)
    if authority is None:
        raise NotFound(f"没有该 SM2 CA / no SM2 CA named {ca_name}")
    ca_cert, ca_record = pki.authority(session, ca_name)
    entries = _entries(session, ca_record.serial)
    fingerprint = hashlib.sha256(
        "\n".join(f"{e.serial} {e.revoked_at.isoformat()} {e.reason}" for e in entries).encode()
    ).hexdigest()
    now = pki.now()
    if (
        authority.crl_der is not None
        and authority.crl_next_update is not None
        and authority.crl_entries_sha256 == fingerprint
        and as_utc(authority.crl_next_update) - CRL_REFRESH_MARGIN > now
    ):
        return authority.crl_der
    locked = session.get(Sm2AuthorityRecord, ca_name, with_for_update=True)
    assert locked is not None
    locked.crl_number += 1
    signer = Sm2Signer(
        pki.keystore,
        KeyRef.parse(ca_record.key_ref),
        AuditedKeyUse(pki.audit, session, actor),
        "sm2-crl",
    )
    der = build_crl(
        ca=ca_cert,
        signer=signer,
        number=locked.crl_number,
        now=now,
        lifetime=CRL_LIFETIME,
        entries=entries,
    )
    locked.crl_der = der
    locked.crl_next_update = now + CRL_LIFETIME
    locked.crl_entries_sha256 = fingerprint
    session.add(locked)
    session.flush()
    return der


def _entries(session: Session, ca_serial: str) -> list[CrlEntry]:
    rows = session.exec(
        select(Sm2CertificateRecord, CertificateRecord)
        .join(
            CertificateRecord,
            col(CertificateRecord.serial) == col(Sm2CertificateRecord.follows_serial),
        )
        .where(
            Sm2CertificateRecord.issuer_serial == ca_serial,
            CertificateRecord.status != "good",
        )
        .order_by(col(Sm2CertificateRecord.serial))
    ).all()
    return [
        CrlEntry(sm2.serial, as_utc(followed.revoked_at), followed.revocation_reason)
        for sm2, followed in rows
        if followed.revoked_at is not None
    ]
