"""Signed event delivery (``supervision.delivery``): how many events a worker delivers per second
to a receiver on loopback, and how long an event takes from the commit of its change to its
receipt.

* **Baseline**: bare HTTP POSTs of a body of an event's size to the same receiver, from the same
  number of threads as the worker's (``DeliveryPolicy.concurrency``) — what the network path
  costs with nothing of ours in it.
* **Throughput**: N outbox events written at once (distinct licences, so none waits for another
  by the order rule), then one worker's steps until the receiver has them all: fan-out, the
  claim, one ES256 signature and its audit entry per delivery, the post, the outcome's commit.
* **Latency**: events committed one at a time, paced, while a worker runs its loop (idle polls
  every 10 ms, as ``elicence worker --interval 0.01``): commit to receipt, p50 and p99.

SQLite, the worker in this process (the receiver's threads too); events are emitted straight
into the outbox as a status change's observer writes them, so issuance's seal step is not what
is measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from bench.timing import Rate
from core.clock import SystemClock
from core.db import transaction
from supervision.delivery import DeliveryPolicy, DeliveryWorker
from supervision.endpoints import EndpointRule
from supervision.outbox import emit
from supervision.subscriptions import SubscriptionDesk

BARE = "bare HTTP POST to the receiver"
DELIVER = "deliver signed events (worker)"
PACED = "event commit to receipt (paced)"
ISSUER = "https://licence.example.gov.cn"


class _Receiver:
    """A loopback receiver that notes when each event id arrived (perf_counter)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                event_id = self.headers.get("X-Elicence-Event-Id", "")
                with outer.lock:
                    outer.arrived.setdefault(event_id, time.perf_counter())
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def count(self) -> int:
        with self.lock:
            return len(self.arrived)


@contextmanager
def _receiver() -> Iterator[_Receiver]:
    receiver = _Receiver()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def _emit(services: Any, department: str, n: int, start: int) -> dict[str, float]:
    """``n`` events of distinct licences in one transaction; their commit time by event id."""
    clock = SystemClock()
    ids = []
    with transaction(services.engine) as session:
        for i in range(start, start + n):
            event = emit(
                session,
                kind="licence.suspended",
                at=clock.now(),
                data={"licence": {"identifier": f"bench-{i}"}, "status": {"to": "suspended"}},
                licence=f"bench-{i}",
                department_code=department,
            )
            assert event is not None
            ids.append(event.event_id)
    committed = time.perf_counter()
    return dict.fromkeys(ids, committed)


