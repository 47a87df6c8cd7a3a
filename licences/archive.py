"""Keeping sealed licences verifiable for decades: ``elicence archive refresh``.

A licence sealed as PAdES B-LTA ends with a document timestamp. Its proof holds only while
that timestamp's TSA certificate is valid; before it expires, a new document timestamp from a
newer TSA certificate (with the revocation data of the old one) is appended, and the chain of
proofs goes on (ETSI EN 319 142-1, PAdES-LTA "augmentation").

The appended revision changes the stored bytes and their SHA-256. The licence row takes the new
digest, the old one is kept in ``licence_superseded_digest`` so an earlier download is still
recognised, and each refresh is audited. ``licence_archive`` records, per licence, when its
newest timestamp's certificate expires, so finding what is due reads no PDF twice.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers import PdfTimeStamper
from pyhanko.sign.validation.generic_cms import extract_tst_data_iter
from sqlalchemy import Column, DateTime
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import as_utc, reading, transaction
from core.errors import Conflict, Unavailable
from keys.audit import KeyUseRecorder
from licences.digests import SupersededDigest
from licences.models import Licence, LicenceDocument
from seals.ltv import InProcessTimeStamper, LongTermSealing
from trust.authority import TrustDomain
from trust.services import ensure_service_certificates
from trust.tsa import TimeStampAuthority

# Refresh when the newest timestamp's certificate expires within this margin.
REFRESH_MARGIN = timedelta(days=365)


class ArchiveState(SQLModel, table=True):
    __tablename__ = "licence_archive"

    identifier: str = Field(primary_key=True, foreign_key="licence.identifier", max_length=96)
    sha256: str = Field(max_length=64)  # the document this row describes
    timestamp_certificate: str | None = Field(default=None, max_length=40)
    timestamp_expires_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True, index=True)
    )
    refreshed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    refresh_count: int = 0


@dataclass(frozen=True)
class Refreshed:
    identifier: str
    old_sha256: str
    new_sha256: str
    expired_certificate_at: str | None
    new_certificate_expires_at: str


def last_timestamp_certificate(pdf: bytes) -> asn1_x509.Certificate | None:
    """The TSA certificate of the newest timestamp in the file: the last document timestamp,
    else the seal's signature timestamp; None for a seal without any timestamp."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    stamps = list(reader.embedded_timestamp_signatures)
    if stamps:
        return stamps[-1].signer_cert
    for signature in reader.embedded_regular_signatures:
        for tst in extract_tst_data_iter(signature.signer_info, signed=False):
            serial_issuer = tst["signer_infos"][0]["sid"].chosen
            for choice in tst["certificates"]:
                cert = choice.chosen
                if cert.serial_number == serial_issuer["serial_number"].native:
                    return cert
    return None


