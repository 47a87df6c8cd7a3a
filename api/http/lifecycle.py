"""Lifecycle routes: suspend, resume, cancel (注销), revoke (吊销), amend (变更), renew (延续),
reissue (补发); and the holder record a department corrects in one place.

Every route takes an Idempotency-Key scoped to the route; status changes answer with the
licence, new versions with the new licence (201, ``previous`` naming the one it replaced).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.edge.auth import DepartmentPrincipal, department, require
from api.edge.state import services_of
from api.http.licences import IdempotencyKey, issued_out, licence_out
from api.http.schemas import IssuedOut, LicenceOut
from api.http.schemas_licences import AmendBody, HolderOut, HolderPatch, ReasonBody, RenewBody
from licences.lifecycle import Transition
from licences.versions import VersionRequest

router = APIRouter(prefix="/api/v1")
Principal = Annotated[DepartmentPrincipal, Depends(department)]
Manager = Annotated[DepartmentPrincipal, Depends(require("licences:manage"))]


def _status_change(
    transition: Transition,
    identifier: str,
    body: ReasonBody | None,
    request: Request,
    response: Response,
    principal: DepartmentPrincipal,
    key: str | None,
) -> LicenceOut:
    changed = services_of(request).licence_desk.change_status(
        identifier=identifier,
        transition=transition,
        reason=body.reason if body else None,
        actor=principal.actor,
        department_code=principal.department_code,
        request_id=request.state.request_id,
        key=key,
    )
    if changed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return licence_out(request, changed.record.licence, changed.record.holder)


@router.post("/licences/{identifier}/suspend", response_model=LicenceOut)
def suspend(
    identifier: str,
    request: Request,
    response: Response,
    principal: Manager,
    body: ReasonBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> LicenceOut:
    """暂停（须说明原因）/ suspend; a reason is required."""
    return _status_change(
        Transition.SUSPEND, identifier, body, request, response, principal, idempotency_key
    )


@router.post("/licences/{identifier}/resume", response_model=LicenceOut)
def resume(
    identifier: str,
    request: Request,
    response: Response,
    principal: Manager,
    body: ReasonBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> LicenceOut:
    """恢复 / resume a suspended licence."""
    return _status_change(
        Transition.RESUME, identifier, body, request, response, principal, idempotency_key
    )


@router.post("/licences/{identifier}/cancel", response_model=LicenceOut)
def cancel(
    identifier: str,
    request: Request,
    response: Response,
    principal: Manager,
    body: ReasonBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> LicenceOut:
    """注销（依申请或不再需要，须说明原因）/ cancel; a reason is required."""
    return _status_change(
        Transition.CANCEL, identifier, body, request, response, principal, idempotency_key
    )


@router.post("/licences/{identifier}/revoke", response_model=LicenceOut)
def revoke(
    identifier: str,
    request: Request,
    response: Response,
    principal: Manager,
    body: ReasonBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> LicenceOut:
    """吊销（行政处罚，须说明原因）/ revoke as a penalty; a reason is required."""
    return _status_change(
        Transition.REVOKE, identifier, body, request, response, principal, idempotency_key
    )


def _new_version(
    request: Request,
    response: Response,
    principal: DepartmentPrincipal,
    version_request: VersionRequest,
) -> IssuedOut:
    services = services_of(request)
    return issued_out(request, response, services.versions.new_version(version_request))


@router.post("/licences/{identifier}/amend", status_code=201, response_model=IssuedOut)
def amend(
    identifier: str,
    body: AmendBody,
    request: Request,
    response: Response,
    principal: Manager,
    idempotency_key: IdempotencyKey = None,
) -> IssuedOut:
    """变更：以新版本重新签发并盖章，原版本失效 / amend: a new, re-sealed version replaces it."""
    return _new_version(
        request,
        response,
        principal,
        VersionRequest(
            identifier=identifier,
            transition=Transition.AMEND,
            actor=principal.actor,
            department_code=principal.department_code,
            reason=body.reason,
            fields=body.fields,
            idempotency_key=idempotency_key,
            request_id=request.state.request_id,
        ),
    )


@router.post("/licences/{identifier}/renew", status_code=201, response_model=IssuedOut)
def renew(
    identifier: str,
    request: Request,
    response: Response,
    principal: Manager,
    body: RenewBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> IssuedOut:
    """延续：新版本，新的有效期 / renew: a new version with a new validity."""
    body = body or RenewBody()
    return _new_version(
        request,
        response,
        principal,
        VersionRequest(
            identifier=identifier,
            transition=Transition.RENEW,
            actor=principal.actor,
            department_code=principal.department_code,
            reason=body.reason,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            idempotency_key=idempotency_key,
            request_id=request.state.request_id,
        ),
    )


@router.post("/licences/{identifier}/reissue", status_code=201, response_model=IssuedOut)
def reissue(
    identifier: str,
    body: ReasonBody,
    request: Request,
    response: Response,
    principal: Manager,
    idempotency_key: IdempotencyKey = None,
) -> IssuedOut:
    """补发（遗失或损毁，须说明原因）：新版本，原版本作废 / reissue after loss: the old one is void."""
    return _new_version(
        request,
        response,
        principal,
        VersionRequest(
            identifier=identifier,
            transition=Transition.REISSUE,
            actor=principal.actor,
            department_code=principal.department_code,
            reason=body.reason,
            idempotency_key=idempotency_key,
            request_id=request.state.request_id,
        ),
    )


@router.get("/holders/{id_type}/{holder_id}", response_model=HolderOut)
def read_holder(id_type: str, holder_id: str, request: Request, principal: Principal) -> HolderOut:
    """持证主体（仅向其发过证的部门可见）/ a holder, for a department that issued to it."""
    holder = services_of(request).licence_desk.holder(
        id_type, holder_id, department_code=principal.department_code
    )
    return HolderOut(id_type=holder.id_type, id=holder.id_number, name=holder.name)


@router.patch("/holders/{id_type}/{holder_id}", response_model=HolderOut)
def update_holder(
    id_type: str,
    holder_id: str,
    body: HolderPatch,
    request: Request,
    response: Response,
    principal: Principal,
    idempotency_key: IdempotencyKey = None,
) -> HolderOut:
    """更正登记名称（须 holders:correct:<持证主体类别> 权限范围），此后签发以此核对；已签发证照
    仍显示签发时的名称 / correct the registered name (scope holders:correct:<holder category>);
    later issuances are checked against it. Sealed licences keep showing the name they were
    issued under; a renewal or amendment by their issuer takes the corrected one."""
    corrected = services_of(request).licence_desk.correct_holder_name(
        id_type=id_type,
        id_number=holder_id,
        name=body.name,
        allows=principal.allows,
        department_code=principal.department_code,
        actor=principal.actor,
        request_id=request.state.request_id,
        key=idempotency_key,
    )
    if corrected.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    holder = corrected.holder
    return HolderOut(id_type=holder.id_type, id=holder.id_number, name=holder.name)
