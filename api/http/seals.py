"""Department routes for its own seals: read, revoke (or suspend with certificateHold), resume.

Revoking is what a department does when a seal key may be compromised: OCSP answers
``revoked`` at once and a new CRL is published; licences sealed before, as their timestamps
prove, remain valid. It needs the ``licences:manage`` scope, like other status changes.
The work, with its transaction and audit entries, is ``seals.desk.SealDesk``'s; this module
turns its views into the API's JSON (``seal_out``, shared with ``api.http.registry``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from api.edge.auth import DepartmentPrincipal, department, require
from api.edge.state import services_of
from seals.views import SealView
from trust.crl import SEAL_REASONS

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


def seal_out(view: SealView) -> SealOut:
    """The API's JSON of a seal view (its certificates, oldest first, as ``CertificateOut``)."""
    return SealOut.model_validate(view, from_attributes=True)


@router.get("/{code}", response_model=SealOut)
def read_seal(code: str, request: Request, principal: Principal) -> SealOut:
    return seal_out(services_of(request).seal_desk.seal(code, principal.department_code))


def change_certificates(
    code: str, reason: str, request: Request, principal: DepartmentPrincipal
) -> SealOut:
    """Revoke or hold (``certificateHold``) every certificate of the seal, for its own
    department; suspension is the hold case of the same operation."""
    view = services_of(request).seal_desk.withdraw_certificates(
        code,
        reason,
        actor=principal.actor,
        department_code=principal.department_code,
        request_id=request.state.request_id,
    )
    return seal_out(view)


@router.post("/{code}/revoke", response_model=SealOut)
def revoke(code: str, body: RevokeBody, request: Request, principal: Manager) -> SealOut:
    return change_certificates(code, body.reason, request, principal)


@router.post("/{code}/resume", response_model=SealOut)
def resume(code: str, request: Request, principal: Manager) -> SealOut:
    """Lift a suspension (certificateHold)."""
    view = services_of(request).seal_desk.resume(
        code,
        actor=principal.actor,
        department_code=principal.department_code,
        request_id=request.state.request_id,
    )
    return seal_out(view)