class ArchiveService:
    def __init__(
        self,
        *,
        engine: Engine,
        trust: TrustDomain,
        tsa: TimeStampAuthority,
        long_term: LongTermSealing,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._trust = trust
        self._tsa = tsa
        self._long_term = long_term
        self._audit = audit
        self._clock = clock

    def index(self) -> int:
        """Describe every licence whose row is missing or stale; returns how many were read."""
        with reading(self._engine) as session:
            known = {row.identifier: row.sha256 for row in session.exec(select(ArchiveState))}
            stale = [
                (identifier, digest)
                for identifier, digest in session.exec(select(Licence.identifier, Licence.sha256))
                if known.get(identifier) != digest
            ]
        for identifier, digest in stale:
            with transaction(self._engine) as session:
                document = session.get(LicenceDocument, identifier)
                if document is None:
                    continue
                self._describe(session, identifier, digest, document.pdf)
        return len(stale)

    def _describe(self, session: Session, identifier: str, digest: str, pdf: bytes) -> None:
        certificate = last_timestamp_certificate(pdf)
        row = session.get(ArchiveState, identifier) or ArchiveState(
            identifier=identifier, sha256=""
        )
        row.sha256 = digest
        row.timestamp_certificate = format(certificate.serial_number, "x") if certificate else None
        row.timestamp_expires_at = (
            certificate["tbs_certificate"]["validity"]["not_after"].native if certificate else None
        )
        session.add(row)

    def due(self, margin: timedelta = REFRESH_MARGIN) -> list[str]:
        """Licences whose newest timestamp certificate expires within ``margin``, except those
        already timestamped with the TSA certificate in use (nothing newer to add)."""
        horizon = self._clock.now() + margin
        with reading(self._engine) as session:
            current = format(self._tsa.unit(session).certificate.serial_number, "x")
            rows = session.exec(
                select(ArchiveState).where(col(ArchiveState.timestamp_expires_at).is_not(None))
            ).all()
        return sorted(
            row.identifier
            for row in rows
            if row.timestamp_expires_at is not None
            and as_utc(row.timestamp_expires_at) < horizon
            and row.timestamp_certificate != current
        )

    def refresh_due(
        self, actor: str, margin: timedelta = REFRESH_MARGIN, limit: int | None = None
    ) -> list[Refreshed]:
        with transaction(self._engine) as session:
            # A TSA certificate near its end is renewed first, so the new timestamps outlast it.
            ensure_service_certificates(self._trust, session, actor)
        self.index()
        due = self.due(margin)
        return [self.refresh(identifier, actor) for identifier in due[:limit]]

    def refresh(self, identifier: str, actor: str) -> Refreshed:
        recorder = KeyUseRecorder()
        with reading(self._engine) as session:
            licence = session.get(Licence, identifier)
            document = session.get(LicenceDocument, identifier)
            if licence is None or document is None:
                raise Conflict(f"证照不存在 / no licence {identifier}")
            old_digest, pdf = licence.sha256, document.pdf
            unit = self._tsa.unit(session)
            previous = last_timestamp_certificate(pdf)
            extra = [x509.load_der_x509_certificate(previous.dump())] if previous else []
            context = self._long_term.validation_context(session, [], unit, recorder, extra=extra)
        new_expiry = unit.certificate["tbs_certificate"]["validity"]["not_after"].native
        if previous is not None and previous.serial_number == unit.certificate.serial_number:
            raise Unavailable(
                "时间戳证书尚未更新 / the TSA certificate has not been renewed; run `elicence init`"
            )
        output = io.BytesIO()
        PdfTimeStamper(InProcessTimeStamper(unit, recorder)).update_archival_timestamp_chain(
            PdfFileReader(io.BytesIO(pdf), strict=False), context, in_place=False, output=output
        )
        new_pdf = output.getvalue()
        new_digest = self._replace(
            identifier, old_digest, new_pdf, unit.certificate.serial_number, recorder, actor
        )
        return Refreshed(
            identifier=identifier,
            old_sha256=old_digest,
            new_sha256=new_digest,
            expired_certificate_at=(
                previous["tbs_certificate"]["validity"]["not_after"].native.isoformat()
                if previous
                else None
            ),
            new_certificate_expires_at=new_expiry.isoformat(),
        )

    def _replace(
        self,
        identifier: str,
        old_digest: str,
        new_pdf: bytes,
        tsa_serial: int,
        recorder: KeyUseRecorder,
        actor: str,
    ) -> str:
        """Store the re-timestamped bytes in place of ``old_digest``'s, which stays findable as
        superseded; refused when the licence changed while it was re-timestamped."""
        new_digest = hashlib.sha256(new_pdf).hexdigest()
        now = self._clock.now()
        with transaction(self._engine) as session:
            licence = session.get(Licence, identifier, with_for_update=True)
            document = session.get(LicenceDocument, identifier)
            if licence is None or document is None or licence.sha256 != old_digest:
                raise Conflict(f"证照在更新期间已改变 / licence {identifier} changed meanwhile")
            session.add(
                SupersededDigest(sha256=old_digest, identifier=identifier, superseded_at=now)
            )
            licence.sha256 = new_digest
            document.pdf = new_pdf
            session.add(licence)
            session.add(document)
            self._describe(session, identifier, new_digest, new_pdf)
            state = session.get(ArchiveState, identifier)
            assert state is not None
            state.refreshed_at = now
            state.refresh_count += 1
            recorder.flush(self._audit, session, actor)
            self._audit.append(
                session,
                actor=actor,
                action="licence.archive_timestamp",
                object_type="licence",
                object_id=identifier,
                detail={
                    "old_sha256": old_digest,
                    "sha256": new_digest,
                    "tsa_certificate": format(tsa_serial, "x"),
                },
            )
        return new_digest
