"""The supervisor's alerts page (预警): open and acknowledged alerts of the office's
departments, and the acknowledge form (a comment is required). The alerts themselves, who sees
which and the rules of acknowledging, are ``supervision.alert_desk``'s; this page shows them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.edge.state import services_of
from api.edge.supervisor_session import form_supervisor, optional_supervisor, renew
from api.pages.supervise_common import NO_STORE, page, problem_page, to_sign_in
from core.errors import ElicenceError
from supervision.supervisor_desk import Supervisor

router = APIRouter(include_in_schema=False)
RETURN_TO = ("/supervise", "/supervise/alerts", "/supervise/alerts?state=all")


@router.get("/supervise/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    supervisor: Annotated[Supervisor | None, Depends(optional_supervisor)],
    state: Annotated[Literal["open", "all"], Query()] = "open",
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    if supervisor is None:
        return to_sign_in(request)
    alerts = services_of(request).alert_desk.alerts_for(
        supervisor.office_code, state=state, rule=None, limit=50, before=before
    )
    context = {
        "alerts": alerts,
        "state": state,
        "more": alerts[-1].id if len(alerts) == 50 else None,
    }
    return page(request, "supervise_alerts.html", supervisor, context, nav="alerts")


@router.post("/supervise/alerts/{alert_id}/acknowledge")
async def acknowledge(
    alert_id: str,
    request: Request,
    supervisor: Annotated[Supervisor, Depends(form_supervisor)],
) -> Response:
    """Acknowledges with the form's comment; a refusal (no comment, another office's alert,
    acknowledged already) shows the page again with the reason."""
    form = await request.form(max_files=0, max_fields=16)
    comment = form.get("comment")
    back = form.get("next")
    try:
        services_of(request).alert_desk.acknowledge(
            supervisor.office_code,
            alert_id,
            comment if isinstance(comment, str) else "",
            supervisor.actor,
        )
    except ElicenceError as exc:
        return problem_page(request, supervisor, exc)
    target = back if isinstance(back, str) and back in RETURN_TO else "/supervise/alerts?state=all"
    return renew(request, RedirectResponse(target, status_code=303, headers=NO_STORE))
