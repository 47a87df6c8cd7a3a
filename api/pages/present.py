"""Presentation codes for holders, holder links, the verification log, the QR keys.

Routes under ``/api/v1/licences/{identifier}/...`` are registered before the licence router,
whose ``POST /licences/{identifier}/{action}`` would otherwise take ``presentations``. The
minting, the links and their audit entries are ``licences.presentation_desk``'s; the
verification history is ``verify.holder_usage``'s.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.edge.auth import DepartmentPrincipal, department, require
from api.edge.state import services_of
from api.pages.holder_views import presentation_json
from api.pages.verify import STATUS_STYLE, templates
from core.clock import china_today
from core.errors import Conflict, Unauthenticated
from licences.holder_links import LINK_PREFIX, MAX_DAYS, LinkUnusable
from verify.log import CHANNELS, METHODS, VerificationLog
from verify.report import Indication, SubIndication, reason
from verify.summary import licence_summary

router = APIRouter()
MANAGE = "licences:manage"
Principal = Annotated[DepartmentPrincipal, Depends(department)]
Manager = Annotated[DepartmentPrincipal, Depends(require(MANAGE))]
NO_STORE = {"Cache-Control": "no-store"}


class HolderLinkIn(BaseModel):
    """有效天数，缺省 30 天，最长一年 / how many days the link lasts (30 unless given, at most a
    year)."""

    model_config = ConfigDict(extra="forbid")
    valid_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)


def _entry_json(row: VerificationLog) -> dict[str, Any]:
    return {
        "at": row.at.isoformat(),
        "channel": row.channel,
        "channel_label": CHANNELS.get(row.channel, row.channel),
        "method": row.method,
        "method_label": METHODS.get(row.method, row.method),
        "indication": row.indication,
        "sub_indication": row.sub_indication,
    }


def _history_json(row: VerificationLog) -> dict[str, Any]:
    """A verification as the holder-link page lists it: with its colour and reason in words."""
    sub = SubIndication(row.sub_indication) if row.sub_indication else None
    return {
        **_entry_json(row),
        "style": STATUS_STYLE[Indication(row.indication)],
        "reason": reason(row.method, sub),
    }


@router.post("/api/v1/licences/{identifier}/holder-links", status_code=201)
def create_holder_link(
    identifier: str, request: Request, principal: Manager, body: HolderLinkIn | None = None
) -> JSONResponse:
    """A link for the holder to open on a phone and show a fresh presentation code. The secret
    in it is returned once and stored only as a SHA-256. It expires after ``valid_days`` (30
    unless given, at most a year); the holder sees it on their page and can revoke it."""
    services = services_of(request)
    link, secret = services.presentation_desk.create_link(
        identifier,
        department_code=principal.department_code,
        actor=principal.actor,
        valid_days=body.valid_days if body else None,
        request_id=request.state.request_id,
    )
    base = services.settings.public_base_url.rstrip("/")
    out = {
        "id": link.id,
        "identifier": identifier,
        "url": f"{base}/h/present/{secret}",
        "expires_at": link.expires_at.isoformat(),
    }
    return JSONResponse(out, status_code=201, headers=NO_STORE)


@router.post("/api/v1/licences/{identifier}/presentations", status_code=201)
def mint_presentation(identifier: str, request: Request) -> JSONResponse:
    """A short-lived presentation code. ``Authorization: Bearer`` carries either the issuing
    department's credentials (scope licences:manage) or the licence's holder-link secret."""
    services = services_of(request)
    desk, request_id = services.presentation_desk, request.state.request_id
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token.startswith(LINK_PREFIX):
        try:
            presentation = desk.mint_with_link(identifier, token, request_id=request_id)
        except LinkUnusable as error:  # a credential that no longer holds: 401, same words
            raise Unauthenticated(error.message) from None
    else:
        principal = require(MANAGE)(request)
        presentation = desk.mint_for_issuer(
            identifier,
            department_code=principal.department_code,
            actor=principal.actor,
            request_id=request_id,
        )
    return JSONResponse(
        presentation_json(presentation, services.clock.now()), status_code=201, headers=NO_STORE
    )


@router.get("/api/v1/licences/{identifier}/verifications")
def verifications(
    identifier: str,
    request: Request,
    principal: Principal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """When and through which channel the licence was verified, newest first."""
    log = services_of(request).usage_log
    rows = log.for_issuer(identifier, principal.department_code, limit)
    return {"identifier": identifier, "verifications": [_entry_json(r) for r in rows]}


@router.get("/pki/qr-keys")
def qr_keys(request: Request) -> JSONResponse:
    """The public QR keys, for offline verification; a trust-list file by itself
    (``elicence verify --qr TEXT --offline --trust-list FILE``)."""
    services = services_of(request)
    return JSONResponse(services.qr_keys.to_json(), headers={"Cache-Control": "max-age=300"})


@router.get("/h/present/{secret}", response_class=HTMLResponse, include_in_schema=False)
def holder_page(secret: str, request: Request) -> HTMLResponse:
    """The holder's phone page: a presentation QR that renews itself (``/static/present.js``),
    the licence as a clerk will see it, and who verified it when."""
    services = services_of(request)
    try:
        shown = services.presentation_desk.link_page(secret, request_id=request.state.request_id)
    except LinkUnusable as exc:  # unknown, wrong, revoked or expired: one page for all
        return templates.TemplateResponse(
            request, "present.html", {"error": exc.message}, status_code=404, headers=NO_STORE
        )
    now = services.clock.now()
    summary = licence_summary(shown.record, china_today(now))
    rows = services.usage_log.history(summary.identifier, 20)
    context: dict[str, Any] = {
        "licence": summary,
        "refused": shown.refused,
        "presentation": presentation_json(shown.presentation, now) if shown.presentation else None,
        "ttl": services.presentation_desk.ttl_seconds,
        "refresh_url": f"/h/present/{secret}/qr",
        "history": [_history_json(row) for row in rows],
    }
    return templates.TemplateResponse(request, "present.html", context, headers=NO_STORE)


@router.get("/h/present/{secret}/qr", include_in_schema=False)
def holder_refresh(secret: str, request: Request) -> JSONResponse:
    """A fresh presentation code for the holder page's script."""
    services = services_of(request)
    shown = services.presentation_desk.link_page(secret, request_id=request.state.request_id)
    if shown.presentation is None:
        raise Conflict(shown.refused)
    return JSONResponse(
        presentation_json(shown.presentation, services.clock.now()), headers=NO_STORE
    )
