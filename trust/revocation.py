"""Revocation, holds and CRLs of the certificates the trust domain's CAs issued.

``trust.authority.TrustDomain`` builds the hierarchy and issues certificates; this is the other
half of a CA's life, the status of what it issued: revoking (or holding) a certificate publishes
a new CRL of its issuer at once, in the caller's transaction, and a CRL is made anew when none
exists or it nears its next update. The domain holds one ``Revocation`` as ``trust.revocation``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import as_utc
from core.errors import Conflict, InvalidInput, NotFound
from keys.audit import AuditedKeyUse
from keys.signing import private_key_for
from keys.store import KeyRef, KeyStore
from trust.crl import REASONS, CrlRecord, build_crl
from trust.models import AuthorityRecord, CertificateRecord

if TYPE_CHECKING:
    from trust.authority import TrustDomain

CRL_LIFETIME = timedelta(hours=24)
CRL_REFRESH_MARGIN = timedelta(hours=12)


class Revocation:
    """Revoke, hold and release certificates of the domain, and keep each CA's CRL current."""

    def __init__(
        self, domain: TrustDomain, *, keystore: KeyStore, clock: Clock, audit: AuditLog
    ) -> None:
        self._domain = domain
        self._keys = keystore
        self._clock = clock
        self._audit = audit

    def revoke(
        self, session: Session, *, actor: str, serial: str, reason: str
    ) -> CertificateRecord:
        """Revoke (or, with ``certificateHold``, suspend) a certificate and publish a new CRL.

        A held certificate may later be revoked for good; it keeps the date of the hold, so
        nothing signed while it was held becomes acceptable.
        """
        if reason not in REASONS:
            raise InvalidInput(
                f"未知的吊销原因 / unknown revocation reason {reason}; one of "
                + ", ".join(REASONS),
                field="reason",
            )
        record = session.get(CertificateRecord, serial)
        if record is None:
            raise NotFound(f"证书不存在 / no certificate {serial}")
        if record.status == "revoked":
            raise Conflict("证书已吊销 / the certificate is already revoked")
        hold = reason == "certificateHold"
        if hold and record.status == "hold":
            raise Conflict("证书已暂停 / the certificate is already on hold")
        if record.status != "hold" or record.revoked_at is None:
            record.revoked_at = self._clock.now()
        record.status = "hold" if hold else "revoked"
        record.revocation_reason = reason
        session.add(record)
        self._audit.append(
            session,
            actor=actor,
            action="certificate.revoke",
            object_type="certificate",
            object_id=serial,
            detail={"reason": reason},
        )
        self._publish_crl_for(session, record, actor)
        return record

    def release_hold(self, session: Session, *, actor: str, serial: str) -> CertificateRecord:
        """Lift a certificateHold: the entry leaves the next CRL and OCSP answers good again."""
        record = session.get(CertificateRecord, serial)
        if record is None:
            raise NotFound(f"证书不存在 / no certificate {serial}")
        if record.status != "hold":
            raise Conflict(
                f"证书未处于暂停状态 / the certificate is {record.status}, not on hold",
                extra={"current_status": record.status},
            )
        record.status = "good"
        record.revoked_at = None
        record.revocation_reason = None
        session.add(record)
        self._audit.append(
            session,
            actor=actor,
            action="certificate.release",
            object_type="certificate",
            object_id=serial,
            detail={},
        )
        self._publish_crl_for(session, record, actor)
        return record

    def _publish_crl_for(self, session: Session, record: CertificateRecord, actor: str) -> None:
        session.flush()
        issuer = session.exec(
            select(AuthorityRecord).where(
                AuthorityRecord.certificate_serial == record.issuer_serial
            )
        ).first()
        if issuer is not None:
            self._issue_crl(session, issuer.name, actor)

    def crl(self, session: Session, ca_name: str, actor: str = "system") -> bytes:
        """The current CRL (DER). Made anew when none exists or it is within 12 h of expiry."""
        authority = session.get(AuthorityRecord, ca_name)
        if authority is None:
            raise NotFound(f"没有该CA / no CA named {ca_name}")
        existing = session.get(CrlRecord, ca_name)
        if (
            existing is not None
            and as_utc(existing.next_update) - CRL_REFRESH_MARGIN > self._clock.now()
        ):
            return existing.der
        return self._issue_crl(session, ca_name, actor)

    def _issue_crl(self, session: Session, ca_name: str, actor: str) -> bytes:
        ca_cert, ca_record = self._domain.authority(session, ca_name)
        authority = session.get(AuthorityRecord, ca_name, with_for_update=True)
        assert authority is not None
        authority.crl_number += 1
        now = self._clock.now()
        revoked = session.exec(
            select(CertificateRecord).where(
                CertificateRecord.issuer_serial == ca_record.serial,
                CertificateRecord.status != "good",
            )
        )
        key = private_key_for(
            self._keys,
            KeyRef.parse(ca_record.key_ref),
            "crl",
            AuditedKeyUse(self._audit, session, actor),
        )
        der = build_crl(
            ca_cert=ca_cert,
            ca_key=key,
            number=authority.crl_number,
            now=now,
            lifetime=CRL_LIFETIME,
            revoked=revoked,
        )
        record = session.get(CrlRecord, ca_name) or CrlRecord(
            ca_name=ca_name, der=b"", next_update=now
        )
        record.der = der
        record.next_update = now + CRL_LIFETIME
        record.crl_number = authority.crl_number
        session.add(authority)
        session.add(record)
        session.flush()
        return der
