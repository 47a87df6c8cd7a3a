"""Reading the repository: licences by identifier, verification code or SHA-256, and their
status *now* — expiry is computed from the validity dates, so no scheduled job is needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, select

from core.errors import NotFound
from licences.models import Holder, Licence, LicenceDocument, LicenceStatus, LicenceType
from seals.models import Department, Seal


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


def licence_by_identifier(session: Session, identifier: str) -> Licence:
    licence = session.get(Licence, identifier)
    if licence is None:
        raise NotFound(f"证照不存在 / no licence {identifier}", field="identifier")
    return licence


def licence_by_code(session: Session, code: str) -> Licence | None:
    return session.exec(select(Licence).where(Licence.verify_code == code)).first()


def licence_by_sha256(session: Session, digest: str) -> Licence | None:
    return session.exec(select(Licence).where(Licence.sha256 == digest)).first()


def full_record(session: Session, licence: Licence) -> LicenceRecord:
    licence_type = session.get(LicenceType, licence.type_code)
    holder = session.get(Holder, licence.holder_id)
    issuer = session.get(Department, licence.issuer_code)
    seal = session.get(Seal, licence.seal_code)
    if licence_type is None or holder is None or issuer is None or seal is None:
        raise NotFound(f"证照记录不完整 / licence {licence.identifier} is incomplete")
    return LicenceRecord(licence, licence_type, holder, issuer, seal)


def document(session: Session, identifier: str) -> bytes:
    row = session.get(LicenceDocument, identifier)
    if row is None:
        raise NotFound(f"证照文件不存在 / no document for {identifier}")
    return row.pdf
