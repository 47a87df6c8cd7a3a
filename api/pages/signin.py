"""Holder sign-in and sign-out pages: ``/me/login``, ``/me/callback``, ``/me/logout``.

Sign-out revokes the session's id in the shared store (``api.edge.holder_session.end_session``),
so a copy of the cookie is refused afterwards by every worker; the callback takes the sign-in's
``state`` once in the whole fleet (``api.pages.oidc.claim_state``).

The protocol is in ``api/pages/oidc.py``; this module keeps the transaction cookie, sets and clears
the session cookie (``api/edge/holder_session.py``), writes the audit entries (``holder.sign_in``,
``holder.sign_out``; a failed sign-in is ``holder.sign_in`` with outcome ``failed`` and the
reason: ``provider``, ``state``, ``issuer``, ``denied``, ``code``, ``id_token`` or
``identity``), and answers
every failure with a page that says what happened — never a 500.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.edge.holder_session import HolderPrincipal, end_session, form_holder
from api.edge.state import services_of
from api.pages.oidc import (
    DENIED,
    LOGIN,
    MIXED_UP,
    NOT_CONFIGURED,
    STATE,
    TRANSACTION_COOKIE,
    TRANSACTION_LIFETIME,
    SignInFailed,
    claim_state,
)
from api.pages.verify import templates
from core.errors import Forbidden, Unauthenticated

router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}
TITLES = {
    400: ("登录未完成", "Sign-in not completed"),
    401: ("登录失败", "Sign-in failed"),
    403: ("无法登录", "Sign-in refused"),
    503: ("暂时无法登录", "Sign-in unavailable"),
}


def message_page(
    request: Request,
    status: int,
    title: tuple[str, str],
    message: str,
    *,
    kind: str = "bad",
    signin: bool = True,
    reason: str | None = None,
    context: dict[str, Any] | None = None,
) -> HTMLResponse:
    """``holder_message.html``: a prompt, a result or an error, for a holder's browser."""
    services = services_of(request)
    values: dict[str, Any] = {
        "kind": kind,
        "title_zh": title[0],
        "title_en": title[1],
        "message": message,
        "signin": signin,
        "reason": reason,
        "demo_notice": services.dev_idp.notice if services.dev_idp is not None and signin else None,
        **(context or {}),
    }
    return templates.TemplateResponse(
        request, "holder_message.html", values, status_code=status, headers=NO_STORE
    )


def audit_sign_in(
    request: Request,
    *,
    action: str,
    actor: str,
    object_id: str,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    services_of(request).holder_desk.record_sign_in(
        action=action,
        actor=actor,
        object_id=object_id,
        outcome=outcome,
        request_id=request.state.request_id,
        detail=detail,
    )


def _failed(request: Request, exc: SignInFailed) -> HTMLResponse:
    audit_sign_in(
        request,
        action="holder.sign_in",
        actor="public",
        object_id=f"holder:{exc.subject}" if exc.subject else "holder:unknown",
        outcome="failed",
        detail={"reason": exc.reason},
    )
    return message_page(request, exc.status, TITLES[exc.status], exc.message, reason=exc.reason)


def _transaction_cookie(request: Request, response: Response, value: str | None) -> None:
    secure = services_of(request).holder_sessions.secure
    if value is None:
        response.delete_cookie(TRANSACTION_COOKIE, path="/me", secure=secure, httponly=True)
        return
    response.set_cookie(
        TRANSACTION_COOKIE,
        value,
        max_age=int(TRANSACTION_LIFETIME.total_seconds()),
        path="/me",
        secure=secure,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to /me/callback
    )


@router.get("/me/login")
def login(request: Request) -> Response:
    """Starts a sign-in: a fresh state, nonce and PKCE verifier, then off to the provider."""
    services = services_of(request)
    try:
        if services.oidc is None:
            raise SignInFailed(503, "provider", NOT_CONFIGURED)
        url, started = services.oidc.begin()
    except SignInFailed as exc:
        return _failed(request, exc)
    value = services.holder_sessions.sign(
        LOGIN, started, services.clock.now() + TRANSACTION_LIFETIME
    )
    response = RedirectResponse(url, status_code=303, headers=NO_STORE)
    _transaction_cookie(request, response, value)
    return response


@router.get("/me/callback")
def callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    iss: str | None = None,
) -> Response:
    """The provider sends the browser back here; the holder is signed in, or told why not."""
    services = services_of(request)
    try:
        if services.oidc is None:
            raise SignInFailed(503, "provider", NOT_CONFIGURED)
        try:
            started = services.holder_sessions.unsign(
                LOGIN, request.cookies.get(TRANSACTION_COOKIE, ""), services.clock.now()
            )
        except Unauthenticated:
            raise SignInFailed(400, "state", STATE) from None
        expected = str(started.get("state", ""))
        if not state or not expected or not hmac.compare_digest(state.encode(), expected.encode()):
            # The pending sign-in stays: the genuine answer may still arrive.
            raise SignInFailed(400, "state", STATE)
        if iss is not None and iss != services.oidc.config.issuer:  # RFC 9207 mix-up defence
            raise SignInFailed(400, "issuer", MIXED_UP)
        if not claim_state(services.holder_sessions.shared, expected):  # a replayed answer
            raise SignInFailed(400, "state", STATE)
    except SignInFailed as exc:
        return _failed(request, exc)
    try:
        if error or not code:
            raise SignInFailed(401, "denied", DENIED)
        principal: HolderPrincipal = services.oidc.finish(code[:512], started)
    except SignInFailed as exc:
        response: Response = _failed(request, exc)
        _transaction_cookie(request, response, None)  # the state has been used
        return response
    audit_sign_in(
        request,
        action="holder.sign_in",
        actor=principal.actor,
        object_id=principal.actor,
        detail={"issuer": principal.issuer, "id_type": principal.id_type},
    )
    response = RedirectResponse("/me", status_code=303, headers=NO_STORE)
    _transaction_cookie(request, response, None)
    sessions = services.holder_sessions
    sessions.set_cookie(response, sessions.seal(principal, services.clock.now()))
    return response


@router.post("/me/logout")
async def logout(request: Request) -> Response:
    """Ends the session (the form carries the CSRF token); an expired session just ends."""
    try:
        principal: HolderPrincipal | None = await form_holder(request)
    except Unauthenticated:
        principal = None
    except Forbidden as exc:
        return message_page(request, 403, ("无法退出", "Not signed out"), exc.message, signin=False)
    if principal is not None:
        await run_in_threadpool(end_session, request)  # every worker refuses the cookie now
        await run_in_threadpool(
            audit_sign_in,
            request,
            action="holder.sign_out",
            actor=principal.actor,
            object_id=principal.actor,
        )
    response = message_page(
        request,
        200,
        ("已退出登录", "Signed out"),
        "您已安全退出。/ You have signed out.",
        kind="ok",
    )
    services_of(request).holder_sessions.clear_cookie(response)
    return response
