"""The fleet: two ``elicence serve`` processes on two ports over one PostgreSQL primary (a schema
of their own), its streaming replica (tests/pg_replica.py) and Redis (a database number of their
own), under a bounded loopback load of issuance (with Idempotency-Key), PDF and QR verification
spread over both; one worker is SIGKILLed in the middle.

What a load balancer in front of them would rely on:

- a client's rate limit holds across both workers (one address at 60/minute gets 60 answers,
  within 10 %, however its requests are spread), because the windows live in Redis;
- the survivor keeps serving: what was sent to the dead worker is sent again to the survivor,
  as a balancer retries, and the survivor answers it;
- every acknowledged issuance exists exactly once: each Idempotency-Key replayed to the survivor
  gives the same identifier, marked replayed, and the primary holds one licence per key — also
  for the issuance the kill cut off before its answer;
- the audit chain verifies (``elicence audit verify``) and no verification was answered 5xx.

Each load address is its own loopback source address (127.0.0.x): the per-address window sees
distinct clients, as it would behind a balancer that passes the client's address on.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import fresh_schema
from tests.pg_replica import Replica
from tests.tools import requiring

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BIN = Path(sys.executable).parent
SCHEMA = "t_fleet"
REDIS_DB = 13  # this test's own Redis database
LIMIT = 60  # per minute, for every address
LIMITED = "127.0.0.9"  # the client whose allowance is counted
LOAD_ADDRESSES = [f"127.0.0.{n}" for n in range(20, 40)]
ISSUANCES, PDF_CHECKS, QR_CHECKS, LIMITED_CHECKS = 24, 24, 120, 100
KILL_AFTER = 0.35  # the share of the load answered before the second worker is killed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@dataclass
class Worker:
    name: str
    base: str
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Answer:
    kind: str
    worker: str
    status: int
    after_kill: bool
    body: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    replayed: bool = False


def _env(data_dir: Path, url: str, replica_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELICENCE_")}
    env.update(
        ELICENCE_DATA_DIR=str(data_dir),
        ELICENCE_DATABASE_URL=url,
        ELICENCE_DATABASE_REPLICA_URL=replica_url,
        ELICENCE_REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
        ELICENCE_KEY_PASSPHRASE="fleet-test-passphrase",
        ELICENCE_PUBLIC_RATE_LIMIT=f"{LIMIT}/minute",
        ELICENCE_CLIENT_RATE_LIMIT="100000/minute",
        ELICENCE_VERIFY_WORKERS="1",
        ELICENCE_PUBLIC_BASE_URL="http://127.0.0.1:8000",
    )
    return env


def _redis_answers() -> None:
    """Redis is there. Nothing is flushed: every key a run writes is an HMAC under its own data
    directory's secret, so runs (and other tests on the same database) never share a window."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=5)
    with requiring("Redis at 127.0.0.1:6379", redis.exceptions.ConnectionError):
        client.ping()
    client.close()


