"""The service graph owns what it starts: the verification workers end when the application
stops, and nothing of them lives at module or class level (a second graph has its own)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.domain import demo_domain


def test_the_workers_end_with_the_application(tmp_path_factory: pytest.TempPathFactory) -> None:
    domain = demo_domain(tmp_path_factory, "graph")
    inspector = domain.services.inspector
    assert inspector is not None  # isolation is on by default
    other = demo_domain(tmp_path_factory, "graph-other").services.inspector
    assert other is not None and other is not inspector
    with TestClient(create_app(services=domain.services)) as client:
        issued = domain.issue()
        data = domain.pdf(issued)
        answer = client.post("/api/v1/verify", files={"file": ("l.pdf", data, "application/pdf")})
        assert answer.status_code == 200 and answer.json()["indication"] == "PASSED"
        pool = inspector._pool
        assert pool is not None  # the upload was examined in a worker of this graph's pool
        workers = list(pool._processes.values())
        assert workers and all(w.is_alive() for w in workers)
        assert other._pool is None  # another graph's pool was not touched
    assert inspector._pool is None
    assert not any(w.is_alive() for w in workers)
