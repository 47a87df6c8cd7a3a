"""The signed-in supervisor (监察人员), carried in a session cookie of its own.

The value is sealed exactly as the holder's (``api.edge.holder_session.HolderSessions``: JWE,
direct AES-256-GCM, the purpose in the protected header), under its own purpose label, so a
holder's cookie can never be presented as a supervisor's or the reverse, and under its own
cookie name. It holds the client id, the CSRF token and when the session began — nothing
personal. The cookie is HttpOnly, SameSite=Strict (no page elsewhere can make the browser send
it), Secure when the service is reached over https; it lapses after 30 minutes without a request
(each request seals it anew) and 8 hours after sign-in whatever happens. Every request re-reads
the client (``SupervisorDesk.active``), so revoking it ends the session at once.

Each session has a random id (``sid``) that its renewals keep. Signing out records the id as
revoked in the shared store (``core.shared_state``) until the session's 8 hours are over, and
every request checks it, so a copy of any of its cookies is refused by every worker afterwards
(503 when Redis does not answer: fail closed).

The departments' JSON API for supervisors takes the office's client as a Bearer credential
instead (:func:`bearer_supervisor`).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from fastapi import Request, Response

from api.edge.auth import require
from api.edge.state import services_of
from core.errors import Forbidden, Unauthenticated
from seals.clients import SUPERVISE
from supervision.supervisor_desk import Supervisor

COOKIE = "elicence_supervisor"
PURPOSE = "supervisor-session"
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=8)
SIGN_IN_FIRST = "请先登录监察平台 / sign in to the supervision desk first (/supervise/sign-in)"
REVOKED = (
    "监察凭证已吊销或已失效，请重新登录 / the supervision credentials are revoked; sign in again"
)
_ENDED = "登录已超过8小时，请重新登录 / signed in more than 8 hours ago; sign in again"
BAD_CSRF = "请求缺少有效的 CSRF 令牌 / the request lacks a valid CSRF token"


def seal_session(request: Request, supervisor: Supervisor, now: datetime) -> str:
    """The cookie value for a supervisor who has just signed in."""
    claims = {
        "client": supervisor.client_id,
        "csrf": secrets.token_urlsafe(16),
        "since": int(now.timestamp()),
        "sid": secrets.token_urlsafe(16),
    }
    return _seal(request, claims, now)


def _seal(request: Request, claims: dict[str, object], now: datetime) -> str:
    since = datetime.fromtimestamp(int(str(claims["since"])), tz=now.tzinfo)
    expires = min(now + IDLE, since + ABSOLUTE)
    return services_of(request).holder_sessions.sign(PURPOSE, claims, expires)


def set_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(IDLE.total_seconds()),
        path="/supervise",
        secure=services_of(request).holder_sessions.secure,
        httponly=True,
        samesite="strict",
    )


def clear_cookie(request: Request, response: Response) -> None:
    """Sign-out: the request's session (opened by :func:`form_supervisor`) is revoked for every
    worker until its absolute end, and the browser's cookie is cleared."""
    services = services_of(request)
    ended: tuple[str, int] | None = getattr(request.state, "supervisor_session", None)
    if ended is not None:
        sid, since = ended
        services.holder_sessions.revoke(
            sid, since + int(ABSOLUTE.total_seconds()), services.clock.now()
        )
    secure = services.holder_sessions.secure
    response.delete_cookie(
        COOKIE, path="/supervise", secure=secure, httponly=True, samesite="strict"
    )


def _open(request: Request) -> Supervisor:
    services = services_of(request)
    value = request.cookies.get(COOKIE)
    if not value:
        raise Unauthenticated(SIGN_IN_FIRST)
    now = services.clock.now()
    sessions = services.holder_sessions
    claims = sessions.unsign(PURPOSE, value, now)
    try:
        client_id, csrf, since = str(claims["client"]), str(claims["csrf"]), int(claims["since"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Unauthenticated(SIGN_IN_FIRST) from exc
    if now.timestamp() >= since + ABSOLUTE.total_seconds():
        raise Unauthenticated(_ENDED)
    sid = sessions.check_not_revoked(claims.get("sid"))
    request.state.supervisor_session = (sid, since)
    supervisor = services.supervisors.active(client_id)
    if supervisor is None:
        raise Unauthenticated(REVOKED)
    request.state.supervisor_csrf = csrf
    request.state.supervisor_renewed = _seal(request, claims, now)  # slides the idle limit
    return supervisor


def optional_supervisor(request: Request) -> Supervisor | None:
    """For pages that send a visitor who is not signed in to the sign-in form; the reason is
    kept in ``request.state.supervisor_problem``."""
    request.state.supervisor_problem = None
    try:
        return _open(request)
    except Unauthenticated as exc:
        request.state.supervisor_problem = exc.message if request.cookies.get(COOKIE) else None
        return None


async def form_supervisor(request: Request) -> Supervisor:
    """FastAPI dependency for a supervision page's POST form: the session and its CSRF token in
    the form field ``csrf`` (or ``X-CSRF-Token``); 401 without a session, 403 without the token."""
    supervisor = _open(request)
    presented = request.headers.get("x-csrf-token", "")
    if not presented:
        form = await request.form(max_files=0, max_fields=16)
        field = form.get("csrf")
        presented = field if isinstance(field, str) else ""
    csrf: str = request.state.supervisor_csrf
    if not presented or not hmac.compare_digest(presented.encode(), csrf.encode()):
        raise Forbidden(BAD_CSRF)
    return supervisor


def renew(request: Request, response: Response) -> Response:
    """Sets the session cookie sealed anew for this request (the idle limit slides)."""
    value = getattr(request.state, "supervisor_renewed", None)
    if value:
        set_cookie(request, response, value)
    return response


def csrf_of(request: Request) -> str:
    return str(getattr(request.state, "supervisor_csrf", ""))


_bearer = require(SUPERVISE)


def bearer_supervisor(request: Request) -> Supervisor:
    """FastAPI dependency for the supervision JSON API: a Bearer credential (API key or access
    token) of a client holding ``supervise``; 401 without one, 403 for a department's."""
    principal = _bearer(request)
    supervisor = services_of(request).supervisors.active(principal.client_id)
    if supervisor is None:
        raise Unauthenticated(REVOKED)
    return supervisor
