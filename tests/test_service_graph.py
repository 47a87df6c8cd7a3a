"""The service graph owns what it starts: the verification workers end when the application
stops, and nothing of them lives at module or class level (a second graph has its own)."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.domain import demo_domain
from verify.isolation import Inspector, Limits


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


def test_a_worker_outlives_the_request_thread_that_started_it() -> None:
    """The server's request threads come and go; a worker started by one must stay (Linux's
    PR_SET_PDEATHSIG would have killed it with that thread)."""
    with Inspector(Limits(workers=1)) as inspector:
        started = threading.Thread(target=lambda: inspector._executor().submit(int, 1).result())
        started.start()
        started.join()
        time.sleep(1.5)  # a worker killed with its thread is gone well within this
        pool = inspector._pool
        assert pool is not None
        workers = list(pool._processes.values())
        assert len(workers) == 1 and workers[0].is_alive()
