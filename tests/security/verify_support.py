"""A small repository for the decision tests of an uploaded PDF: one department, seal, licence
type, holder and licence in an in-memory database, plus this domain's certificate records, and
good synthesised facts of an examined seal. No PDF and no demo domain: each test builds its own
in milliseconds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.clock import FixedClock
from licences.models import Holder, Licence, LicenceType
from seals.models import Department, Seal
from tests.security.support import NOW, memory_engine
from trust.models import CertificateRecord
from verify.pdf import PdfVerifier, Prepared
from verify.report import Report
from verify.signature import Revocation, SignatureFacts, TimestampFacts, TrustAnchors

SEAL_SERIAL = 0x4ABC  # the seal certificate, as the examination reports it ("4abc" stored)
TSA_SERIAL = 0x7575
DIGEST = "ab" * 32
IDENTIFIER = "LIC-0001"
SEALED = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)  # the seal timestamp's time
SIGNED = datetime(2025, 6, 1, 3, 59, tzinfo=UTC)  # the signer's own claim
ANCHORS = TrustAnchors((b"root",), ())


def token(**changes: Any) -> TimestampFacts:
    good = TimestampFacts(
        intact=True, valid=True, trusted=True, time=SEALED, signer_serial=TSA_SERIAL,
        signer_subject="Common Name: 测试时间戳 Test TSA", signer_der=b"tsa",
    )
    return replace(good, **changes)


def facts(**changes: Any) -> SignatureFacts:
    """Every fact of an examined licence seal is good, apart from ``changes``."""
    good = SignatureFacts(
        moment=NOW, signatures=1, docmdp=1, intact=True, valid=True, trusted=True,
        signer_der=b"seal", signer_serial=SEAL_SERIAL, signer_subject="Common Name: 测试印章",
        coverage="ENTIRE_FILE", modification="NONE", docmdp_ok=True, signing_time=SIGNED,
        claimed_time=SEALED, timestamp=token(),
    )
    return replace(good, **changes)


def engine(*, licence: bool = True, **licence_changes: Any) -> Engine:
    """The database: the licence with ``DIGEST``, sealed with ``SEAL_SERIAL`` (unless changed)."""
    db = memory_engine()
    if not licence:
        return db
    with Session(db) as session:
        session.add(Department(code="D1", name="测试局", division_code="110000", level="municipal"))
        session.add(Seal(
            code="S1", department_code="D1", seal_type="02", name="证照专用章",
            certificate_serial="9999", key_ref="memory:seal:1",
            valid_from=datetime(2024, 1, 1, tzinfo=UTC), valid_until=datetime(2030, 1, 1, tzinfo=UTC),
            image_png=b"png",
        ))
        session.add(LicenceType(
            code="T1", name="测试许可证", authority_code="D1", authority_name="测试局",
            authority_level="municipal", holder_category="legal_person", holder_id_type="49",
            field_schema={},
        ))
        session.add(Holder(id=1, id_type="49", id_number="91110000000000000X", name="测试公司"))
        values: dict[str, Any] = {
            "identifier": IDENTIFIER, "type_code": "T1", "issuer_code": "D1", "serial": "0001",
            "holder_id": 1, "fields": {}, "valid_from": date(2025, 6, 1),
            "valid_until": date(2028, 5, 31), "issued_at": SEALED, "verify_code": "CODE",
            "sha256": DIGEST, "seal_code": "S1", "seal_certificate_serial": "4abc",
        }
        values.update(licence_changes)
        session.add(Licence(**values))
        session.commit()
    return db


def certificate(
    session: Session, serial: int, *, issuer: int | None, subject: str, status: str = "good",
    revoked_at: datetime | None = None, reason: str | None = None,
) -> None:
    session.add(CertificateRecord(
        serial=format(serial, "x"), role="seal", name=subject, subject=subject,
        issuer_serial=format(issuer, "x") if issuer is not None else None,
        not_before=datetime(2024, 1, 1, tzinfo=UTC), not_after=datetime(2030, 1, 1, tzinfo=UTC),
        pem="-", key_ref="memory:x:1", status=status, revoked_at=revoked_at,
        revocation_reason=reason,
    ))
    session.commit()


def verifier(now: datetime = NOW, max_bytes: int = 10**6) -> PdfVerifier:
    return PdfVerifier(clock=FixedClock(now), anchors=lambda _s: ANCHORS, max_bytes=max_bytes)


def decide(
    db: Engine, found: SignatureFacts, *, revoked: tuple[Revocation, ...] = (),
    now: datetime = NOW, digest: str = DIGEST,
) -> Report:
    prepared = Prepared(data=b"%PDF-", digest=digest, anchors=ANCHORS, revoked=revoked, moment=now)
    with Session(db) as session:
        return verifier(now).decide(session, prepared, found, "upload")


def rows(report: Report) -> list[tuple[str, str, str]]:
    return [(c.name, c.result.value, c.detail) for c in report.checks]


def later(moment: datetime, **delta: float) -> datetime:
    return moment + timedelta(**delta)