def _start(name: str, data_dir: Path, env: dict[str, str]) -> Worker:
    port = _free_port()
    process = subprocess.Popen(
        [str(BIN / "elicence"), "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its verification workers are stopped with it (killpg)
    )
    return Worker(name, f"http://127.0.0.1:{port}", process)


def _ready(worker: Worker) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{worker.base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert worker.alive(), f"worker {worker.name} exited while starting"
        assert time.monotonic() < deadline, f"worker {worker.name} did not start"
        time.sleep(0.2)


def _stop(worker: Worker) -> None:
    try:
        os.killpg(worker.process.pid, signal.SIGTERM if worker.alive() else signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        worker.process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()


@dataclass
class Fleet:
    data_dir: Path
    url: str
    env: dict[str, str]
    credentials: dict[str, Any]
    workers: list[Worker]


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, pg_replica: Replica
) -> Iterator[Fleet]:
    _redis_answers()
    url = fresh_schema(postgres_url, SCHEMA)
    data_dir = tmp_path_factory.mktemp("fleet") / "data"
    env = _env(data_dir, url, pg_replica.url(url))
    init = subprocess.run(
        [str(BIN / "elicence"), "init", "--demo", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert init.returncode == 0, init.stderr[-3000:]
    credentials = json.loads((data_dir / "demo-credentials.json").read_text())
    pg_replica.sync()
    workers = [_start(name, data_dir, env) for name in ("A", "B")]
    try:
        for worker in workers:
            _ready(worker)
        yield Fleet(data_dir, url, env, credentials, workers)
    finally:
        for worker in workers:
            _stop(worker)


class Load:
    """The load's clients (one per loopback source address) and what came back."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.answers: list[Answer] = []
        self.killed = threading.Event()
        self.lock = threading.Lock()
        self.clients = {
            address: httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)
            for address in [LIMITED, *LOAD_ADDRESSES]
        }

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def send(self, kind: str, prefer: int, address: str, path: str, **request: Any) -> Answer:
        """Sent to worker ``prefer``; to the survivor when that one is dead or dies on it."""
        survivor = self.fleet.workers[0]
        client = self.clients[address]
        for worker in (self.fleet.workers[prefer % 2], survivor):
            if not worker.alive() and worker is not survivor:
                continue
            after = self.killed.is_set()
            try:
                response = client.request(url=f"{worker.base}{path}", **request)
            except httpx.TransportError:
                assert worker is not survivor, f"the survivor failed a {kind} request"
                continue  # the balancer sends it again, to the survivor
            body = response.json() if "json" in response.headers.get("content-type", "") else {}
            answer = Answer(
                kind,
                worker.name,
                response.status_code,
                after,
                body,
                replayed=response.headers.get("Idempotent-Replayed") == "true",
            )
            with self.lock:
                self.answers.append(answer)
            return answer
        raise AssertionError("no worker answered")


def _tasks(fleet: Fleet, issued: dict[str, Any], pdf: bytes) -> list[tuple[str, dict[str, Any]]]:
    departments = fleet.credentials["departments"]
    qr = {"method": "POST", "path": "/api/v1/verify", "json": {"qr": issued["links"]["verify"]}}
    tasks: list[tuple[str, dict[str, Any]]] = []
    for n in range(ISSUANCES):
        department = departments[n % 2]
        key = f"fleet-{n}-{os.getpid()}"
        tasks.append(
            (
                "issue",
                {
                    "method": "POST",
                    "path": "/api/v1/licences",
                    "json": department["sample_request"],
                    "headers": {
                        "Authorization": f"Bearer {department['api_key']}",
                        "Idempotency-Key": key,
                    },
                    "key": key,
                },
            )
        )
    files = {"file": ("licence.pdf", pdf, "application/pdf")}
    tasks += [("pdf", {"method": "POST", "path": "/api/v1/verify", "files": files})] * PDF_CHECKS
    tasks += [("qr", dict(qr))] * QR_CHECKS
    tasks += [("limited", dict(qr))] * LIMITED_CHECKS
    random.Random(21).shuffle(tasks)
    return tasks


def test_two_workers_one_killed_under_load(fleet: Fleet, pg_replica: Replica) -> None:
    a, b = fleet.workers
    department = fleet.credentials["departments"][0]
    auth = {"Authorization": f"Bearer {department['api_key']}"}
    first = httpx.post(
        f"{a.base}/api/v1/licences", json=department["sample_request"], headers=auth, timeout=60
    )
    assert first.status_code == 201, first.text
    issued = first.json()
    pdf = httpx.get(f"{b.base}/api/v1/licences/{issued['identifier']}/pdf", headers=auth).content
    with psycopg.connect(_plain(fleet.url)) as conn:
        before = conn.execute("SELECT count(*) FROM licence").fetchone()[0]  # type: ignore[index]

    load = Load(fleet)
    tasks = _tasks(fleet, issued, pdf)
    kill_at = int(len(tasks) * KILL_AFTER)
    done = itertools.count(1)
    addresses = itertools.cycle(LOAD_ADDRESSES)

    def run(index: int, kind: str, request: dict[str, Any]) -> Answer:
        request = dict(request)
        key = request.pop("key", None)
        address = LIMITED if kind == "limited" else next(addresses)
        answer = load.send(kind, index, address, **request)
        answer.key = key
        if next(done) == kill_at:
            os.killpg(b.process.pid, signal.SIGKILL)  # the worker and its verification children
            load.killed.set()
        return answer

    lags: list[float] = []
    sampling = threading.Event()

    def sample_lag() -> None:  # the replica's replay lag as the primary sees it, for the figures
        while not sampling.is_set():
            lag = pg_replica.on_primary(
                "SELECT coalesce(max(extract(epoch FROM replay_lag)), 0) FROM pg_stat_replication"
            )
            lags.append(float(str(lag)))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample_lag, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda t: run(t[0], *t[1]), enumerate(tasks)))
    finally:
        load.close()
        sampling.set()
    duration = time.monotonic() - started
    b.process.wait(10)
    sampler.join(5)
    print(  # the figures of docs/scaling.md
        f"fleet load: {len(tasks)} requests in {duration:.1f} s; replica replay lag max "
        f"{max(lags, default=0) * 1000:.1f} ms over {len(lags)} samples"
    )

    # The survivor's verification reads went to the replica: it holds connections there.
    database = fleet.url.rsplit("/", 1)[1].split("?", 1)[0]
    held = pg_replica.on_replica(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        f"AND datname = '{database}'"
    )
    assert isinstance(held, int) and held >= 1, held

    # The second worker died by SIGKILL; the first kept serving every kind of request after it.
    assert b.process.returncode == -signal.SIGKILL
    assert a.alive()
    after = [x for x in answers if x.after_kill and x.worker == "A" and x.status < 300]
    assert {x.kind for x in after} >= {"issue", "pdf", "qr"}, {x.kind for x in after}
    assert any(x.worker == "B" for x in answers)  # the load did reach both before the kill

    # No verification answered 5xx; every load verification of the genuine licence PASSED.
    checks = [x for x in answers if x.kind != "issue"]
    assert all(x.status in (200, 429) for x in checks), {x.status for x in checks}
    load_checks = [x for x in checks if x.kind in ("pdf", "qr")]
    assert all(x.status == 200 for x in load_checks), [x.status for x in load_checks]
    assert {x.body["indication"] for x in load_checks} == {"PASSED"}

    # Every issuance acknowledged; each key replayed to the survivor gives its licence again.
    issuances = [x for x in answers if x.kind == "issue"]
    assert all(x.status in (200, 201) for x in issuances), [x.status for x in issuances]
    identifiers = {str(x.key): str(x.body["identifier"]) for x in issuances}
    assert len(set(identifiers.values())) == ISSUANCES
    by_key = {task[1]["key"]: task[1] for task in tasks if task[0] == "issue"}
    for key, identifier in identifiers.items():
        request = by_key[key]
        again = httpx.post(
            f"{a.base}{request['path']}",
            json=request["json"],
            headers=request["headers"],
            timeout=60,
        )
        assert again.status_code == 200, again.text
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json()["identifier"] == identifier
    with psycopg.connect(_plain(fleet.url)) as conn:
        after_count = conn.execute("SELECT count(*) FROM licence").fetchone()[0]  # type: ignore[index]
        stored = conn.execute(
            "SELECT count(*) FROM licence WHERE identifier = ANY(%s)", (list(identifiers.values()),)
        ).fetchone()[0]  # type: ignore[index]
    assert stored == ISSUANCES
    assert after_count - before == ISSUANCES  # nothing issued twice, nothing unacknowledged

    # The audit chain, every worker's entries on one primary, verifies.
    audit = subprocess.run(
        [str(BIN / "elicence"), "audit", "verify", "--data-dir", str(fleet.data_dir)],
        env=fleet.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr

    # One client's allowance held across both workers: LIMIT answers within 10 %, the rest 429.
    limited = [x for x in answers if x.kind == "limited"]
    allowed = sum(1 for x in limited if x.status == 200)
    refused = sum(1 for x in limited if x.status == 429)
    print(f"fleet rate limit: {allowed} answered, {refused} refused (limit {LIMIT}/minute)")
    assert allowed + refused == LIMITED_CHECKS
    assert {x.worker for x in limited if x.status == 200} == {"A", "B"}  # spread over both
    assert duration < 60, "the load outlasted the window: the allowance below does not apply"
    assert LIMIT * 0.9 <= allowed <= LIMIT * 1.1, (allowed, refused)
