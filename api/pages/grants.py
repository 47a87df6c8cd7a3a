"""The holder's grants and usage log: JSON API under ``/api/v1/holder/`` and the pages
``/me/grants`` and ``/me/usage``.

Every route needs the signed-in holder (``api.edge.holder_session``); state-changing API calls carry
the session's CSRF token in ``X-CSRF-Token``, the pages' forms in a ``csrf`` field. A holder
reaches only their own grants and licences: anything else is "not found".
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api.edge.errors import STATUS
from api.edge.holder_session import (
    HolderPrincipal,
    current_holder,
    form_holder,
    optional_holder,
    page_context,
)
from api.edge.state import services_of
from api.pages.grant_views import (
    GrantIn,
    GrantOut,
    GrantsOut,
    UsageOut,
    grant_out,
    grant_outs,
    usage_out,
)
from api.pages.holder_views import holder_key
from api.pages.verify import templates
from core.errors import ElicenceError, InvalidInput
from licences.grants import GrantRequest, latest_end

router = APIRouter(tags=["holder"])
Holder = Annotated[HolderPrincipal, Depends(current_holder)]
FormHolder = Annotated[HolderPrincipal, Depends(form_holder)]
GrantId = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[0-9a-f]+$")]
NO_STORE = {"Cache-Control": "no-store"}
SIGN_IN = "/me/login"  # sign-in at the unified identity platform (统一身份认证)
NOTICES = {
    "created": "已授权 / Access granted.",
    "withdrawn": "已撤回授权，对方即时失去访问权 / Grant withdrawn; access ended at once.",
}


def _create(request: Request, holder: HolderPrincipal, body: GrantRequest) -> GrantOut:
    desk = services_of(request).grant_desk
    return grant_out(desk.create(holder_key(holder), body, request_id=request.state.request_id))


def _withdraw(request: Request, holder: HolderPrincipal, grant_id: str) -> GrantOut:
    desk = services_of(request).grant_desk
    made = desk.withdraw(holder_key(holder), grant_id, request_id=request.state.request_id)
    return grant_out(made)


@router.post("/api/v1/holder/grants", status_code=201, response_model=GrantOut)
def create_grant(body: GrantIn, request: Request, response: Response, holder: Holder) -> GrantOut:
    """授权某部门为某一事项、某一办件使用本人证照 / let a department use one of your licences
    for one service item and business number, until a date (at most a year)."""
    response.headers.update(NO_STORE)
    grant = GrantRequest(
        identifier=body.identifier,
        department_code=body.department,
        service_item=body.service_item,
        business_number=body.business_number,
        valid_until=body.valid_until,
    )
    return _create(request, holder, grant)


@router.get("/api/v1/holder/grants", response_model=GrantsOut)
def list_grants(
    request: Request,
    response: Response,
    holder: Holder,
    status: Annotated[str | None, Query(pattern="^(active|withdrawn|expired)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> GrantsOut:
    """本人的授权，新的在前 / your grants, newest first."""
    response.headers.update(NO_STORE)
    items = grant_outs(services_of(request).grant_desk.of_holder(holder_key(holder), limit))
    return GrantsOut(items=[g for g in items if status is None or g.status == status])


@router.post("/api/v1/holder/grants/{grant_id}/withdraw", response_model=GrantOut)
def withdraw_grant(
    grant_id: GrantId, request: Request, response: Response, holder: Holder
) -> GrantOut:
    """撤回授权，即时生效 / withdraw a grant; it stops working at once."""
    response.headers.update(NO_STORE)
    return _withdraw(request, holder, grant_id)


@router.get("/api/v1/holder/usage", response_model=UsageOut)
def usage_log(
    request: Request,
    response: Response,
    holder: Holder,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> UsageOut:
    """谁在何时使用了本人的证照：部门调取与核验记录，新的在前 / who used your licences when:
    department pulls and verifications, newest first."""
    response.headers.update(NO_STORE)
    return usage_out(services_of(request).usage_log.of_holder(holder_key(holder), cursor, limit))


# --- pages -------------------------------------------------------------------------------------


def _signed_out(request: Request, template: str) -> HTMLResponse:
    problem = getattr(request.state, "holder_problem", None)
    return templates.TemplateResponse(
        request,
        template,
        {
            "holder": None,
            "signed_out": problem or "请先登录 / sign in first",
            "sign_in": SIGN_IN,
        },
        status_code=401,
        headers=NO_STORE,
    )


def _grants_page(
    request: Request,
    holder: HolderPrincipal,
    *,
    notice: str | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    desk = services_of(request).grant_desk
    today = desk.today()
    shown = desk.form(holder_key(holder))
    context: dict[str, Any] = page_context(request, holder, nav="grants") | {
        "grants": grant_outs(shown.grants),
        "targets": shown.targets,
        "departments": shown.departments,
    }
    context |= {
        "notice": notice,
        "error": error,
        "form": form or {"valid_until": (today + timedelta(days=30)).isoformat()},
        "today": today.isoformat(),
        "latest": latest_end(today).isoformat(),
    }
    return templates.TemplateResponse(
        request, "holder_grants.html", context, status_code=status_code, headers=NO_STORE
    )


@router.get("/me/grants", response_class=HTMLResponse, include_in_schema=False)
def grants_page(
    request: Request, done: Annotated[str | None, Query(max_length=16)] = None
) -> HTMLResponse:
    """授权管理 / your grants: list, give, withdraw."""
    holder = optional_holder(request)
    if holder is None:
        return _signed_out(request, "holder_grants.html")
    return _grants_page(request, holder, notice=NOTICES.get(done or ""))


@router.post("/me/grants", response_class=HTMLResponse, include_in_schema=False)
def grants_form(
    request: Request,
    holder: FormHolder,
    target: Annotated[str, Form(max_length=200)] = "",
    department: Annotated[str, Form(max_length=64)] = "",
    business_number: Annotated[str, Form(max_length=128)] = "",
    valid_until: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """The grant form: one choice names the licence and the service item."""
    form = {
        "target": target,
        "department": department.strip(),
        "business_number": business_number.strip(),
        "valid_until": valid_until,
    }
    identifier, _, item = target.partition(" ")
    try:
        if not identifier or not item:
            raise InvalidInput(
                "请选择证照和事项 / choose a licence and a service item", field="target"
            )
        try:
            until = date.fromisoformat(valid_until.strip())
        except ValueError as exc:
            raise InvalidInput(
                "请填写授权截止日期 / give the last day of the grant", field="valid_until"
            ) from exc
        _create(
            request,
            holder,
            GrantRequest(identifier, form["department"], item, form["business_number"], until),
        )
    except ElicenceError as exc:
        return _grants_page(
            request, holder, error=exc.message, form=form, status_code=STATUS[exc.kind]
        )
    return RedirectResponse("/me/grants?done=created", status_code=303)


@router.post("/me/grants/{grant_id}/withdraw", response_class=HTMLResponse, include_in_schema=False)
def withdraw_form(grant_id: GrantId, request: Request, holder: FormHolder) -> Response:
    try:
        _withdraw(request, holder, grant_id)
    except ElicenceError as exc:
        return _grants_page(request, holder, error=exc.message, status_code=STATUS[exc.kind])
    return RedirectResponse("/me/grants?done=withdrawn", status_code=303)


@router.get("/me/usage", response_class=HTMLResponse, include_in_schema=False)
def usage_page(
    request: Request, cursor: Annotated[str | None, Query(max_length=256)] = None
) -> HTMLResponse:
    """使用记录 / who used your licences, when."""
    holder = optional_holder(request)
    if holder is None:
        return _signed_out(request, "holder_usage.html")
    log, key = services_of(request).usage_log, holder_key(holder)
    try:
        page = log.of_holder(key, cursor, 20)
    except InvalidInput:
        page = log.of_holder(key, None, 20)
    return templates.TemplateResponse(
        request,
        "holder_usage.html",
        page_context(request, holder, nav="usage")
        | {"usage": usage_out(page), "first_page": not cursor},
        headers=NO_STORE,
    )
