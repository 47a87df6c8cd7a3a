"""The holder's pages (持证人页面): ``/me`` — my licences — and what a holder does with one:
download the sealed PDF, show a presentation QR, make and download a purpose-stamped copy.

Pages extend ``holder_base.html`` (Chinese first, English alongside; no inline script). Forms
post the session's CSRF token as ``csrf``. Nobody signed in gets the sign-in prompt; another
holder's licence or copy is a 404 like one that does not exist; other refusals are shown as a
page in words. The same data as JSON for a holder app: ``api.pages.holder_api``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.edge.errors import STATUS
from api.edge.holder_session import (
    HolderPrincipal,
    current_holder,
    form_holder,
    optional_holder,
    page_context,
)
from api.edge.state import services_of
from api.pages.holder_views import (
    copy_json,
    holder_key,
    licence_json,
    link_json,
    ofd_desk,
    ofd_response,
    pdf_response,
    presentation_json,
)
from api.pages.signin import message_page
from api.pages.verify import templates
from core.errors import ElicenceError, Forbidden, Unauthenticated
from licences.presentation import SHOW_ONLY
from licences.stamped import MAX_PURPOSE

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}
SIGN_IN = "查看本人电子证照须先通过统一身份认证登录。/ Sign in to see your licences."
FormHolder = Annotated[HolderPrincipal, Depends(form_holder)]
LinkId = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[0-9a-f]+$")]
# The service item a presentation code authorises; absent or empty: show only. Checked by the
# desk against the licence type's items, so a wrong one is answered in words on the page.
ServiceItem = Annotated[str | None, Query()]
NOTICES = {"link-revoked": "已撤销链接，即时失效 / Link revoked; it stopped working at once."}


def _sign_in(request: Request) -> HTMLResponse:
    problem = getattr(request.state, "holder_problem", None)
    return message_page(
        request, 401, ("请先登录", "Please sign in"), problem or SIGN_IN, kind="warn"
    )


def _render(
    request: Request,
    holder: HolderPrincipal,
    template: str,
    context: dict[str, Any],
    status: int = 200,
) -> HTMLResponse:
    values = page_context(request, holder, nav="licences") | context
    return templates.TemplateResponse(
        request, template, values, status_code=status, headers=NO_STORE
    )


def _refused(request: Request, holder: HolderPrincipal, exc: ElicenceError) -> HTMLResponse:
    return message_page(
        request,
        STATUS[exc.kind],
        ("无法完成", "Could not be done"),
        exc.message,
        signin=False,
        context=page_context(request, holder, nav="licences"),
    )


@router.get("/me", response_class=HTMLResponse)
def my_page(
    request: Request, done: Annotated[str | None, Query(max_length=16)] = None
) -> HTMLResponse:
    """My licences, and the holder links made for them (each revocable)."""
    holder = optional_holder(request)
    if holder is None:
        return _sign_in(request)
    services = services_of(request)
    desk, key = services.holder_desk, holder_key(holder)
    now = services.clock.now()
    policy = services.expiry.policy
    items = [licence_json(r, now, expiry=policy) for r in desk.licences(key)]
    links = [link_json(link) for link in desk.links(key)]
    context = {"licences": items, "links": links, "notice": NOTICES.get(done or "")}
    return _render(request, holder, "holder_licences.html", context)


@router.post("/me/links/{link_id}/revoke", response_class=HTMLResponse)
def revoke_link_form(link_id: LinkId, request: Request, holder: FormHolder) -> Response:
    """The revoke button of a holder link on ``/me`` (the form carries the CSRF token)."""
    try:
        services_of(request).holder_desk.revoke_link(
            holder_key(holder), link_id, request_id=request.state.request_id
        )
    except ElicenceError as exc:
        return _refused(request, holder, exc)
    return RedirectResponse("/me?done=link-revoked#links", status_code=303, headers=NO_STORE)


def _detail(
    request: Request,
    holder: HolderPrincipal,
    identifier: str,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
    new_copy: str | None = None,
) -> HTMLResponse:
    services = services_of(request)
    desk = services.holder_desk
    try:
        found = desk.licence(holder_key(holder), identifier)
    except ElicenceError as exc:
        return _refused(request, holder, exc)
    context = {
        "licence": licence_json(
            found.record, services.clock.now(), detail=True, expiry=services.expiry.policy
        ),
        "copies": [copy_json(c, desk) for c in found.copies],
        "objections": services.objections.of_holder(holder_key(holder), identifier),
        "error": error,
        "form": form or {},
        "new_copy": new_copy,
        "max_purpose": MAX_PURPOSE,
        "documents": ofd_desk(services.ofd_desk).documents(found.record.licence.identifier),
    }
    return _render(request, holder, "holder_licence.html", context, status)


@router.get("/me/licences/{identifier}", response_class=HTMLResponse)
def licence_page(identifier: str, request: Request, copy: str | None = None) -> HTMLResponse:
    holder = optional_holder(request)
    if holder is None:
        return _sign_in(request)
    return _detail(request, holder, identifier, new_copy=copy)


@router.get("/me/licences/{identifier}/pdf")
def licence_pdf(identifier: str, request: Request) -> Response:
    holder = optional_holder(request)
    if holder is None:
        return _sign_in(request)
    try:
        desk = services_of(request).holder_desk
        return pdf_response(desk.licence_pdf(holder_key(holder), identifier))
    except ElicenceError as exc:
        return _refused(request, holder, exc)


@router.get("/me/licences/{identifier}/document.ofd")
def licence_ofd(identifier: str, request: Request) -> Response:
    holder = optional_holder(request)
    if holder is None:
        return _sign_in(request)
    try:
        desk = ofd_desk(services_of(request).ofd_desk)
        return ofd_response(desk.for_holder(holder_key(holder), identifier))
    except ElicenceError as exc:
        return _refused(request, holder, exc)


@router.get("/me/licences/{identifier}/present", response_class=HTMLResponse)
def present_page(
    identifier: str, request: Request, service_item: ServiceItem = None
) -> HTMLResponse:
    """A presentation QR that renews itself, as on the holder-link page, for a signed-in
    holder's own valid licence: show only, or a use authorisation code for the service item the
    holder picks (the choice stays when the code renews: the refresh URL carries it)."""
    holder = optional_holder(request)
    if holder is None:
        return _sign_in(request)
    services = services_of(request)
    try:
        shown = services.holder_desk.present_page(
            holder_key(holder),
            identifier,
            request_id=request.state.request_id,
            service_item=service_item,
        )
    except ElicenceError as exc:
        return _refused(request, holder, exc)
    licence = licence_json(shown.record, services.clock.now())
    presentation = shown.presentation
    refresh = f"/me/licences/{licence['identifier']}/present/qr"
    if shown.service_item:
        refresh += "?" + urlencode({"service_item": shown.service_item})
    context = {
        "licence": licence,
        "presentation": presentation_json(presentation, services.clock.now())
        if presentation
        else None,
        "refused": shown.refused,
        "ttl": services.holder_desk.ttl_seconds,
        "refresh_url": refresh,
        "choices": shown.choices,
        "service_item": shown.service_item,
        "show_only": SHOW_ONLY,
    }
    return _render(request, holder, "holder_present.html", context, 200 if presentation else 409)


@router.get("/me/licences/{identifier}/present/qr")
def present_refresh(
    identifier: str, request: Request, service_item: ServiceItem = None
) -> JSONResponse:
    """A fresh code for the page's script (``/static/present.js``), for the same choice."""
    holder = current_holder(request)
    services = services_of(request)
    presentation = services.holder_desk.present(
        holder_key(holder),
        identifier,
        request_id=request.state.request_id,
        service_item=service_item,
    )
    body = presentation_json(presentation, services.clock.now())
    body["service_item"] = presentation.service_item
    return JSONResponse(body, headers=NO_STORE)


