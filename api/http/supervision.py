"""The supervision offices' JSON API (电子监察): figures and the audit search, read-only, for a
client holding the ``supervise`` scope (a Bearer API key or access token). Every answer covers
the departments under the office's division only; naming another department is a 403 that
names it. Alerts are served by ``api.http.supervision_alerts``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from api.edge.state import services_of
from api.edge.supervisor_session import bearer_supervisor
from supervision.audit_search import MAX_LIMIT, AuditPage, AuditQuery
from supervision.supervisor_desk import Supervisor

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])
NO_STORE = {"Cache-Control": "no-store"}
Signed = Annotated[Supervisor, Depends(bearer_supervisor)]


@router.get("/figures")
def figures(
    request: Request,
    supervisor: Signed,
    department: Annotated[str | None, Query(max_length=18)] = None,
) -> JSONResponse:
    """Issued, verified, reused (pulls under a grant and use codes redeemed), grants given,
    revoked, cancelled and suspended, per month (China) of the last twelve and per department
    under the office's division."""
    found = services_of(request).figures.of(supervisor.office_code, department)
    return JSONResponse(found.as_json(), headers=NO_STORE)


def page_json(page: AuditPage, query: AuditQuery) -> dict[str, Any]:
    return {
        "query": query.echo(),
        "items": [
            {
                "seq": e.seq,
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "object_type": e.object_type,
                "object_id": e.object_id,
                "outcome": e.outcome,
                "detail": e.detail,
            }
            for e in page.entries
        ],
        "next_before": page.next_before,
    }


@router.get("/audit")
def audit(
    request: Request,
    supervisor: Signed,
    department: Annotated[str | None, Query(max_length=18)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    licence: Annotated[str | None, Query(max_length=96)] = None,
    holder: Annotated[
        str | None, Query(max_length=32, description="持证人证件号码 / ID number")
    ] = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> JSONResponse:
    """The audit entries concerning the office's departments, newest first, masked; keyset
    pages (``before`` = the previous page's ``next_before``). Dates are China dates."""
    query = AuditQuery(
        department=department or None,
        action=action or None,
        licence=licence or None,
        holder_id=holder or None,
        date_from=from_,
        date_to=to,
        before=before,
        limit=limit,
    )
    page = services_of(request).audit_search.search(supervisor.office_code, query)
    return JSONResponse(page_json(page, query), headers=NO_STORE)
