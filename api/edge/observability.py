"""Metrics for Prometheus and structured JSON logs — without personal data.

Routes are labelled by their template (``/api/v1/licences/{identifier}``), never by the concrete
path, so no identifier, code or name reaches a metric label or a log line. Every other line —
the server's own access log, errors, anything a library logs — passes :class:`Redacting` on its
way out: holder-link secrets, holder paths, query values and resident ID numbers are replaced.
Domain services are wrapped here, at the edge, so the domain never imports a metrics library.

With several workers (``elicence serve --workers N`` sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh
directory per start) each worker writes its values to files there, and ``/metrics`` answers with
all of them summed (``MultiProcessCollector``), whichever worker serves it; a worker that exits
is marked dead. Without the variable each app keeps its own registry (tests build several apps
in one process).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

log = logging.getLogger("elicence.access")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory every worker writes its metrics to, when several serve (else None)."""
    return os.environ.get(MULTIPROC_DIR) or None


class Metrics:
    """One registry per application, so several apps in one process (tests) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "elicence_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "elicence_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.issued = Counter(
            "elicence_licences_issued_total",
            "Licences issued",
            ["department", "type"],
            registry=self.registry,
        )
        self.issue_seconds = Histogram(
            "elicence_issuance_seconds",
            "Issuance latency (validate, render, seal, store)",
            ["department", "type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.verifications = Counter(
            "elicence_verifications_total",
            "Verifications",
            ["channel", "indication"],
            registry=self.registry,
        )
        self.verify_seconds = Histogram(
            "elicence_verification_seconds",
            "Verification latency",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """What ``/metrics`` answers: every worker's values when several serve, else this app's."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
        return generate_latest(collected)

    @staticmethod
    def process_exit() -> None:
        """A worker's end: its live values leave the sum (counters and histograms stay)."""
        if multiprocess_dir() is not None:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class InstrumentedIssuance:
    """Counts and times issuance; everything else passes through to the wrapped service."""

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def issue(self, request: Any) -> Any:
        started = time.perf_counter()
        result = self._inner.issue(request)
        if not result.replayed:
            labels = (request.department_code, request.licence_type)
            self._metrics.issued.labels(*labels).inc()
            self._metrics.issue_seconds.labels(*labels).observe(time.perf_counter() - started)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class InstrumentedVerification:
    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def _timed(self, method: Callable[..., Any], subject: Any, channel: str, **kwargs: Any) -> Any:
        started = time.perf_counter()
        report = method(subject, channel=channel, **kwargs)
        self._metrics.verifications.labels(channel, report.indication.value).inc()
        self._metrics.verify_seconds.labels(channel).observe(time.perf_counter() - started)
        return report

    def verify_pdf(self, data: bytes, *, channel: str, **kwargs: Any) -> Any:
        return self._timed(self._inner.verify_pdf, data, channel, **kwargs)

    def verify_code(self, text: str, *, channel: str, **kwargs: Any) -> Any:
        return self._timed(self._inner.verify_code, text, channel, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class JsonFormatter(logging.Formatter):
    FIELDS = ("request_id", "method", "route", "status", "duration_ms", "client")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in self.FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["error"] = record.exc_info[0].__name__ if record.exc_info[0] else "error"
        return json.dumps(entry, ensure_ascii=False)


# (pattern, replacement), applied in order to every message.
REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # a holder link's secret, in a path or as a bearer token
    (re.compile(r"/h/present/[^/\s\"'?#]+"), "/h/present/{secret}"),
    (re.compile(r"\bhl_[A-Za-z0-9_-]+"), "hl_{secret}"),
    # a holder's ID type and number in a path
    (re.compile(r"/holders/[^/\s\"'?#]+/[^/\s\"'?#]+"), "/holders/{id_type}/{id}"),
    # query values (holder_id, an OpenID Connect code or state, ...): names kept
    (re.compile(r"([?&][^=&\s\"'#]*)=[^&\s\"'#]*"), r"\1=*"),
    # a resident ID number (GB 11643) anywhere else
    (re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"), "{id}"),
)


def redact(text: str) -> str:
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class Redacting(logging.Filter):
    """Rewrites each record's message with :func:`redact` before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def log_handler(stream: TextIO | None = None) -> logging.Handler:
    """JSON lines on ``stream`` (stderr), every message redacted."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(Redacting())
    return handler


def configure_logging(level: int = logging.INFO) -> None:
    """Every line through one redacting JSON handler. uvicorn's own access line is kept only
    where uvicorn was asked for it (``uvicorn api.asgi:app``, its default): ``elicence serve``
    turns it off, since the service's access line (:class:`RequestObserver`) names the route's
    template, where uvicorn's names the concrete path — a licence identifier, a scanned code —
    and a second line for every request cost some 7 % of a QR check's CPU."""
    handler = log_handler()
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if name == "uvicorn.access" and not logger.propagate and not logger.handlers:
            continue  # uvicorn's access_log=False: it stays silent
        logger.handlers = []
        logger.propagate = True


class RequestObserver:
    """Counts, times and logs each finished request (called by ``api.edge.middleware``). The labelled
    metric children are kept, so a request costs two dictionary lookups, not a label check."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def done(
        self,
        method: str,
        route: str,
        status: int,
        elapsed: float,
        request_id: str | None,
        client: str | None,
    ) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self._metrics.requests.labels(method, route, str(status)),
                self._metrics.request_seconds.labels(route),
            )
            if len(self._children) < 10_000:  # route templates and statuses: a small set
                self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": client,
                },
            )


def install(app: FastAPI, metrics: Metrics) -> None:
    """The ``/metrics`` route; the per-request part is ``api.edge.middleware``."""

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
