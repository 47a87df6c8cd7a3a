"""The exchange format over HTTP: export one licence or a page of them with the national field
names, and import records from another system (issued, rendered and sealed by us).
``docs/exchange-format.md`` documents the fields."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request

from api.edge.auth import DepartmentPrincipal, department, require
from api.edge.state import services_of
from api.http.licences import Filters, IdempotencyKey, item_out
from api.http.schemas_licences import BatchOut
from licences import batch, exchange

router = APIRouter(prefix="/api/v1", tags=["exchange"])
Principal = Annotated[DepartmentPrincipal, Depends(department)]
Issuer = Annotated[DepartmentPrincipal, Depends(require("licences:issue"))]


@router.get("/licences/{identifier}/export")
def export_one(identifier: str, request: Request, principal: Principal) -> dict[str, Any]:
    """导出一份证照（国家标准字段名）/ one licence in the exchange format."""
    return services_of(request).exchange_desk.export_one(
        identifier, department_code=principal.department_code
    )


@router.get("/licences:export")
def export_many(request: Request, query: Filters) -> dict[str, Any]:
    """按条件导出本部门证照，一页一份文档 / export this department's licences, a page per
    document; the same filters and cursor as ``GET /api/v1/licences``."""
    return services_of(request).exchange_desk.export_page(query)


@router.post("/licences:import", response_model=BatchOut)
def import_records(
    request: Request,
    principal: Issuer,
    document: Annotated[Any, Body(description="一份证照、证照数组或导出文档")],
    idempotency_key: IdempotencyKey = None,
) -> BatchOut:
    """导入其他系统的证照：按本库目录校验，由本库签发、盖章 / import records from another
    system: each is checked against our catalogue and issued, rendered and sealed by us.

    A record's 证照标识 keys it (scope ``import``), so importing the same record again replays;
    a record without one is keyed by the request's Idempotency-Key and its position.
    """
    services = services_of(request)
    items = services.exchange_desk.import_items(
        exchange.records_of(document),
        department_code=principal.department_code,
        actor=principal.actor,
        request_id=request.state.request_id,
        key=idempotency_key,
    )
    results = exchange.import_all(services.issuance.issue, items)
    return BatchOut(
        results=[item_out(request, result) for result in results],
        summary=batch.summary(results),
    )
