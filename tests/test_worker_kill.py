"""``elicence worker`` as the operator runs it: killed mid-delivery and restarted, nothing is
lost; on PostgreSQL two workers at once deliver every event, never out of order per licence.

The receiver holds its answer to the first post until the worker has been SIGKILLed, so the
kill lands while a delivery is in flight: its lease must run out and the delivery be claimed
again, the receiver seeing the same event id twice (duplicates allowed, never loss).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from core.db import reading
from supervision.delivery_records import Delivery
from supervision.outbox import OutboxEvent
from tests.conftest import fresh_schema
from tests.domain import Domain, build_domain, demo_domain, make_settings
from tests.event_receiver import Behaviour, Post, Receiver
from tests.test_delivery import _claims

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "from api.cli.main import main; main()"


def worker_env(domain: Domain) -> dict[str, str]:
    s = domain.settings
    assert s.key_passphrase is not None
    env = {
        **os.environ,
        "ELICENCE_KEY_PASSPHRASE": s.key_passphrase.get_secret_value(),
        "ELICENCE_PUBLIC_BASE_URL": s.public_base_url,
        "ELICENCE_EVENTS_ALLOW_HTTP_LOOPBACK": "1",
        "ELICENCE_EVENTS_TIMEOUT_SECONDS": "2",
        "ELICENCE_EVENTS_LEASE_SECONDS": "5",
        "ELICENCE_EVENTS_BACKOFF_BASE_SECONDS": "0.05",
        "ELICENCE_EVENTS_BACKOFF_CAP_SECONDS": "0.2",
    }
    if s.database_url is not None:
        env["ELICENCE_DATABASE_URL"] = s.database_url
    return env


def start(domain: Domain, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ENTRY, "worker", "--data-dir", str(domain.settings.data_dir), *args],
        cwd=ROOT, env=worker_env(domain), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def subscribe(domain: Domain, url: str) -> str:
    response = domain.client.post("/api/v1/subscriptions", json={"url": url, "topics": ["issued"]},
                                  headers=domain.auth())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def act(domain: Domain, identifier: str, action: str, **body: str) -> None:
    response = domain.client.post(f"/api/v1/licences/{identifier}/{action}", json=body,
                                  headers=domain.auth())
    assert response.status_code == 200, response.text


def history(domain: Domain) -> list[str]:
    """A new licence's three events, in order: issued, suspended, resumed."""
    issued = domain.issue()["identifier"]
    act(domain, issued, "suspend", reason="核查")
    act(domain, issued, "resume")
    return [e.event_id for e in outbox(domain, issued)]


def outbox(domain: Domain, identifier: str) -> list[OutboxEvent]:
    with reading(domain.services.engine) as session:
        query = select(OutboxEvent).where(OutboxEvent.licence == identifier)
        return list(session.exec(query.order_by(col(OutboxEvent.id))).all())


def states(domain: Domain, subscription_id: str) -> list[str]:
    with reading(domain.services.engine) as session:
        query = select(Delivery.state).where(Delivery.subscription_id == subscription_id)
        return list(session.exec(query).all())


def in_order(posts: list[Post], expected: dict[str, list[str]]) -> None:
    """Every post of a licence's events, in the order the licence's events happened."""
    for identifier, ids in expected.items():
        rank = {event_id: n for n, event_id in enumerate(ids)}
        seen = [rank[p.event_id] for p in posts if p.event_id in rank]
        assert seen == sorted(seen), (identifier, seen)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(Behaviour(hold=threading.Event()))
    yield r
    r.close()


def test_a_worker_killed_mid_delivery_is_restarted_and_nothing_is_lost(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> None:
    domain = demo_domain(tmp_path_factory, "worker-kill", events_allow_http_loopback=True)
    sid = subscribe(domain, receiver.url)
    events = history(domain)
    hold = receiver.behaviour.hold
    assert hold is not None
    first = start(domain, "--interval", "0.05")
    try:
        assert receiver.behaviour.seen.wait(60), first.stderr.read() if first.poll() is not None else ""
        first.kill()  # SIGKILL while the receiver holds its answer to the first post
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -9
    assert [p.event_id for p in receiver.behaviour.posts] == [events[0]]
    hold.set()
    assert states(domain, sid) == ["pending", "pending", "pending"]  # nothing was marked sent
    again = subprocess.run(
        [sys.executable, "-c", ENTRY, "worker", "--once", "--data-dir", str(domain.settings.data_dir)],
        cwd=ROOT, env=worker_env(domain), capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "delivered 3" in again.stdout
    posts = receiver.behaviour.posts
    assert [p.event_id for p in posts] == [events[0], *events]  # the first again, then the rest
    assert posts[0].body == posts[1].body  # the same signed bytes
    in_order(posts, {"licence": events})
    assert states(domain, sid) == ["delivered"] * 3
    assert all(_claims(p)["aud"] == sid for p in posts)


@pytest.mark.postgres
@pytest.mark.slow
def test_on_postgresql_two_workers_deliver_everything_in_order_per_licence(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    schema = "t_helper_d_delivery"
    url = fresh_schema(postgres_url, schema)
    domain = build_domain(make_settings(tmp_path_factory.mktemp("delivery-pg") / "data",
                                        database_url=url, events_allow_http_loopback=True))
    receiver = Receiver(Behaviour(refuse_first=6))
    workers: list[subprocess.Popen[str]] = []
    try:
        sid = subscribe(domain, receiver.url)
        expected = {}
        for n in range(4):
            expected[f"licence-{n}"] = history(domain)
        every = {e for ids in expected.values() for e in ids}
        workers = [start(domain, "--interval", "0.02") for _ in range(2)]
        end = time.monotonic() + 90
        while {p.event_id for p in receiver.accepted()} < every:
            assert time.monotonic() < end, [w.poll() for w in workers]
            time.sleep(0.05)
        posts = receiver.behaviour.posts
        in_order(posts, expected)
        assert sum(1 for p in posts if p.answered == 503) == 6
        end = time.monotonic() + 30
        while states(domain, sid).count("delivered") < len(every):
            assert time.monotonic() < end
            time.sleep(0.05)
        with reading(domain.services.engine) as session:
            claimed_by = set(session.exec(select(Delivery.claimed_by)).all())
        assert claimed_by == {None}
        assert states(domain, sid) == ["delivered"] * len(every)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(15)
            except subprocess.TimeoutExpired:
                w.kill()
        receiver.close()
        domain.services.close()


def test_the_worker_command_refuses_a_bad_interval_and_an_empty_directory(tmp_path: Path) -> None:
    for args, named in (
        (["--interval", "0"], "--interval must be greater than 0"),
        (["--once"], "is not initialised"),
    ):
        done = subprocess.run(
            [sys.executable, "-c", ENTRY, "worker", "--data-dir", str(tmp_path / "none"), *args],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={**os.environ, "ELICENCE_KEY_PASSPHRASE": "x"},
        )
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("elicence: ") and named in lines[0], done.stderr
