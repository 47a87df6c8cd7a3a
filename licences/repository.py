"""Reading the repository: licences by identifier, verification code or SHA-256, and their
status *now* — expiry is computed from the validity dates, so no scheduled job is needed.

A purpose-stamped copy (加注件, ``licences.stamped``) is found by its own SHA-256 or code, and
is returned as the licence it copies *as the copy shows it*: a new, unsaved ``Licence`` object
with the licence's data and live status, but the copy's digest, code, seal, certificate and
sealing time. ``full_record`` recognises such an object (it is transient: never in a session)
and adds the copy's purpose to the record, so a verifier needs no second path for copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import inspect
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from core.clock import CHINA as CHINA  # re-exported: the one date rule lives in core.clock
from core.clock import china_today as china_today
from core.errors import NotFound
from licences.digests import SupersededDigest
from licences.models import Holder, Licence, LicenceDocument, LicenceStatus, LicenceType
from licences.photos import stored_digest
from licences.stamped_records import StampedCopy
from seals.models import Department, Seal


@dataclass(frozen=True)
class LicenceRecord:
    licence: Licence
    licence_type: LicenceType
    holder: Holder  # named as the licence was issued (``Licence.holder_name``)
    issuer: Department
    seal: Seal
    purpose: str | None = None  # a stamped copy's printed purpose: 仅供办理……使用
    stamped_copy: str | None = None  # the copy's id
    photo_sha256: str | None = None  # of the holder's photo as stored now (licences.photos)


def effective_status(licence: Licence, today: date) -> LicenceStatus:
    status = LicenceStatus(licence.status)
    if status is LicenceStatus.VALID:
        if licence.valid_until is not None and licence.valid_until < today:
            return LicenceStatus.EXPIRED
    return status


def licence_by_identifier(
    session: Session, identifier: str, *, for_update: bool = False
) -> Licence:
    """``for_update`` locks the row (PostgreSQL) so two changes of one licence serialise."""
    licence = session.get(Licence, identifier, with_for_update=for_update or None)
    if licence is None:
        raise NotFound(f"证照不存在 / no licence {identifier}", field="identifier")
    return licence


def licence_by_code(session: Session, code: str) -> Licence | None:
    licence = session.exec(select(Licence).where(Licence.verify_code == code)).first()
    if licence is None:
        return _copy_where(session, col(StampedCopy.verify_code) == code)
    return licence


def licence_by_sha256(session: Session, digest: str) -> Licence | None:
    """The licence whose stored PDF has this digest now, or had it before an archive
    timestamp was appended (a copy downloaded earlier is still that licence)."""
    licence = session.exec(select(Licence).where(Licence.sha256 == digest)).first()
    if licence is None:
        earlier = session.get(SupersededDigest, digest)
        if earlier is not None:
            licence = session.get(Licence, earlier.identifier)
    if licence is None:
        licence = _copy_where(session, col(StampedCopy.sha256) == digest)
    return licence


def _copy_where(session: Session, condition: object) -> Licence | None:
    """The licence a stamped copy copies, as the copy shows it (see the module docstring)."""
    copy = session.exec(
        select(StampedCopy).options(defer(StampedCopy.pdf)).where(condition)  # type: ignore[arg-type]
    ).first()
    if copy is None:
        return None
    licence = session.get(Licence, copy.identifier)
    if licence is None:
        return None
    clone = Licence(**licence.model_dump())
    clone.sha256 = copy.sha256
    clone.verify_code = copy.verify_code
    clone.seal_code = copy.seal_code
    clone.seal_certificate_serial = copy.seal_certificate_serial
    clone.issued_at = copy.created_at  # when this document was sealed
    return clone


def holder_as_issued(licence: Licence, holder: Holder) -> Holder:
    """The holder as this licence names them: the name it was issued under, not the registered
    name as corrected since (``licences.holders``). A detached copy, never saved."""
    if not licence.holder_name or licence.holder_name == holder.name:
        return holder
    return Holder(
        id=holder.id,
        id_type=holder.id_type,
        id_number=holder.id_number,
        name=licence.holder_name,
    )


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
    holder = holder_as_issued(licence, holder)
    photo = stored_digest(session, licence.identifier)
    if inspect(licence).transient:  # a stamped copy's view of its licence
        copy = session.exec(
            select(StampedCopy.id, StampedCopy.stamp_text).where(
                StampedCopy.sha256 == licence.sha256
            )
        ).first()
        if copy is not None:
            return LicenceRecord(
                licence, licence_type, holder, issuer, seal, copy[1], copy[0], photo
            )
    return LicenceRecord(licence, licence_type, holder, issuer, seal, photo_sha256=photo)


def holder_licence(
    session: Session, identifier: str, id_type: str, id_number: str, *, for_update: bool = False
) -> Licence:
    """A licence of this holder; another holder's is reported exactly like a missing one, so
    nobody learns which identifiers exist."""
    licence = session.get(Licence, identifier, with_for_update=for_update or None)
    holder = session.get(Holder, licence.holder_id) if licence is not None else None
    if (
        licence is None
        or holder is None
        or (holder.id_type, holder.id_number) != (id_type, id_number)
    ):
        raise NotFound(f"证照不存在 / no licence {identifier}", field="identifier")
    return licence


def licences_of_holder(session: Session, id_type: str, id_number: str) -> list[Licence]:
    """Every licence (each version) issued to a holder, newest first."""
    holder = session.exec(
        select(Holder).where(Holder.id_type == id_type, Holder.id_number == id_number)
    ).first()
    if holder is None:
        return []
    return list(
        session.exec(
            select(Licence)
            .where(Licence.holder_id == holder.id)
            .order_by(col(Licence.issued_at).desc(), col(Licence.identifier))
        )
    )


def document(session: Session, identifier: str) -> bytes:
    row = session.get(LicenceDocument, identifier)
    if row is None:
        raise NotFound(f"证照文件不存在 / no document for {identifier}")
    return row.pdf
