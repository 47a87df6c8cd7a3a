"""``elicence serve --workers 2``: ``/metrics`` answers for both workers whichever one serves
it (Prometheus multiprocess mode in a fresh directory per start, removed at exit); and two
workers in demo mode share the development provider's client secret and signing key."""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api.container import build_services
from tests.domain import demo_domain
from tests.holder_login import free_port
from tests.redis_server import redis_server

pytestmark = pytest.mark.slow  # a server with two worker processes; a redis-server
BIN = os.path.dirname(sys.executable)
HEALTHZ = re.compile(
    r'^elicence_http_requests_total\{method="GET",route="/healthz",status="200"\} ([0-9.e+]+)$',
    re.MULTILINE,
)


def healthz_count(base: str) -> float:
    # a fresh connection each time, so the kernel may hand it to either worker
    text = httpx.get(f"{base}/metrics", timeout=10, headers={"Connection": "close"}).text
    found = HEALTHZ.search(text)
    return float(found.group(1)) if found else 0.0


def workers(port: int) -> list[str]:
    return ["--port", str(port), "--workers", "2"]


def metric_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "elicence-metrics-*")))


def test_metrics_answer_for_every_worker(tmp_path_factory: pytest.TempPathFactory) -> None:
    domain = demo_domain(tmp_path_factory, "metrics")
    data_dir = domain.settings.data_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELICENCE_", "PROMETHEUS_"))}
    env |= {
        "ELICENCE_DATA_DIR": str(data_dir),
        "ELICENCE_KEY_PASSPHRASE": "test-passphrase-" + data_dir.name,
        "ELICENCE_PUBLIC_BASE_URL": domain.settings.public_base_url,
        "ELICENCE_PUBLIC_RATE_LIMIT": "100000/minute",
    }
    port = free_port()
    before = metric_dirs()
    process = subprocess.Popen(
        [os.path.join(BIN, "elicence"), "serve", "--data-dir", str(data_dir), *workers(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, "the server exited while starting"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        time.sleep(3)  # the second worker finishes starting too
        created = metric_dirs() - before
        assert len(created) == 1, created  # a fresh directory for this start
        start = max(healthz_count(base) for _ in range(6))
        with ThreadPoolExecutor(6) as pool:
            codes = list(
                pool.map(
                    lambda _: (
                        httpx.get(
                            f"{base}/healthz", timeout=10, headers={"Connection": "close"}
                        ).status_code
                    ),
                    range(60),
                )
            )
        assert codes == [200] * 60
        seen = [healthz_count(base) for _ in range(10)]
        # Whichever worker answers, it reports both workers' requests.
        assert seen == [start + 60] * 10, (start, seen)
        files = os.listdir(next(iter(created)))
        pids = {re.sub(r"\D", "", f) for f in files if f.endswith(".db")}
        assert len(pids) >= 2, files  # both workers wrote their values
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert not (metric_dirs() - before), "the metrics directory outlived the server"


def test_two_demo_workers_share_the_development_provider(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with redis_server() as server:
        domain = demo_domain(tmp_path_factory, "demo-fleet", demo_mode=True, redis_url=server.url)
        other = build_services(domain.settings)
        one, two = domain.services.dev_idp, other.dev_idp
        assert one is not None and two is not None
        # the relying party of each worker authenticates at the provider of the other
        assert one.clients[0].secret == two.clients[0].secret
        assert one.jwks() == two.jwks()
        assert domain.services.oidc is not None and other.oidc is not None
        assert domain.services.oidc.config.client_secret == two.clients[0].secret
        other.close()
