"""The catalogue of licence types (统一编目), GB/T 36902 fields.

Reading is public: the catalogue says what each licence is and who defines it. Writing needs
the ``catalogue:write`` scope and, for an existing type, to be its defining authority.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlmodel import Session

from api.edge.auth import DepartmentPrincipal, require
from api.edge.state import services_of
from api.http.licences import IdempotencyKey
from api.http.schemas_catalogue import (
    LicenceTypeIn,
    LicenceTypeOut,
    LicenceTypeUpdate,
    TypeVersionOut,
    WithdrawBody,
)
from core.db import reading, transaction
from licences import idempotency
from licences.idempotency import IdempotencyKey as Key
from licences.models import LicenceType
from seals.models import Department

router = APIRouter(prefix="/api/v1/catalogue", tags=["catalogue"])
Author = Annotated[DepartmentPrincipal, Depends(require("catalogue:write"))]


def type_out(entry: LicenceType) -> LicenceTypeOut:
    return LicenceTypeOut.model_validate(entry.model_dump())


def _changes(body: LicenceTypeUpdate, session: Session, department_code: str) -> dict[str, Any]:
    data = body.model_dump(exclude={"code"})
    if not data.get("authority_name"):
        department = session.get(Department, department_code)
        data["authority_name"] = department.name if department else department_code
    data["validity_rule"] = data.get("validity_rule") or ""
    data["issuing_level"] = data.get("issuing_level") or ""
    return data


@router.get("/licence-types", response_model=list[LicenceTypeOut])
def list_types(
    request: Request,
    status: Annotated[str | None, Query(pattern="^(active|withdrawn)$")] = None,
    authority: Annotated[str | None, Query(max_length=18, description="定义机构代码")] = None,
    service_item: Annotated[str | None, Query(max_length=64, description="事项编码")] = None,
) -> list[LicenceTypeOut]:
    """证照目录 / the catalogue, optionally by status, defining authority or service item."""
    services = services_of(request)
    with reading(services.engine) as session:
        entries = services.catalogue.list(
            session, status=status, authority_code=authority, service_item=service_item
        )
        return [type_out(entry) for entry in entries]


@router.post("/licence-types", status_code=201, response_model=LicenceTypeOut)
def add_type(
    body: LicenceTypeIn,
    request: Request,
    response: Response,
    principal: Author,
    idempotency_key: IdempotencyKey = None,
) -> LicenceTypeOut:
    """编目新的证照类型，本部门为定义机构 / define a licence type; the caller is its authority."""
    services = services_of(request)
    key = Key.of(principal.department_code, "catalogue.add", idempotency_key, body.model_dump())

    def write(session: Session) -> str:
        entry = LicenceType(
            code=body.code,
            authority_code=principal.department_code,
            holder_id_type="",
            **_changes(body, session, principal.department_code),
        )
        return str(services.catalogue.add(session, actor=principal.actor, entry=entry).code)

    def load(session: Session, code: str) -> LicenceTypeOut:
        return type_out(services.catalogue.get(session, code))

    out, replayed = idempotency.once(services.engine, key, services.clock.now, write, load)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/catalogue/licence-types/{out.code}"
    return out


@router.get("/licence-types/{code}", response_model=LicenceTypeOut)
def read_type(
    code: str,
    request: Request,
    version: Annotated[int | None, Query(ge=1, description="某一历史版本")] = None,
) -> LicenceTypeOut:
    """一个证照类型，或它的某一版本 / one type, as it is now or at ``version``."""
    services = services_of(request)
    with reading(services.engine) as session:
        entry = services.catalogue.get(session, code.upper())
        if version is not None and version != entry.version:
            old = services.catalogue.version(session, entry.code, version)
            old.status = entry.status
            return type_out(old)
        return type_out(entry)


@router.get("/licence-types/{code}/versions", response_model=list[TypeVersionOut])
def type_versions(code: str, request: Request) -> list[TypeVersionOut]:
    """全部版本 / every version of a type, oldest first."""
    services = services_of(request)
    with reading(services.engine) as session:
        return [
            TypeVersionOut.model_validate(row.model_dump())
            for row in services.catalogue.history(session, code.upper())
        ]


@router.put("/licence-types/{code}", response_model=LicenceTypeOut)
def update_type(
    code: str,
    body: LicenceTypeUpdate,
    request: Request,
    response: Response,
    principal: Author,
    idempotency_key: IdempotencyKey = None,
) -> LicenceTypeOut:
    """修改定义（仅定义机构）；有变化即为新版本 / replace the definition (its authority only);
    a change is a new version, an identical PUT changes nothing."""
    services = services_of(request)
    key = Key.of(
        principal.department_code, "catalogue.update", idempotency_key, [code, body.model_dump()]
    )

    def write(session: Session) -> str:
        entry = services.catalogue.update(
            session,
            actor=principal.actor,
            code=code.upper(),
            changes=_changes(body, session, principal.department_code),
            department_code=principal.department_code,
        )
        return str(entry.code)

    def load(session: Session, found: str) -> LicenceTypeOut:
        return type_out(services.catalogue.get(session, found))

    out, replayed = idempotency.once(services.engine, key, services.clock.now, write, load)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return out


@router.post("/licence-types/{code}/withdraw", response_model=LicenceTypeOut)
def withdraw_type(
    code: str,
    request: Request,
    response: Response,
    principal: Author,
    body: WithdrawBody | None = None,
    idempotency_key: IdempotencyKey = None,
) -> LicenceTypeOut:
    """停用（仅定义机构）：不再签发，已发证照不受影响 / withdraw: nothing new is issued;
    its licences stay as they are."""
    services = services_of(request)
    reason = body.reason if body else None
    key = Key.of(principal.department_code, "catalogue.withdraw", idempotency_key, [code, reason])

    def write(session: Session) -> str:
        entry = services.catalogue.withdraw(
            session,
            actor=principal.actor,
            code=code.upper(),
            reason=reason,
            department_code=principal.department_code,
        )
        return str(entry.code)

    def load(session: Session, found: str) -> LicenceTypeOut:
        return type_out(services.catalogue.get(session, found))

    out, replayed = idempotency.once(services.engine, key, services.clock.now, write, load)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return out


@router.delete("/licence-types/{code}", status_code=204, response_class=Response)
def delete_type(code: str, request: Request, principal: Author) -> Response:
    """删除从未签发过证照的类型；已有证照的只能停用 / delete a type that never issued a
    licence; one with licences can only be withdrawn (409)."""
    services = services_of(request)
    with transaction(services.engine) as session:
        services.catalogue.delete(
            session,
            actor=principal.actor,
            code=code.upper(),
            department_code=principal.department_code,
        )
    return Response(status_code=204)
