"""The HTTP application, built once from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from api.container import Services, build_services
from api.dev_idp.app import create_dev_idp_app
from api.edge import code_desk, errors, observability
from api.edge.middleware import Edge
from api.edge.observability import InstrumentedIssuance, InstrumentedVerification, Metrics
from api.http import (
    catalogue,
    convert,
    credentials,
    exchange,
    federation,
    licences,
    lifecycle,
    oauth,
    objections,
    pki,
    presentations,
    registry,
    seals,
    subscriptions,
    supervision,
    supervision_alerts,
)
from api.pages import (
    grants,
    holder,
    holder_api,
    holder_credential,
    holder_objections,
    offline,
    present,
    signin,
    statistics,
    supervise,
    supervise_alerts,
    supervise_audit,
    verify,
)
from api.settings import Settings


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    services = services or build_services(settings or Settings())
    graph = services

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        """At shutdown the graph ends its verification workers and database connections."""
        yield
        await code_desk.close_loop_desks()  # this loop's QR connections (verify.loop_desk)
        graph.close()
        Metrics.process_exit()

    app = FastAPI(
        lifespan=lifespan,
        title="elicence 电子证照与电子印章服务",
        version="0.1.0",
        description="签发、盖章、核验电子证照 / issue, seal and verify electronic licences",
        # FastAPI's own OpenTelemetry hooks stay off: the service's observability is its
        # Prometheus metrics and redacted JSON lines (api/edge/observability.py). Left on, any
        # library that set a tracer provider in the process would start exporting each request's
        # concrete path (a licence identifier, a scanned code) past the redaction, and every
        # request paid for asking whether one had. (``logs`` would export exception messages.)
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    metrics = Metrics()
    services.issuance = InstrumentedIssuance(services.issuance, metrics)  # type: ignore[assignment]
    services.verification = InstrumentedVerification(services.verification, metrics)  # type: ignore[assignment]
    app.state.services = services
    app.state.metrics = metrics
    errors.install(app)
    errors.document_problems(app)
    observability.install(app, metrics)
    # One pure ASGI middleware for the request id, security headers, CORS, limits, metrics and
    # the access log (see api/edge/middleware.py for the order kept inside it).
    app.add_middleware(
        Edge,
        metrics=metrics,
        settings=services.settings,  # rates, body limits and JSON depth (api/edge/limits.py)
        cors_origins=services.settings.cors_origins,
    )
    _include_routes(app, services)
    _probes(app, services)
    return app


def _include_routes(app: FastAPI, services: Services) -> None:
    # Public verification first: every scanned code and upload is matched against the routes
    # in order, and none of its paths is claimed by a router below.
    app.include_router(verify.router)
    app.include_router(offline.router)  # the offline verifier's service worker
    app.include_router(oauth.router)
    app.include_router(present.router)  # before licences: see its docstring
    app.include_router(licences.router)
    app.include_router(credentials.router)  # /api/v1/licences/{identifier}/credential
    app.include_router(presentations.router)  # presentation codes redeemed by departments
    app.include_router(subscriptions.router)  # departments' event subscriptions
    app.include_router(lifecycle.router)
    app.include_router(exchange.router)
    app.include_router(convert.router)  # existing licences converted (licences/legacy.py)
    app.include_router(catalogue.router)
    app.include_router(pki.router)
    app.include_router(federation.router)  # /pki/licence-status, /api/v1/federation
    app.include_router(seals.router)
    app.include_router(registry.router)
    app.include_router(registry.departments)
    app.include_router(supervision_alerts.router)  # supervision offices' alerts
    app.include_router(statistics.router)
    app.include_router(supervision.router)  # the supervision offices' JSON API (read-only)
    app.include_router(supervise.router)  # the supervisor's desk: sign-in, dashboard, CSV
    app.include_router(supervise_alerts.router)
    app.include_router(supervise_audit.router)
    app.include_router(grants.router)  # the holder's grants and usage log
    app.include_router(signin.router)  # holder sign-in (OpenID Connect)
    app.include_router(holder.router)  # /me: the holder's licences and copies
    app.include_router(holder_credential.router)  # /me: a licence as a Verifiable Credential
    app.include_router(holder_api.router)  # /api/v1/holder/...
    app.include_router(holder_objections.router)  # /me/objections: the holder's objections
    app.include_router(holder_objections.api_router)  # /api/v1/holder/objections
    app.include_router(objections.router)  # departments' objection queue and answers
    if services.dev_idp is not None:  # demo mode only; otherwise /dev-idp is a 404
        app.mount("/dev-idp", create_dev_idp_app(services.dev_idp))
    app.mount(
        "/static",
        StaticFiles(directory=str(Path(__file__).parent / "pages" / "static")),
        name="static",
    )


def _probes(app: FastAPI, services: Services) -> None:
    """Liveness (the process answers) and readiness (its database and key store answer)."""

    @app.get("/healthz")
    def healthz() -> dict[str, object]:
        # "shared_state": {"kind": "memory", "nodes": "one"} says this process runs as one node.
        return {"status": "ok", "shared_state": services.shared.describe()}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        checks = services.readiness.checks()  # database, keystore (core.health)
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )
