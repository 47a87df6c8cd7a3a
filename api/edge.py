"""The edge of every HTTP request, as one pure ASGI middleware: request id, security headers,
CORS (when configured), rate and body limits, metrics and the JSON access log.

One plain ASGI callable instead of a ``BaseHTTPMiddleware`` per concern: each of those ran the
rest of the application in a task of its own and copied the response through a memory stream,
which cost more than a QR verification's own work. The order of the former stack is kept:

    request context and headers  ->  CORS  ->  metrics and log  ->  limits  ->  routes

so a CORS preflight gets the security headers but is neither counted nor rate-limited, and a
limit's problem answer is counted, logged and carries the CORS and security headers like any
other answer.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from api.limits import EdgeLimits
from api.observability import Metrics, RequestObserver

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com"
)
DOCS_PATHS = ("/docs", "/redoc")
STATIC_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)


def _request_headers(scope: Scope) -> dict[bytes, bytes]:
    """The first value of each request header the edge reads (as Starlette's ``Headers.get``)."""
    found: dict[bytes, bytes] = {}
    for key, value in scope["headers"]:
        if key in (b"x-request-id", b"content-length", b"authorization") and key not in found:
            found[key] = value
    return found


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        public_rate: str,
        client_rate: str,
        max_body: int,
        cors_origins: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.limits = EdgeLimits(
            public_rate=public_rate, client_rate=client_rate, max_body=max_body
        )
        self.observer = RequestObserver(metrics)
        self.inner: ASGIApp = self.observed
        if cors_origins:
            self.inner = CORSMiddleware(
                self.observed,
                allow_origins=cors_origins,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _request_headers(scope)
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or secrets.token_hex(
            8
        )
        scope.setdefault("state", {})["request_id"] = request_id
        csp = DOCS_CSP if scope["path"] in DOCS_PATHS else CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["X-Request-Id"] = request_id
                for name, value in STATIC_HEADERS:
                    out[name] = value
                out["Content-Security-Policy"] = csp
            await send(message)

        scope["elicence.edge"] = headers
        await self.inner(scope, receive, send_with_headers)

    async def observed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Metrics and the access log around the limits and the routes."""
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.limited(scope, receive, send_status)
        finally:
            state: dict[str, Any] = scope["state"]
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.observer.done(
                scope["method"],
                route,
                status,
                time.perf_counter() - started,
                state.get("request_id"),
                state.get("client_id"),
            )

    async def limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[bytes, bytes] = scope["elicence.edge"]
        client = scope.get("client")
        refusal = self.limits.refuse(
            scope["path"],
            length=headers.get(b"content-length"),
            authorization=headers.get(b"authorization"),
            address=client[0] if client else "unknown",
        )
        if refusal is None:
            await self.app(scope, receive, send)
            return
        response = problem(refusal.status, refusal.detail, Request(scope))
        if refusal.retry_after is not None:
            response.headers["Retry-After"] = str(refusal.retry_after)
        await response(scope, receive, send)
