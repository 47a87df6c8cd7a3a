"""Metrics, logs without personal data, and request limits at the edge."""

from __future__ import annotations

import logging

import pytest

from api.edge.limits import Rate, SlidingWindow
from api.edge.observability import JsonFormatter
from tests.domain import Domain, demo_domain


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "obs", public_rate_limit="5/minute")


def test_logs_of_issuance_and_verification_hold_no_personal_data(
    domain: Domain, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    issued = domain.issue(1)  # a person's licence
    domain.client.get("/api/v1/licences/" + issued["identifier"], headers=domain.auth(1))
    domain.verify_pdf(domain.pdf(issued, 1))
    formatter = JsonFormatter()
    # The service's own loggers (the test client's HTTP log is not the service's).
    ours = [
        r for r in caplog.records if r.name.startswith(("elicence", "uvicorn", "api", "sqlalchemy"))
    ]
    lines = [formatter.format(record) for record in ours]
    assert any('"route": "/api/v1/licences"' in line for line in lines), lines
    assert any('"route": "/api/v1/verify"' in line for line in lines)
    text = "\n".join(lines)
    holder = domain.department(1)["sample_request"]["holder"]
    assert holder["id"] not in text
    assert holder["name"] not in text
    assert issued["identifier"] not in text  # routes are logged by template, not by path


def test_metrics_count_issuance_and_verification(domain: Domain) -> None:
    issued = domain.issue(0)
    domain.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]})
    body = domain.client.get("/metrics").text
    code = domain.department(0)["code"]
    assert f'elicence_licences_issued_total{{department="{code}",type="{code}001"}}' in body
    assert 'elicence_verifications_total{channel="api-qr",indication="PASSED"}' in body
    assert (
        'elicence_http_requests_total{method="POST",route="/api/v1/licences",status="201"}' in body
    )


def test_declared_body_larger_than_the_limit_is_413(domain: Domain) -> None:
    too_big = str(domain.services.settings.max_upload_bytes * 2)
    response = domain.client.post(
        "/api/v1/licences", content=b"{}", headers={**domain.auth(), "content-length": too_big}
    )
    assert response.status_code == 413


def test_sliding_window_refuses_then_recovers() -> None:
    now = [0.0]
    window = SlidingWindow(Rate.parse("2/second"), clock=lambda: now[0])
    assert window.hit("a") is None and window.hit("a") is None
    retry = window.hit("a")
    assert retry is not None and 0 < retry <= 1
    assert window.hit("b") is None
    now[0] = 1.01
    assert window.hit("a") is None


@pytest.mark.parametrize("text", ["60", "0/minute", "5/fortnight", ""])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Rate.parse(text)


def test_statistics_count_issued_and_verified_without_personal_data(domain: Domain) -> None:
    code = domain.department(1)["code"]
    before = domain.client.get(f"/api/v1/statistics/{code}").json()["totals"]
    issued = domain.issue(1)
    domain.verify_pdf(domain.pdf(issued, 1))
    after = domain.client.get(f"/api/v1/statistics/{code}").json()
    assert after["totals"]["issued"] == before["issued"] + 1
    assert after["totals"]["verified"] == before["verified"] + 1
    page = domain.client.get(f"/statistics/{code}")
    assert page.status_code == 200
    assert f'<dd id="total-issued">{after["totals"]["issued"]}</dd>' in page.text
    assert "<svg" in page.text
    holder = domain.department(1)["sample_request"]["holder"]
    assert holder["name"] not in page.text and holder["id"] not in page.text
    assert domain.client.get("/statistics/91350100M000100Y43").status_code == 404


# Runs last in this module: it spends the module's public rate budget.
def test_public_rate_limit_answers_429_with_retry_after(domain: Domain) -> None:
    answers = [
        domain.client.post("/api/v1/verify", json={"qr": "HTTPS://X/V/AAAAAAAAAAAAAAAAAAAAAAAA"})
        for _ in range(8)
    ]
    statuses = [a.status_code for a in answers]
    assert 429 in statuses
    limited = answers[statuses.index(429)]
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"].startswith("application/problem+json")
    # Another domain's status requests share the same per-address window.
    status = domain.client.get("/pki/licence-status/" + "1" * 64)
    assert status.status_code == 429 and int(status.headers["retry-after"]) >= 1


_TRACED = """
import sys, tempfile
from pathlib import Path
from opentelemetry import trace
from fastapi.testclient import TestClient

calls = []

class Recording(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        calls.append(args[0] if args else "?")
        return trace.NoOpTracer()

trace.set_tracer_provider(Recording())  # as an installed library might, process-wide
from api.app import create_app
from bench.domain import build

services = build(Path(tempfile.mkdtemp()) / "data")
with TestClient(create_app(services=services)) as client:
    client.get("/v/" + "A" * 40)
    client.post("/api/v1/verify", json={"qr": "https://x/v/" + "B" * 40})
print(len(calls))
"""


def test_a_tracer_provider_in_the_process_traces_no_request() -> None:
    """A concrete path names a licence or a scanned code: the service exports none. Its
    observability is its metrics and redacted log lines, and FastAPI's own OpenTelemetry hooks
    stay off even when some library in the process sets a global tracer provider."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _TRACED], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "0", done.stdout
