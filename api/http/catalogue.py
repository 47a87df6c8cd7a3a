"""The catalogue of licence types (统一编目), GB/T 36902 fields.

Reading is public: the catalogue says what each licence is and who defines it. Writing needs
the ``catalogue:write`` scope and, for an existing type, to be its defining authority.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

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
from licences.catalogue_desk import Written
from licences.models import LicenceType

router = APIRouter(prefix="/api/v1/catalogue", tags=["catalogue"])
Author = Annotated[DepartmentPrincipal, Depends(require("catalogue:write"))]


def type_out(entry: LicenceType) -> LicenceTypeOut:
    return LicenceTypeOut.model_validate(entry.model_dump())


def _answer(written: Written, response: Response) -> LicenceTypeOut:
    if written.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return type_out(written.entry)


@router.get("/licence-types", response_model=list[LicenceTypeOut])
def list_types(
    request: Request,
    status: Annotated[str | None, Query(pattern="^(active|withdrawn)$")] = None,
    authority: Annotated[str | None, Query(max_length=18, description="定义机构代码")] = None,
    service_item: Annotated[str | None, Query(max_length=64, description="事项编码")] = None,
) -> list[LicenceTypeOut]:
    """证照目录 / the catalogue, optionally by status, defining authority or service item."""
    entries = services_of(request).catalogue_desk.entries(
        status=status, authority_code=authority, service_item=service_item
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
    written = services_of(request).catalogue_desk.define(
        body=body.model_dump(),
        department_code=principal.department_code,
        actor=principal.actor,
        key=idempotency_key,
    )
    if written.replayed:
        response.status_code = 200
    out = _answer(written, response)
    response.headers["Location"] = f"/api/v1/catalogue/licence-types/{out.code}"
    return out


@router.get("/licence-types/{code}", response_model=LicenceTypeOut)
def read_type(
    code: str,
    request: Request,
    version: Annotated[int | None, Query(ge=1, description="某一历史版本")] = None,
) -> LicenceTypeOut:
    """一个证照类型，或它的某一版本 / one type, as it is now or at ``version``."""
    return type_out(services_of(request).catalogue_desk.read(code, version))


@router.get("/licence-types/{code}/versions", response_model=list[TypeVersionOut])
def type_versions(code: str, request: Request) -> list[TypeVersionOut]:
    """全部版本 / every version of a type, oldest first."""
    return [
        TypeVersionOut.model_validate(row.model_dump())
        for row in services_of(request).catalogue_desk.history(code)
    ]


@router.get(
    "/licence-types/{code}/specimen",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def type_specimen(
    code: str,
    request: Request,
    version: Annotated[int | None, Query(ge=1, description="某一历史版本")] = None,
) -> Response:
    """样本：按该版本版式以示例值排版，满页"样本 SPECIMEN"水印，不盖章，二维码仅为 SPECIMEN /
    a specimen page of the type (or a version of it) with sample values, watermarked, never
    sealed; its QR code says SPECIMEN."""
    entry, data = services_of(request).catalogue_desk.specimen(code, version)
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{entry.code}-v{entry.version}-specimen.pdf"',
            "Cache-Control": "public, max-age=300",
        },
    )


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
    written = services_of(request).catalogue_desk.replace(
        code=code,
        body=body.model_dump(),
        department_code=principal.department_code,
        actor=principal.actor,
        key=idempotency_key,
    )
    return _answer(written, response)


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
    written = services_of(request).catalogue_desk.withdraw(
        code=code,
        reason=body.reason if body else None,
        department_code=principal.department_code,
        actor=principal.actor,
        key=idempotency_key,
    )
    return _answer(written, response)


@router.delete("/licence-types/{code}", status_code=204, response_class=Response)
def delete_type(code: str, request: Request, principal: Author) -> Response:
    """删除从未签发过证照的类型；已有证照的只能停用 / delete a type that never issued a
    licence; one with licences can only be withdrawn (409)."""
    services_of(request).catalogue_desk.delete(
        code=code, department_code=principal.department_code, actor=principal.actor
    )
    return Response(status_code=204)