def event_rates(seconds: float, services: Any, events: int) -> tuple[list[Rate], dict[str, Any]]:
    """The baseline, throughput and paced latency rows, and a summary for the result file."""
    policy = DeliveryPolicy(timeout_seconds=5.0, backoff_base_seconds=0.05, lease_seconds=30.0)
    department = _department(services)
    rule = EndpointRule(allow_http_loopback=True)
    with _receiver() as receiver:
        desk = SubscriptionDesk(engine=services.engine, audit=services.audit,
                                clock=services.clock, rule=rule)
        client_id = _client(services, department)  # a subscription lives with its client
        sub = desk.create(department_code=department, client_id=client_id, actor="bench",
                          scopes=frozenset({"events:subscribe"}), url=receiver.url,
                          topics=["issued"])
        bare = _bare_posts(receiver.url, seconds, policy.concurrency)
        worker = DeliveryWorker(engine=services.engine, audit=services.audit, clock=SystemClock(),
                                keys=services.credential_keys, issuer=ISSUER, rule=rule,
                                policy=policy)
        try:
            worker.step()  # warm: the key listed, the connection pool made
            with receiver.lock:
                receiver.arrived.clear()  # the baseline's posts
            committed = _emit(services, department, events, 0)
            start = time.perf_counter()
            give_up = start + 120.0
            while receiver.count() < events:
                if time.perf_counter() > give_up:
                    raise RuntimeError(
                        f"{receiver.count()} of {events} events arrived in 120 s: delivery stalled"
                    )
                worker.step()
            elapsed = time.perf_counter() - start
            bulk = [receiver.arrived[e] - committed[e] for e in committed]
            paced, paced_seconds = _paced(services, worker, receiver, department,
                                          max(20, events // 4), events)
        finally:
            worker.close()
        desk.delete(department_code=department, subscription_id=sub.id, actor="bench",
                    request_id=None)
    rates = [
        bare,
        Rate(DELIVER, events, elapsed, bulk, BARE),
        Rate(PACED, len(paced), paced_seconds, paced),
    ]
    summary = {"events": events, "concurrency": policy.concurrency,
               "deliver_per_second": round(events / elapsed, 1)}
    return rates, summary


def _client(services: Any, department: str) -> str:
    from core.db import transaction
    from seals.clients import create_client

    with transaction(services.engine) as session:
        client, _ = create_client(session, services.audit, services.clock,
                                  department_code=department, name="bench-events", actor="bench",
                                  scopes=("events:subscribe",))
    return client.id


def _department(services: Any) -> str:
    from sqlmodel import select

    from core.db import reading
    from seals.models import Department

    with reading(services.engine) as session:
        found = session.exec(select(Department.code).order_by(Department.code)).first()
    assert found is not None
    return str(found)


def _bare_posts(url: str, seconds: float, threads: int) -> Rate:
    """POSTs of an event-sized body from ``threads`` threads for ``seconds``."""
    body = b"e" * 740
    latencies: list[float] = []
    lock = threading.Lock()
    with httpx.Client(trust_env=False, limits=httpx.Limits(max_connections=threads)) as client:
        client.post(url, content=body, headers={"X-Elicence-Event-Id": "warm"})
        end = time.perf_counter() + seconds

        def loop(n: int) -> None:
            i = 0
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                client.post(url, content=body, headers={"X-Elicence-Event-Id": f"bare-{n}-{i}"})
                with lock:
                    latencies.append(time.perf_counter() - t0)
                i += 1

        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(loop, range(threads)))
        elapsed = time.perf_counter() - start
    return Rate(BARE, len(latencies), elapsed, latencies)


def _paced(
    services: Any, worker: DeliveryWorker, receiver: _Receiver, department: str, n: int,
    offset: int,
) -> tuple[list[float], float]:
    """Commit-to-receipt of ``n`` events committed one at a time, 20 ms apart, while the
    worker runs its loop in a thread."""
    stop = threading.Event()
    loop = threading.Thread(target=worker.run, kwargs={"interval": 0.01, "stop": stop})
    loop.start()
    committed: dict[str, float] = {}
    start = time.perf_counter()
    try:
        for i in range(n):
            committed |= _emit(services, department, 1, offset + i)
            time.sleep(0.02)
        end = time.perf_counter() + 30
        while any(e not in receiver.arrived for e in committed) and time.perf_counter() < end:
            time.sleep(0.01)
    finally:
        stop.set()
        loop.join()
    latencies = [receiver.arrived[e] - t for e, t in committed.items() if e in receiver.arrived]
    return latencies, time.perf_counter() - start

EVENTS = {"smoke": 20, "quick": 500, "full": 2000}  # events in the throughput row, per mode


def main() -> None:
    """``python -m bench.events [EVENTS]``: these rows alone, on a fresh demo domain."""
    import json
    import sys
    import tempfile
    from pathlib import Path

    from bench.domain import build

    events = int(sys.argv[1]) if len(sys.argv) > 1 else EVENTS["quick"]
    with tempfile.TemporaryDirectory(prefix="elicence-bench-events-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir(mode=0o700)
        services = build(data_dir)
        try:
            rates, summary = event_rates(3.0, services, events)
        finally:
            services.close()
    rows = [r.as_dict() for r in rates]
    bare = rows[0]["per_second"]
    for row in rows:
        if row["baseline"]:
            row["ratio"] = round(row["per_second"] / bare, 3)
        print(json.dumps(row, ensure_ascii=False))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
