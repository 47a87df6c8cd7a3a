"""The holder's objections (错录申诉): flag a field of one of my licences as wrong, and see how
the issuing department answered — ``/me/objections`` (all of mine), ``/me/licences/{id}/objections``
(one licence's, with the form), and the same for a holder app under ``/api/v1/holder``.

Another holder's licence is a 404 like a missing one; a refusal the holder can act on (a comment
too long, an objection already open, a licence no longer in force) is shown on the page in
words with what was entered, Chinese first.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.edge.errors import STATUS
from api.edge.holder_session import (
    HolderPrincipal,
    current_holder,
    form_holder,
    optional_holder,
    page_context,
)
from api.edge.state import services_of
from api.pages.holder_views import holder_key
from api.pages.signin import message_page
from api.pages.verify import templates
from core.errors import ElicenceError
from licences.objection_records import MAX_TEXT
from licences.objections import ObjectionView

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1/holder", tags=["holder 持证人"])
NO_STORE = {"Cache-Control": "no-store"}
SIGN_IN = "查看错录申诉须先登录。/ Sign in to see your objections."
FormHolder = Annotated[HolderPrincipal, Depends(form_holder)]
ApiHolder = Annotated[HolderPrincipal, Depends(current_holder)]


def _page(
    request: Request,
    holder: HolderPrincipal,
    objections: list[ObjectionView],
    *,
    licence: dict[str, Any] | None = None,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
    done: bool = False,
) -> HTMLResponse:
    values = page_context(request, holder, nav="objections") | {
        "objections": objections,
        "licence": licence,
        "error": error,
        "form": form or {},
        "done": done,
        "max_text": MAX_TEXT,
    }
    return templates.TemplateResponse(
        request, "holder_objections.html", values, status_code=status, headers=NO_STORE
    )


def _refused(request: Request, holder: HolderPrincipal, exc: ElicenceError) -> HTMLResponse:
    return message_page(
        request,
        STATUS[exc.kind],
        ("无法完成", "Could not be done"),
        exc.message,
        signin=False,
        context=page_context(request, holder, nav="objections"),
    )


def _licence_form(request: Request, holder: HolderPrincipal, identifier: str) -> dict[str, Any]:
    """The licence the form is about: its name, status and fields to choose from."""
    found = services_of(request).holder_desk.licence(holder_key(holder), identifier)
    record = found.record
    properties = record.licence_type.field_schema.get("properties", {})
    return {
        "identifier": record.licence.identifier,
        "type_name": record.licence_type.name,
        "status": record.licence.status,
        "fields": [
            {
                "name": name,
                "title": str(spec.get("title") or name),
                "value": record.licence.fields.get(name, ""),
            }
            for name, spec in properties.items()
        ],
    }


@router.get("/me/objections", response_class=HTMLResponse)
def my_objections(request: Request) -> HTMLResponse:
    """我的错录申诉及处理结果 / my objections and their answers, newest first."""
    holder = optional_holder(request)
    if holder is None:
        return message_page(request, 401, ("请先登录", "Please sign in"), SIGN_IN, kind="warn")
    found = services_of(request).objections.of_holder(holder_key(holder))
    return _page(request, holder, found)


@router.get("/me/licences/{identifier}/objections", response_class=HTMLResponse)
def licence_objections(identifier: str, request: Request, done: str | None = None) -> HTMLResponse:
    holder = optional_holder(request)
    if holder is None:
        return message_page(request, 401, ("请先登录", "Please sign in"), SIGN_IN, kind="warn")
    try:
        licence = _licence_form(request, holder, identifier)
        found = services_of(request).objections.of_holder(holder_key(holder), identifier)
    except ElicenceError as exc:
        return _refused(request, holder, exc)
    return _page(request, holder, found, licence=licence, done=done == "raised")


@router.post("/me/licences/{identifier}/objections", response_class=HTMLResponse)
async def raise_form(identifier: str, request: Request, holder: FormHolder) -> Response:
    """The objection form (CSRF in the form): the field, a comment, the value believed right."""
    form = await request.form(max_files=0, max_fields=16)
    entered = {
        key: value if isinstance(value := form.get(key), str) else ""
        for key in ("field", "comment", "proposed")
    }
    services = services_of(request)
    try:
        services.objections.raise_objection(
            holder_key(holder),
            identifier,
            field=entered["field"],
            comment=entered["comment"],
            proposed=entered["proposed"] or None,
            request_id=request.state.request_id,
        )
    except ElicenceError as exc:
        if exc.kind.value == "not-found":
            return _refused(request, holder, exc)
        try:
            licence = _licence_form(request, holder, identifier)
        except ElicenceError as again:
            return _refused(request, holder, again)
        found = services.objections.of_holder(holder_key(holder), identifier)
        return _page(
            request,
            holder,
            found,
            licence=licence,
            status=STATUS[exc.kind],
            error=exc.message,
            form=entered,
        )
    return RedirectResponse(
        f"/me/licences/{identifier}/objections?done=raised#objections",
        status_code=303,
        headers=NO_STORE,
    )


class ObjectionRequest(BaseModel):
    """错录申诉：字段、说明（1-500 字）及认为正确的值（可选）/ the field, a comment and,
    optionally, the value you believe is right."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(min_length=1, max_length=64)
    comment: str = Field(max_length=4 * MAX_TEXT)  # counted and checked by the desk
    proposed: str | None = Field(default=None, max_length=4 * MAX_TEXT)


@api_router.get("/objections")
def objections_json(request: Request, holder: ApiHolder) -> JSONResponse:
    """我的错录申诉，新的在前 / my objections, newest first."""
    found = services_of(request).objections.of_holder(holder_key(holder))
    return JSONResponse({"items": [v.as_json() for v in found]}, headers=NO_STORE)


@api_router.post("/licences/{identifier}/objections", status_code=201)
def raise_json(
    identifier: str, body: ObjectionRequest, request: Request, holder: ApiHolder
) -> JSONResponse:
    view = services_of(request).objections.raise_objection(
        holder_key(holder),
        identifier,
        field=body.field,
        comment=body.comment,
        proposed=body.proposed,
        request_id=request.state.request_id,
    )
    return JSONResponse(view.as_json(), status_code=201, headers=NO_STORE)
