"""The seals registry over HTTP: public department information, and a department's own seals.

A department creates, lists, suspends, renews, re-images and authorises its seals here
(``licences:manage``, like every other status change); revoke, resume and read are in
``api.http.seals``. Every change runs in one transaction with its audit entry
(``seals.desk.SealDesk`` owns it), and what changes a certificate goes through ``TrustDomain``
so CRLs, OCSP and the trust list see it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.edge.auth import DepartmentPrincipal, department, require
from api.edge.state import services_of
from api.http.seals import SealOut, change_certificates, seal_out
from seals.models import SealType
from seals.revocation import HOLD

departments = APIRouter(prefix="/api/v1/departments", tags=["departments"])
router = APIRouter(prefix="/api/v1/seals", tags=["seals"])
Manager = Annotated[DepartmentPrincipal, Depends(require("licences:manage"))]
Reader = Annotated[DepartmentPrincipal, Depends(department)]


class PublicSeal(BaseModel):
    code: str
    name: str
    seal_type: str
    seal_type_label: str
    status: str
    status_label: str
    valid_from: datetime
    valid_until: datetime


class DepartmentOut(BaseModel):
    code: str  # unified social credit code (GB 32100)
    name: str
    division_code: str  # GB/T 2260
    level: str
    parent_code: str | None
    seals: list[PublicSeal]


class CreateSealBody(BaseModel):
    seal_type: SealType = Field(description="01 公章, 02 电子证照专用章, 03 业务专用章")
    name: str | None = Field(default=None, max_length=64)
    width_mm: float = Field(default=42.0, ge=20.0, le=60.0)
    licence_types: list[str] = Field(default_factory=list, max_length=200)


@departments.get("/{code}", response_model=DepartmentOut)
def read_department(code: str, request: Request) -> DepartmentOut:
    """Public: who the department is and which seals it holds (no keys, no images)."""
    view = services_of(request).seal_desk.department(code)
    return DepartmentOut.model_validate(view, from_attributes=True)


@router.get("", response_model=list[SealOut])
def list_seals(request: Request, principal: Reader) -> list[SealOut]:
    """The caller's department's seals, with their certificates and authorisations."""
    return [seal_out(v) for v in services_of(request).seal_desk.seals(principal.department_code)]


@router.post("", response_model=SealOut, status_code=201)
def create_seal(body: CreateSealBody, request: Request, principal: Manager) -> SealOut:
    """A new seal of the caller's department, with its key, certificate and drawn image."""
    view = services_of(request).seal_desk.create(
        actor=principal.actor,
        department_code=principal.department_code,
        seal_type=body.seal_type,
        name=body.name,
        width_mm=body.width_mm,
        licence_types=body.licence_types,
        request_id=request.state.request_id,
    )
    return seal_out(view)


@router.post("/{code}/suspend", response_model=SealOut)
def suspend(code: str, request: Request, principal: Manager) -> SealOut:
    """暂停: hold every certificate of the seal (certificateHold); ``/resume`` lifts it."""
    return change_certificates(code, HOLD, request, principal)


@router.post("/{code}/renew", response_model=SealOut)
def renew(code: str, request: Request, principal: Manager) -> SealOut:
    """延续: a new key version and certificate with a new validity; the old one stays good."""
    view = services_of(request).seal_desk.renew(
        code,
        actor=principal.actor,
        department_code=principal.department_code,
        request_id=request.state.request_id,
    )
    return seal_out(view)


@router.put("/{code}/authorisations/{licence_type}", response_model=SealOut)
def add_authorisation(
    code: str, licence_type: str, request: Request, principal: Manager
) -> SealOut:
    """Let the seal seal ``licence_type`` (a type the department may issue)."""
    view = services_of(request).seal_desk.authorise(
        code,
        licence_type,
        actor=principal.actor,
        department_code=principal.department_code,
        request_id=request.state.request_id,
    )
    return seal_out(view)


@router.delete("/{code}/authorisations/{licence_type}", response_model=SealOut)
def remove_authorisation(
    code: str, licence_type: str, request: Request, principal: Manager
) -> SealOut:
    view = services_of(request).seal_desk.deauthorise(
        code,
        licence_type,
        actor=principal.actor,
        department_code=principal.department_code,
        request_id=request.state.request_id,
    )
    return seal_out(view)


@router.put("/{code}/image", response_model=SealOut)
async def put_image(code: str, request: Request, principal: Manager) -> SealOut:
    """Upload the seal image: the body is a PNG (``Content-Type: image/png``), square, with a
    transparent background (``seals.image.validate_uploaded_seal_image``); over 2 MB is 413."""
    png = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return await run_in_threadpool(_store_image, request, principal, code, png, content_type)


def _store_image(
    request: Request, principal: DepartmentPrincipal, code: str, png: bytes, content_type: str
) -> SealOut:
    view = services_of(request).seal_desk.upload_image(
        code,
        png,
        content_type=content_type,
        actor=principal.actor,
        department_code=principal.department_code,
        request_id=request.state.request_id,
    )
    return seal_out(view)
