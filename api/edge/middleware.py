"""The edge of every HTTP request, as one pure ASGI middleware: request id, security headers,
CORS (when configured), rate and body limits, metrics and the JSON access log.

One plain ASGI callable instead of a ``BaseHTTPMiddleware`` per concern: each of those ran the
rest of the application in a task of its own and copied the response through a memory stream,
which cost more than a QR verification's own work. The order of the former stack is kept:

    request context and headers  ->  CORS  ->  metrics and log  ->  limits  ->  routes

so a CORS preflight gets the security headers but is neither counted nor rate-limited, and a
limit's problem answer is counted, logged and carries the CORS and security headers like any
other answer.

The limits (``api.edge.limits``) come before any byte of the body is read: a declared length over
the route's limit is a 413, a write under ``/api/v1`` without a well-formed credential a 401.
Then the body itself is bounded (``api.edge.bodies``): a JSON body is collected up to its limit and
its nesting checked (413, 422) before the route sees it; any other body is counted as the route
reads it, and the read that goes past the limit raises the 413.
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

from api.edge.bodies import (
    BodyTooLarge,
    collect,
    counting,
    joined,
    json_too_deep,
    message_end,
    replay,
)
from api.edge.errors import problem
from api.edge.limits import WRITES, EdgeLimits, Refusal, is_json, too_deep, too_large
from api.edge.observability import Metrics, RequestObserver
from api.settings import Settings

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


EDGE_HEADERS = (b"x-request-id", b"content-length", b"authorization", b"content-type", b"cookie")


def _request_headers(scope: Scope) -> dict[bytes, bytes]:
    """The first value of each request header the edge reads (as Starlette's ``Headers.get``)."""
    found: dict[bytes, bytes] = {}
    for key, value in scope["headers"]:
        if key in EDGE_HEADERS and key not in found:
            found[key] = value
    return found


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        settings: Settings,
        cors_origins: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.limits = EdgeLimits(settings)
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
        """The limits, then the routes with the body bounded: a JSON body collected (up to its
        limit) and checked for nesting first, any other body counted as the route reads it."""
        headers: dict[bytes, bytes] = scope["elicence.edge"]
        client = scope.get("client")
        method, path = scope["method"], scope["path"]
        rule = self.limits.body_rule(path)
        json_body = is_json(headers.get(b"content-type"))
        limit = rule.for_content(json_body)
        refusal = self.limits.refuse(
            method,
            path,
            length=headers.get(b"content-length"),
            limit=limit,
            authorization=headers.get(b"authorization"),
            cookie=headers.get(b"cookie"),
            address=client[0] if client else "unknown",
        )
        if refusal is not None:
            await self.refuse(refusal, scope, receive, send)
            return
        if json_body and rule.json_scanned and method in WRITES:
            messages, over = await collect(receive, limit)
            if over:
                await self.refuse(too_large(limit), scope, receive, send)
                return
            body, ended = joined(messages), message_end(messages)
            if ended is None and json_too_deep(body, self.limits.max_json_depth):
                await self.refuse(too_deep(self.limits.max_json_depth), scope, receive, send)
                return
            await self.app(scope, replay(body, ended, receive), send)
            return
        await self.bounded(scope, counting(receive, limit), send, limit)

    async def bounded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """The routes with a counted body. The framework answers the 413 a route's reading
        raises; should it escape (a mounted application without the handlers), it is answered
        here, if nothing was sent yet."""
        started = False

        async def send_started(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_started)
        except BodyTooLarge:
            if started:
                raise
            await self.refuse(too_large(limit), scope, receive, send)

    async def refuse(self, refusal: Refusal, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(refusal.status, refusal.detail, Request(scope), field=refusal.field)
        if refusal.retry_after is not None:
            response.headers["Retry-After"] = str(refusal.retry_after)
        await response(scope, receive, send)