@router.post("/me/licences/{identifier}/stamped-copies", response_class=HTMLResponse)
async def stamp(identifier: str, request: Request) -> Response:
    """The stamped-copy form: made, then back to the licence page with the new copy shown."""
    try:
        holder = await form_holder(request)
    except Unauthenticated as exc:
        request.state.holder_problem = exc.message
        return _sign_in(request)
    except Forbidden as exc:
        return message_page(request, 403, ("无法完成", "Could not be done"), exc.message)
    form = await request.form(max_files=0, max_fields=8)
    entered = {
        "purpose": str(form.get("purpose") or "")[: 4 * MAX_PURPOSE],
        "service_item": str(form.get("service_item") or "")[:64],
    }
    return await run_in_threadpool(_stamp, request, holder, identifier, entered)


def _stamp(
    request: Request, holder: HolderPrincipal, identifier: str, entered: dict[str, str]
) -> Response:
    desk = services_of(request).holder_desk
    try:
        copy = desk.stamp(
            holder_key(holder),
            identifier,
            purpose=entered["purpose"] or None,
            service_item=entered["service_item"] or None,
            request_id=request.state.request_id,
        )
    except ElicenceError as exc:
        if exc.kind.value == "not-found":
            return _refused(request, holder, exc)
        return _detail(
            request, holder, identifier, status=STATUS[exc.kind], error=exc.message, form=entered
        )
    return RedirectResponse(
        f"/me/licences/{copy.identifier}?copy={copy.id}#copies", status_code=303, headers=NO_STORE
    )


@router.get("/me/stamped-copies/{copy_id}/pdf")
def stamped_copy_pdf(copy_id: str, request: Request) -> Response:
    holder = optional_holder(request)
    if holder is None:
        return _sign_in(request)
    try:
        desk = services_of(request).holder_desk
        return pdf_response(desk.copy_pdf(holder_key(holder), copy_id))
    except ElicenceError as exc:
        return _refused(request, holder, exc)
