"""Reading the repository: licences by identifier, verification code or SHA-256, and their
status *now* — expiry is computed from the validity dates, so no scheduled job is needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from core.errors import NotFound
from licences.digests import SupersededDigest
from licences.models import Holder, Licence, LicenceDocument, LicenceStatus, LicenceType
from seals.models import Department, Seal

CHINA = ZoneInfo("Asia/Shanghai")  # validity dates are dates in China, not on the server


@dataclass(frozen=True)
class LicenceRecord:
    licence: Licence
    licence_type: LicenceType
    holder: Holder
    issuer: Department
    seal: Seal


def effective_status(licence: Licence, today: date) -> LicenceStatus:
    status = LicenceStatus(licence.status)
    if status is LicenceStatus.VALID:
        if licence.valid_until is not None and licence.valid_until < today:
            return LicenceStatus.EXPIRED
    return status


def china_today(now: datetime) -> date:
    """The date a licence's validity is measured against."""
    return now.astimezone(CHINA).date()


def licence_by_identifier(
    session: Session, identifier: str, *, for_update: bool = False
) -> Licence:
    """``for_update`` locks the row (PostgreSQL) so two changes of one licence serialise."""
    licence = session.get(Licence, identifier, with_for_update=for_update or None)
    if licence is None:
        raise NotFound(f"证照不存在 / no licence {identifier}", field="identifier")
    return licence


def licence_by_code(session: Session, code: str) -> Licence | None:
    return session.exec(select(Licence).where(Licence.verify_code == code)).first()


def licence_by_sha256(session: Session, digest: str) -> Licence | None:
    """The licence whose stored PDF has this digest now, or had it before an archive
    timestamp was appended (a copy downloaded earlier is still that licence)."""
    licence = session.exec(select(Licence).where(Licence.sha256 == digest)).first()
    if licence is None:
        earlier = session.get(SupersededDigest, digest)
        if earlier is not None:
            licence = session.get(Licence, earlier.identifier)
    return licence


def full_record(session: Session, licence: Licence) -> LicenceRecord:
    # One round trip instead of four primary-key reads (every verification calls this); rows
    # already in the session keep their in-memory state, as with ``session.get``.
    with session.no_autoflush:
        row = session.exec(
            select(LicenceType, Holder, Department, Seal)
            .select_from(LicenceType)
            .join(Holder, Holder.id == licence.holder_id)  # type: ignore[arg-type]
            .join(Department, Department.code == licence.issuer_code)  # type: ignore[arg-type]
            .join(Seal, Seal.code == licence.seal_code)  # type: ignore[arg-type]
            .where(LicenceType.code == licence.type_code)
        ).first()
    if row is None:
        raise NotFound(f"证照记录不完整 / licence {licence.identifier} is incomplete")
    licence_type, holder, issuer, seal = row
    return LicenceRecord(licence, licence_type, holder, issuer, seal)


def document(session: Session, identifier: str) -> bytes:
    row = session.get(LicenceDocument, identifier)
    if row is None:
        raise NotFound(f"证照文件不存在 / no document for {identifier}")
    return row.pdf
