"""The supervisor's desk (电子监察): sign-in, the dashboard with its charts and open alerts, the
figures as CSV, the audit search and the alerts page.

Every page is for a signed-in supervisor (``api.edge.supervisor_session``) and covers the
departments under the office's division only; a visitor who is not signed in (or whose client
was revoked) is sent to the sign-in form. Every answer is ``Cache-Control: no-store``: the
pages hold the audit trail and alerts, which a shared computer must not keep.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.edge.state import services_of
from api.edge.supervisor_session import (
    SIGN_IN_FIRST,
    clear_cookie,
    form_supervisor,
    optional_supervisor,
    renew,
    seal_session,
    set_cookie,
)
from api.pages.supervise_charts import dashboard_charts
from api.pages.supervise_common import NO_STORE, SIGN_IN, page, to_sign_in
from api.pages.supervise_csv import csv_response
from core.errors import Unauthenticated
from supervision.figures import MEASURES
from supervision.supervisor_desk import Supervisor

router = APIRouter(include_in_schema=False)
PRE_COOKIE = "elicence_supervisor_signin"  # the sign-in form's own CSRF token (login CSRF)
PRE_PURPOSE = "supervisor-sign-in"
PRE_LIFETIME = timedelta(minutes=30)


def sign_in_form(request: Request, *, message: str | None = None, status: int = 200) -> Response:
    services = services_of(request)
    token = secrets.token_urlsafe(16)
    now = services.clock.now()
    sealed = services.holder_sessions.sign(PRE_PURPOSE, {"csrf": token}, now + PRE_LIFETIME)
    expired = request.query_params.get("expired") == "1"
    response = page(
        request,
        "supervise_sign_in.html",
        None,
        {"form_csrf": token, "message": message, "expired": expired},
        status=status,
    )
    response.set_cookie(
        PRE_COOKIE,
        sealed,
        max_age=int(PRE_LIFETIME.total_seconds()),
        path=SIGN_IN,
        secure=services.holder_sessions.secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get(SIGN_IN, response_class=HTMLResponse)
def sign_in_page(
    request: Request, supervisor: Annotated[Supervisor | None, Depends(optional_supervisor)]
) -> Response:
    if supervisor is not None:
        return renew(request, RedirectResponse("/supervise", status_code=303, headers=NO_STORE))
    return sign_in_form(request)


def _pre_token_ok(request: Request, presented: str) -> bool:
    services = services_of(request)
    value = request.cookies.get(PRE_COOKIE, "")
    try:
        claims = services.holder_sessions.unsign(PRE_PURPOSE, value, services.clock.now())
    except Unauthenticated:
        return False
    expected = str(claims.get("csrf", ""))
    return bool(presented) and secrets.compare_digest(presented.encode(), expected.encode())


@router.post(SIGN_IN, response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """Client id and API key; a wrong pair (or a department's) gets the form again, 401."""
    form = await request.form(max_files=0, max_fields=8)
    values = {k: v if isinstance(v, str) else "" for k, v in form.items()}
    if not _pre_token_ok(request, values.get("csrf", "")):
        message = "表单已失效，请重试 / the form has expired or lacks its CSRF token; try again"
        return sign_in_form(request, message=message, status=403)
    services = services_of(request)
    try:
        supervisor = services.supervisors.sign_in(
            values.get("client_id", ""),
            values.get("api_key", ""),
            getattr(request.state, "request_id", None),
        )
    except Unauthenticated as exc:
        return sign_in_form(request, message=exc.message, status=401)
    response = RedirectResponse("/supervise", status_code=303, headers=NO_STORE)
    set_cookie(request, response, seal_session(request, supervisor, services.clock.now()))
    response.delete_cookie(PRE_COOKIE, path=SIGN_IN)
    return response


@router.post("/supervise/sign-out")
def sign_out(
    request: Request, supervisor: Annotated[Supervisor, Depends(form_supervisor)]
) -> Response:
    services_of(request).supervisors.sign_out(
        supervisor, getattr(request.state, "request_id", None)
    )
    response = RedirectResponse(SIGN_IN, status_code=303, headers=NO_STORE)
    clear_cookie(request, response)
    return response


@router.get("/supervise", response_class=HTMLResponse)
def dashboard(
    request: Request, supervisor: Annotated[Supervisor | None, Depends(optional_supervisor)]
) -> Response:
    if supervisor is None:
        return to_sign_in(request)
    services = services_of(request)
    figures = services.figures.of(supervisor.office_code)
    this_month = figures.months[-1]
    by_month = figures.by_month()
    by_department = figures.by_department(this_month)
    monthly, departmental = dashboard_charts(by_month, by_department)
    alerts = services.alert_desk.alerts_for(
        supervisor.office_code, state="open", rule=None, limit=20, before=None
    )
    context = {
        "month": this_month,
        "current": by_month[-1],
        "by_month": by_month,
        "by_department": by_department,
        "measures": MEASURES,
        "monthly_charts": monthly,
        "department_charts": departmental,
        "alerts": alerts,
    }
    return page(request, "supervise_dashboard.html", supervisor, context, nav="dashboard")


@router.get("/supervise/figures.csv")
def figures_csv(
    request: Request,
    supervisor: Annotated[Supervisor | None, Depends(optional_supervisor)],
    department: Annotated[str | None, Query(max_length=18)] = None,
) -> Response:
    """One row per month and department with a count (the twelve months in China)."""
    if supervisor is None:
        raise Unauthenticated(getattr(request.state, "supervisor_problem", None) or SIGN_IN_FIRST)
    figures = services_of(request).figures.of(supervisor.office_code, department or None)
    names = dict(figures.departments)
    header = ["月份 / month", "部门代码 / department code", "部门 / department"] + [
        f"{zh} / {en}" for _, zh, en in MEASURES
    ]
    rows = [
        [cell.month, cell.department_code, names.get(cell.department_code, "")]
        + [cell.counts[key] for key, _, _ in MEASURES]
        for cell in figures.cells
    ]
    filename = f"figures-{supervisor.office_code}-{figures.months[-1]}.csv"
    return renew(request, csv_response(filename, header, rows))
