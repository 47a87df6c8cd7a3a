"""Which seal may seal which licence types, and the checks on a department's registration.

GB/T 38540 makes a seal a record of its own: a department may hold a 公章, an 电子证照专用章
and business seals, each for its own purposes. The ``seal_authorisation`` table says which
licence types each seal may seal; issuance picks only among those (``SealRegistry
.seal_for_issuance``), so a seal kept for one business line never appears on another's licences.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.db import as_utc
from core.errors import InvalidInput
from seals.models import Seal, SealAuthorisation, SealStatus
from trust.models import CertificateRecord

# GB 32100: 18 characters from digits and upper-case letters without I, O, Z, S, V. The check
# character is verified where the licence identifiers live (licences.identifiers); the seals
# layer only refuses what cannot be a credit code at all.
CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")
# GB/T 2260: six digits, province (2) + city (2) + county (2), the province never 00.
DIVISION_CODE = re.compile(r"^(?!00)[0-9]{6}$")
LEVELS = ("national", "provincial", "municipal", "county", "township")


def check_department(code: str, division_code: str, level: str) -> None:
    """Refuse a department whose codes are malformed, naming the field (422)."""
    if not CREDIT_CODE.match(code):
        raise InvalidInput(
            "统一社会信用代码格式错误（18位，GB 32100） / the unified social credit code must be "
            "18 characters (GB 32100)",
            field="code",
        )
    if not DIVISION_CODE.match(division_code):
        raise InvalidInput(
            "行政区划代码须为6位数字（GB/T 2260） / the administrative division code must be "
            "6 digits (GB/T 2260)",
            field="division_code",
        )
    if level not in LEVELS:
        raise InvalidInput(
            f"层级须为 {'、'.join(LEVELS)} 之一 / level must be one of {', '.join(LEVELS)}",
            field="level",
        )


def authorised_types(session: Session, seal_code: str) -> list[str]:
    return list(
        session.exec(
            select(SealAuthorisation.licence_type_code)
            .where(SealAuthorisation.seal_code == seal_code)
            .order_by(col(SealAuthorisation.licence_type_code))
        ).all()
    )


def authorised_seals(session: Session, department_code: str, licence_type: str) -> list[Seal]:
    """The department's seals authorised for the type, newest first, whatever their status."""
    return list(
        session.exec(
            select(Seal)
            .join(SealAuthorisation, col(SealAuthorisation.seal_code) == col(Seal.code))
            .where(
                Seal.department_code == department_code,
                SealAuthorisation.licence_type_code == licence_type,
            )
            .order_by(col(Seal.valid_from).desc(), col(Seal.code))
        ).all()
    )


def authorise(
    session: Session,
    audit: AuditLog,
    *,
    seal: Seal,
    licence_type: str,
    actor: str,
    request_id: str | None = None,
) -> bool:
    """Let the seal seal the type; False when it already could (nothing written)."""
    if session.get(SealAuthorisation, (seal.code, licence_type)) is not None:
        return False
    session.add(SealAuthorisation(seal_code=seal.code, licence_type_code=licence_type))
    audit.append(
        session,
        actor=actor,
        action="seal.authorise",
        object_type="seal",
        object_id=seal.code,
        request_id=request_id,
        detail={"licence_type": licence_type},
    )
    return True


def withdraw(
    session: Session,
    audit: AuditLog,
    *,
    seal: Seal,
    licence_type: str,
    actor: str,
    request_id: str | None = None,
) -> bool:
    """Stop the seal sealing the type; licences it already sealed are untouched."""
    row = session.get(SealAuthorisation, (seal.code, licence_type))
    if row is None:
        return False
    session.delete(row)
    audit.append(
        session,
        actor=actor,
        action="seal.deauthorise",
        object_type="seal",
        object_id=seal.code,
        request_id=request_id,
        detail={"licence_type": licence_type},
    )
    return True


PROBLEMS = {
    "suspended": ("已暂停", "suspended"),
    "revoked": ("已吊销", "revoked"),
    "expired": ("已过有效期，请延续", "expired (renew it)"),
    "not-yet-valid": ("尚未生效", "not yet valid"),
    "certificate": ("证书不可用", "without a usable certificate"),
}


def check_usable(session: Session, seal: Seal, now: datetime) -> CertificateRecord | str:
    """The seal's certificate row when the seal can seal now; otherwise why not, as a key of
    ``PROBLEMS``. The seal row and its certificate row are both read: a held certificate stops
    a seal even if the seal row was not updated. The sealing then takes its certificate from
    the row just checked, with no second read."""
    if seal.status != SealStatus.ACTIVE.value:
        return seal.status
    if now >= as_utc(seal.valid_until):
        return "expired"
    if now < as_utc(seal.valid_from):
        return "not-yet-valid"
    record = session.get(CertificateRecord, seal.certificate_serial)
    if record is None or record.status != "good":
        return "certificate"
    return record


def authorise_licence_seals(
    session: Session,
    audit: AuditLog,
    *,
    licence_type: str,
    departments: list[str],
    actor: str,
    already: list[str] | None = None,
) -> None:
    """A type new to some departments (added to the catalogue, or its issuer list grown) may be
    sealed by their active 电子证照专用章 (type 02), as before seals were authorised per type;
    other seals, and departments that could issue it already (``already``), are left as they
    are. An empty ``departments`` list means the type is open to every department."""
    query = select(Seal).where(Seal.seal_type == "02", Seal.status == SealStatus.ACTIVE.value)
    if departments:
        query = query.where(col(Seal.department_code).in_(departments))
    skip = set(already or ())
    for seal in session.exec(query).all():
        if seal.department_code not in skip:
            authorise(session, audit, seal=seal, licence_type=licence_type, actor=actor)
