"""The supervisor's audit search page (留痕检索) and its CSV export: the search form, a page of
masked entries newest first with a link to the next (older) page, and the same search as CSV.
The search, what an office may see and the masking are ``supervision.audit_search``'s."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.edge.state import services_of
from api.edge.supervisor_session import SIGN_IN_FIRST, optional_supervisor, renew
from api.pages.supervise_common import page, problem_page, to_sign_in
from api.pages.supervise_csv import csv_response
from core.clock import china_time
from core.errors import ElicenceError, Unauthenticated
from supervision.audit_search import MAX_LIMIT, AuditQuery
from supervision.supervisor_desk import Supervisor

router = APIRouter(include_in_schema=False)
CSV_ROWS = 5000  # one export; a wider one is made in several, by date range


def _query(
    department: str | None,
    action: str | None,
    licence: str | None,
    holder: str | None,
    from_: date | None,
    to: date | None,
    before: int | None,
    limit: int,
) -> AuditQuery:
    return AuditQuery(
        department=(department or "").strip() or None,
        action=(action or "").strip() or None,
        licence=(licence or "").strip() or None,
        holder_id=(holder or "").strip() or None,
        date_from=from_,
        date_to=to,
        before=before,
        limit=limit,
    )


Text = Annotated[str | None, Query(max_length=96)]
Day = Annotated[date | None, Query()]


@router.get("/supervise/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    supervisor: Annotated[Supervisor | None, Depends(optional_supervisor)],
    department: Text = None,
    action: Text = None,
    licence: Text = None,
    holder: Annotated[str | None, Query(max_length=32)] = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Day = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    if supervisor is None:
        return to_sign_in(request)
    services = services_of(request)
    query = _query(department, action, licence, holder, from_, to, before, 50)
    try:
        found = services.audit_search.search(supervisor.office_code, query)
    except ElicenceError as exc:
        return problem_page(request, supervisor, exc)
    # The next page's link repeats the search; the holder's ID number travels only in the
    # query string it came in (never in the page's text, where it is shown masked).
    params = {k: v for k, v in request.query_params.items() if k != "before"}
    context = {
        "entries": found.entries,
        "next_before": found.next_before,
        "params": params,
        "echo": query.echo(),
        "departments": services.audit_search.department_names(supervisor.office_code),
    }
    return page(request, "supervise_audit.html", supervisor, context, nav="audit")


@router.get("/supervise/audit.csv")
def audit_csv(
    request: Request,
    supervisor: Annotated[Supervisor | None, Depends(optional_supervisor)],
    department: Text = None,
    action: Text = None,
    licence: Text = None,
    holder: Annotated[str | None, Query(max_length=32)] = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Day = None,
) -> Response:
    """The search's entries (at most ``CSV_ROWS``, newest first), masked as on the page."""
    if supervisor is None:
        raise Unauthenticated(getattr(request.state, "supervisor_problem", None) or SIGN_IN_FIRST)
    search = services_of(request).audit_search
    rows: list[list[object]] = []
    before: int | None = None
    while len(rows) < CSV_ROWS:
        query = _query(department, action, licence, holder, from_, to, before, MAX_LIMIT)
        found = search.search(supervisor.office_code, query)
        rows.extend(
            [
                e.seq,
                china_time(e.at).strftime("%Y-%m-%d %H:%M:%S"),
                e.actor,
                e.action,
                e.object_type,
                e.object_id,
                e.outcome,
                e.detail,
            ]
            for e in found.entries
        )
        if found.next_before is None:
            break
        before = found.next_before
    header = [
        "序号 / seq",
        "时间（北京时间）/ time (Beijing)",
        "操作者 / actor",
        "操作 / action",
        "对象类型 / object type",
        "对象 / object",
        "结果 / outcome",
        "详情 / detail",
    ]
    filename = f"audit-{supervisor.office_code}.csv"
    return renew(request, csv_response(filename, header, rows[:CSV_ROWS]))
