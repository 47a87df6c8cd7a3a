"""The HTTP application, built once from settings."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from api import (
    errors,
    limits,
    observability,
    routes_auth,
    routes_catalogue,
    routes_exchange,
    routes_licences,
    routes_lifecycle,
    routes_pki,
    routes_present,
    routes_registry,
    routes_seals,
    routes_stats,
    routes_verify,
)
from api.container import Services, build_services
from api.observability import InstrumentedIssuance, InstrumentedVerification, Metrics
from api.settings import Settings
from core.db import reading

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com"
)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    services = services or build_services(settings or Settings())
    app = FastAPI(
        title="elicence 电子证照与电子印章服务",
        version="0.1.0",
        description="签发、盖章、核验电子证照 / issue, seal and verify electronic licences",
    )
    metrics = Metrics()
    services.issuance = InstrumentedIssuance(services.issuance, metrics)  # type: ignore[assignment]
    services.verification = InstrumentedVerification(services.verification, metrics)  # type: ignore[assignment]
    app.state.services = services
    app.state.metrics = metrics
    errors.install(app)
    errors.document_problems(app)
    # Middleware added later wraps what was added before: limits run inside the request context.
    limits.install(
        app,
        public_rate=services.settings.public_rate_limit,
        client_rate=services.settings.client_rate_limit,
        max_body=services.settings.max_upload_bytes,
    )
    observability.install(app, metrics)
    if services.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=services.settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.request_id = request.headers.get("x-request-id", "")[
            :64
        ] or secrets.token_hex(8)
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        docs = request.url.path in ("/docs", "/redoc")
        response.headers["Content-Security-Policy"] = DOCS_CSP if docs else CSP
        return response

    app.include_router(routes_auth.router)
    app.include_router(routes_present.router)  # before routes_licences: see its docstring
    app.include_router(routes_licences.router)
    app.include_router(routes_lifecycle.router)
    app.include_router(routes_exchange.router)
    app.include_router(routes_catalogue.router)
    app.include_router(routes_verify.router)
    app.include_router(routes_pki.router)
    app.include_router(routes_seals.router)
    app.include_router(routes_registry.router)
    app.include_router(routes_registry.departments)
    app.include_router(routes_stats.router)
    app.mount(
        "/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"
    )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            with reading(services.engine) as session:
                session.connection().execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception:
            checks["database"] = "unavailable"
        try:
            services.keystore.list()
            checks["keystore"] = "ok"
        except Exception:
            checks["keystore"] = "unavailable"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    return app
