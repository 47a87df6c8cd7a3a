"""Department routes for its own seals: read, revoke (or suspend with certificateHold), resume.

Revoking is what a department does when a seal key may be compromised: OCSP answers
``revoked`` at once and a new CRL is published; licences sealed before, as their timestamps
prove, remain valid. It needs the ``licences:manage`` scope, like other status changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api.edge.auth import DepartmentPrincipal, department, require
from api.edge.state import services_of
from core.db import reading, transaction
from core.errors import Forbidden, NotFound
from seals.authorisation import authorised_types
from seals.models import Seal, SealStatus, SealType
from seals.revocation import resume_seal, revoke_seal
from trust.crl import SEAL_REASONS
from trust.models import CertificateRecord
from trust.profiles import Role

router = APIRouter(prefix="/api/v1/seals", tags=["seals"])
Principal = Annotated[DepartmentPrincipal, Depends(department)]
Manager = Annotated[DepartmentPrincipal, Depends(require("licences:manage"))]

Reason = Literal[SEAL_REASONS]  # type: ignore[valid-type]  # the names of trust.crl's table


class RevokeBody(BaseModel):
    reason: Reason = Field(description="RFC 5280 CRLReason; certificateHold suspends")


class CertificateOut(BaseModel):
    serial: str
    status: str  # good | revoked | hold
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    revocation_reason: str | None


class SealOut(BaseModel):
    code: str
    name: str
    department: str
    seal_type: str  # GB/T 38540 type code: 01 公章, 02 电子证照专用章, 03 业务专用章
    seal_type_label: str
    status: str  # active | suspended | revoked
    status_label: str
    valid_from: datetime
    valid_until: datetime
    width_mm: float  # printed size of the seal image
    key_ref: str  # the key version the current certificate is bound to
    licence_types: list[str]  # what the seal is authorised to seal (seals.authorisation)
    certificate_serial: str
    certificates: list[CertificateOut]


def _out(session: Session, seal: Seal) -> SealOut:
    rows = session.exec(
        select(CertificateRecord)
        .where(CertificateRecord.role == Role.SEAL.value, CertificateRecord.name == seal.code)
        .order_by(col(CertificateRecord.not_before))
    ).all()
    return SealOut(
        code=seal.code,
        name=seal.name,
        department=seal.department_code,
        seal_type=seal.seal_type,
        seal_type_label=SealType(seal.seal_type).label,
        status=seal.status,
        status_label=SealStatus(seal.status).label,
        valid_from=seal.valid_from,
        valid_until=seal.valid_until,
        width_mm=seal.width_mm,
        key_ref=seal.key_ref,
        licence_types=authorised_types(session, seal.code),
        certificate_serial=seal.certificate_serial,
        certificates=[
            CertificateOut(
                serial=r.serial,
                status=r.status,
                not_before=r.not_before,
                not_after=r.not_after,
                revoked_at=r.revoked_at,
                revocation_reason=r.revocation_reason,
            )
            for r in rows
        ],
    )


@router.get("/{code}", response_model=SealOut)
def read_seal(code: str, request: Request, principal: Principal) -> SealOut:
    services = services_of(request)
    with reading(services.engine) as session:
        seal = session.get(Seal, code)
        if seal is None:
            raise NotFound(f"印章不存在 / no seal {code}", field="code")
        if seal.department_code != principal.department_code:
            raise Forbidden("只有印章所属部门可以查看 / only the seal's own department may read it")
        return _out(session, seal)


def change_certificates(
    code: str, reason: str, request: Request, principal: DepartmentPrincipal
) -> SealOut:
    """Revoke or hold (``certificateHold``) every certificate of the seal, for its own
    department; suspension is the hold case of the same operation."""
    services = services_of(request)
    with transaction(services.engine) as session:
        seal = revoke_seal(
            session,
            trust=services.trust,
            audit=services.audit,
            seal_code=code,
            reason=reason,
            actor=principal.actor,
            department_code=principal.department_code,
            request_id=request.state.request_id,
        )
        return _out(session, seal)


@router.post("/{code}/revoke", response_model=SealOut)
def revoke(code: str, body: RevokeBody, request: Request, principal: Manager) -> SealOut:
    return change_certificates(code, body.reason, request, principal)


@router.post("/{code}/resume", response_model=SealOut)
def resume(code: str, request: Request, principal: Manager) -> SealOut:
    """Lift a suspension (certificateHold)."""
    services = services_of(request)
    with transaction(services.engine) as session:
        seal = resume_seal(
            session,
            trust=services.trust,
            audit=services.audit,
            seal_code=code,
            actor=principal.actor,
            department_code=principal.department_code,
            request_id=request.state.request_id,
        )
        return _out(session, seal)
