"""Presentation codes for holders, holder links, the verification log, the QR keys.

Routes under ``/api/v1/licences/{identifier}/...`` are registered before the licence router,
whose ``POST /licences/{identifier}/{action}`` would otherwise take ``presentations``.
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
from core.db import reading, transaction
from core.errors import Conflict, Forbidden, Unauthenticated
from licences.holder_links import (
    DEFAULT_DAYS,
    LINK_PREFIX,
    MAX_DAYS,
    HolderLink,
    HolderLinks,
    LinkUnusable,
)
from licences.presentation import Presentation
from licences.repository import full_record, licence_by_identifier
from verify.log import CHANNELS, METHODS, VerificationLog, history
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


def links_service(request: Request) -> HolderLinks:
    services = services_of(request)
    return HolderLinks(services.audit, services.clock)


def audit_refused_link(request: Request, error: LinkUnusable) -> None:
    """A revoked or expired link presented whole is audited, in a transaction of its own (the
    refused request's is rolled back); unknown or wrong secrets are not written down."""
    if error.link_id is None:
        return
    with transaction(services_of(request).engine) as session:
        links_service(request).refused(session, error, request_id=request.state.request_id)


def _own(principal: DepartmentPrincipal, issuer_code: str) -> None:
    if issuer_code != principal.department_code:
        raise Forbidden("只有发证部门可以操作 / only the issuing department may do this")


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


@router.post("/api/v1/licences/{identifier}/holder-links", status_code=201)
def create_holder_link(
    identifier: str, request: Request, principal: Manager, body: HolderLinkIn | None = None
) -> JSONResponse:
    """A link for the holder to open on a phone and show a fresh presentation code. The secret
    in it is returned once and stored only as a SHA-256. It expires after ``valid_days`` (30
    unless given, at most a year); the holder sees it on their page and can revoke it."""
    services = services_of(request)
    with transaction(services.engine) as session:
        _own(principal, licence_by_identifier(session, identifier).issuer_code)
        link, secret = links_service(request).create(
            session,
            identifier,
            actor=principal.actor,
            valid_days=body.valid_days if body and body.valid_days else DEFAULT_DAYS,
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
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    try:
        with transaction(services.engine) as session:
            if scheme.lower() == "bearer" and token.startswith(LINK_PREFIX):
                link = links_service(request).resolve(session, token)
                if link.identifier != identifier:
                    raise Unauthenticated(
                        "持证人链接与证照不符 / the holder link is for another licence"
                    )
                actor = f"holder-link:{link.id}"
            else:
                principal = require(MANAGE)(request)
                _own(principal, licence_by_identifier(session, identifier).issuer_code)
                actor = principal.actor
            presentation = services.presentations.mint(
                session, identifier, actor=actor, request_id=request.state.request_id
            )
    except LinkUnusable as error:  # a credential that no longer holds: 401, same words
        audit_refused_link(request, error)
        raise Unauthenticated(error.message) from None
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
    services = services_of(request)
    with reading(services.engine) as session:
        _own(principal, licence_by_identifier(session, identifier).issuer_code)
        rows = history(session, identifier, limit)
    return {"identifier": identifier, "verifications": [_entry_json(r) for r in rows]}


@router.get("/pki/qr-keys")
def qr_keys(request: Request) -> JSONResponse:
    """The public QR keys, for offline verification; a trust-list file by itself
    (``elicence verify --qr TEXT --offline --trust-list FILE``)."""
    services = services_of(request)
    return JSONResponse(services.qr_keys.to_json(), headers={"Cache-Control": "max-age=300"})


def _mint_for_holder(request: Request, secret: str) -> tuple[Presentation | None, str, Any]:
    """Mint for the holder link ``secret``: the presentation (None when the licence cannot be
    presented now, with the reason), and the licence summary."""
    services = services_of(request)
    try:
        with transaction(services.engine) as session:
            return _mint_in(request, session, links_service(request).resolve(session, secret))
    except LinkUnusable as error:
        audit_refused_link(request, error)
        raise


def _mint_in(
    request: Request, session: Any, link: HolderLink
) -> tuple[Presentation | None, str, Any]:
    services = services_of(request)
    licence = licence_by_identifier(session, link.identifier)
    summary = licence_summary(full_record(session, licence), china_today(services.clock.now()))
    try:
        presentation = services.presentations.mint(
            session,
            link.identifier,
            actor=f"holder-link:{link.id}",
            request_id=request.state.request_id,
        )
    except Conflict as exc:
        return None, exc.message, summary
    return presentation, "", summary


@router.get("/h/present/{secret}", response_class=HTMLResponse, include_in_schema=False)
def holder_page(secret: str, request: Request) -> HTMLResponse:
    """The holder's phone page: a presentation QR that renews itself (``/static/present.js``),
    the licence as a clerk will see it, and who verified it when."""
    services = services_of(request)
    try:
        presentation, refused, summary = _mint_for_holder(request, secret)
    except LinkUnusable as exc:  # unknown, wrong, revoked or expired: one page for all
        return templates.TemplateResponse(
            request, "present.html", {"error": exc.message}, status_code=404, headers=NO_STORE
        )
    with reading(services.engine) as session:
        rows = history(session, summary.identifier, 20)
    now = services.clock.now()
    context: dict[str, Any] = {
        "licence": summary,
        "refused": refused,
        "presentation": presentation_json(presentation, now) if presentation else None,
        "ttl": int(services.presentations.ttl.total_seconds()),
        "refresh_url": f"/h/present/{secret}/qr",
        "history": [
            {
                **_entry_json(row),
                "style": STATUS_STYLE[Indication(row.indication)],
                "reason": reason(
                    row.method, SubIndication(row.sub_indication) if row.sub_indication else None
                ),
            }
            for row in rows
        ],
    }
    return templates.TemplateResponse(request, "present.html", context, headers=NO_STORE)


@router.get("/h/present/{secret}/qr", include_in_schema=False)
def holder_refresh(secret: str, request: Request) -> JSONResponse:
    """A fresh presentation code for the holder page's script."""
    presentation, refused, _ = _mint_for_holder(request, secret)
    if presentation is None:
        raise Conflict(refused)
    return JSONResponse(
        presentation_json(presentation, services_of(request).clock.now()),
        headers=NO_STORE,
    )
