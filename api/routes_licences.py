"""Department routes: issue, read, download and change the status of licences; the catalogue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from api.auth import DepartmentPrincipal, department
from api.schemas import IssueBody, IssuedOut, LicenceOut, LicenceTypeIn, Links, StatusBody
from core.db import reading, transaction
from core.errors import Forbidden, InvalidInput
from licences.issuance import IssueRequest
from licences.lifecycle import Transition
from licences.models import Licence, LicenceType
from licences.repository import document, effective_status, full_record, licence_by_identifier

router = APIRouter(prefix="/api/v1")
Principal = Annotated[DepartmentPrincipal, Depends(department)]


def _links(request: Request, licence: Licence) -> Links:
    services = request.app.state.services
    base = services.settings.public_base_url.rstrip("/")
    return Links(
        pdf=f"{base}/api/v1/licences/{licence.identifier}/pdf",
        verify=services.issuance.verify_url(licence.verify_code),
    )


def _own(principal: DepartmentPrincipal, licence: Licence) -> None:
    if licence.issuer_code != principal.department_code:
        raise Forbidden(
            "只有发证部门或获授权方可以访问 / only the issuing department or a granted party may read it"
        )


@router.post("/licences", status_code=201, response_model=IssuedOut)
def issue(
    body: IssueBody,
    request: Request,
    response: Response,
    principal: Principal,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> IssuedOut:
    services = request.app.state.services
    result = services.issuance.issue(
        IssueRequest(
            department_code=principal.department_code,
            licence_type=body.licence_type,
            holder_id_type=body.holder.id_type,
            holder_id=body.holder.id,
            holder_name=body.holder.name,
            fields=body.fields,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            idempotency_key=idempotency_key,
            actor=principal.actor,
            request_id=request.state.request_id,
        )
    )
    licence = result.licence
    if result.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/licences/{licence.identifier}"
    with reading(services.engine) as session:
        status = effective_status(
            licence_by_identifier(session, licence.identifier), services.clock.now().date()
        )
    return IssuedOut(
        identifier=licence.identifier,
        version=licence.version,
        status=status.value,
        sha256=licence.sha256,
        links=_links(request, licence),
    )


@router.get("/licences/{identifier}", response_model=LicenceOut)
def read(identifier: str, request: Request, principal: Principal) -> LicenceOut:
    services = request.app.state.services
    with reading(services.engine) as session:
        licence = licence_by_identifier(session, identifier)
        _own(principal, licence)
        record = full_record(session, licence)
    return LicenceOut(
        identifier=licence.identifier,
        version=licence.version,
        licence_type=licence.type_code,
        issuer=licence.issuer_code,
        holder={
            "id_type": record.holder.id_type,
            "id": record.holder.id_number,
            "name": record.holder.name,
        },
        fields=licence.fields,
        valid_from=licence.valid_from,
        valid_until=licence.valid_until,
        status=effective_status(licence, services.clock.now().date()).value,
        status_reason=licence.status_reason,
        issued_at=licence.issued_at.isoformat(),
        sha256=licence.sha256,
        seal=licence.seal_code,
        links=_links(request, licence),
    )


@router.get(
    "/licences/{identifier}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def pdf(identifier: str, request: Request, principal: Principal) -> Response:
    services = request.app.state.services
    with reading(services.engine) as session:
        licence = licence_by_identifier(session, identifier)
        _own(principal, licence)
        data = document(session, identifier)
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{licence.serial}-{licence.version:03d}.pdf"',
            "X-Content-SHA256": licence.sha256,
        },
    )


@router.post("/licences/{identifier}/{action}", response_model=LicenceOut)
def change_status(
    identifier: str,
    action: str,
    request: Request,
    principal: Principal,
    body: StatusBody | None = None,
) -> LicenceOut:
    try:
        transition = Transition(action)
    except ValueError:
        raise InvalidInput(f"未知操作 / unknown action {action}", field="action") from None
    services = request.app.state.services
    with transaction(services.engine) as session:
        services.lifecycle.apply(
            session,
            identifier=identifier,
            transition=transition,
            reason=body.reason if body else None,
            actor=principal.actor,
            department_code=principal.department_code,
            request_id=request.state.request_id,
        )
    return read(identifier, request, principal)


@router.get("/catalogue/licence-types")
def list_types(request: Request) -> list[dict[str, object]]:
    services = request.app.state.services
    with reading(services.engine) as session:
        return [entry.model_dump() for entry in services.catalogue.list(session)]


@router.post("/catalogue/licence-types", status_code=201)
def add_type(body: LicenceTypeIn, request: Request, principal: Principal) -> dict[str, object]:
    services = request.app.state.services
    entry = LicenceType(
        authority_code=principal.department_code, holder_id_type="", **body.model_dump()
    )
    with transaction(services.engine) as session:
        services.catalogue.add(session, actor=principal.actor, entry=entry)
        return entry.model_dump()
