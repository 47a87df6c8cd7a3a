"""The delivery worker: fans new outbox events out to subscriptions and posts them, signed.

It runs as a process of its own (``elicence worker``), so a slow or hostile receiver holds up
nothing but its own deliveries: issuance never waits on it. Each post is bounded — connect and
read timeouts, a total time over every read and write of the post (a receiver dripping one
byte per timeout gets nowhere), at most 64 KiB of the answer read (counted on the wire, before any
decoding), no redirect followed, environment proxies ignored, the address checked again as it
is connected to (``supervision.endpoints``).

At least once: a delivery is marked delivered only after a 2xx answer, so a crash between the
receiver's answer and our commit sends it again (same event id, same signed bytes); receivers
deduplicate on ``event_id``. A failure is retried with exponential backoff and jitter
(``base * 2^(n-1)``, capped, then scaled by a random factor in [0.5, 1)); after
``max_attempts`` tries the delivery is a dead letter, listed and replayable through the API.
410 Gone disables the subscription.

The lease of a claim is longer than a post can take (``lease_seconds`` > 2 * timeout), so a
worker whose lease ran out is not still sending when another takes the delivery over.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy import bindparam, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import reading, transaction
from keys.audit import KeyUseRecorder
from supervision.delivery_records import (
    DEAD,
    DELIVERED,
    PENDING,
    Delivery,
    Gaps,
    claim,
    fan_out,
    next_lease_end,
)
from supervision.endpoints import EndpointRule, EndpointTransport, total_deadline
from supervision.event_token import MEDIA_TYPE, sign_event
from supervision.outbox import OutboxEvent
from supervision.subscriptions import Subscription
from trust.jose import CredentialKeys

ACTOR = "system:events"
USER_AGENT = "elicence-events/1"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout_seconds: float = 5.0
    max_attempts: int = 8
    backoff_base_seconds: float = 10.0
    backoff_cap_seconds: float = 3600.0
    lease_seconds: float = 30.0
    max_response_bytes: int = 64 * 1024
    batch: int = 64
    concurrency: int = 4

    def backoff(self, attempts: int, rng: random.Random) -> timedelta:
        delay = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2 ** (attempts - 1))
        return timedelta(seconds=delay * (0.5 + rng.random() / 2))


@dataclass(frozen=True)
class Outcome:
    status: int | None  # the receiver's HTTP status, None when none was had
    error: str | None  # why it failed, None on success

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    subscription_id: str
    url: str
    event_id: str
    token: str


@dataclass
class Tally:
    fanned: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    disabled: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.fanned or self.delivered or self.failed or self.dead or self.disabled)

    def add(self, other: Tally) -> None:
        for name in ("fanned", "delivered", "failed", "dead", "disabled"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class DeliveryWorker:
    engine: Engine
    audit: AuditLog
    clock: Clock
    keys: CredentialKeys
    issuer: str  # the public base URL: the ``iss`` of every event
    rule: EndpointRule
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    transport: httpx.BaseTransport | None = None  # tests only; else the checked transport
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()[:14]}-{os.getpid()}-{secrets.token_hex(3)}"
    )
    rng: random.Random = field(default_factory=random.SystemRandom)
    _gaps: Gaps = field(default_factory=lambda: Gaps({}))

    def __post_init__(self) -> None:
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.policy.timeout_seconds),
            follow_redirects=False,
            trust_env=False,
            transport=self.transport
            or EndpointTransport(self.rule, connections=self.policy.concurrency),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )
        self._pool = ThreadPoolExecutor(self.policy.concurrency, thread_name_prefix="deliver")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    # --- one step -----------------------------------------------------------------------------

    def step(self) -> Tally:
        """Fans out what is new, then claims and sends one batch of due deliveries."""
        tally = Tally()
        with transaction(self.engine) as session:
            tally.fanned = fan_out(session, self.clock.now(), self._gaps)
        now = self.clock.now()
        with transaction(self.engine) as session:
            until = now + timedelta(seconds=self.policy.lease_seconds)
            ids = claim(session, now, until, self.worker_id, self.policy.batch)
        if not ids:
            return tally
        jobs = self._prepare(ids)
        outcomes = list(self._pool.map(self._post, jobs))
        with transaction(self.engine) as session:  # one commit for the batch's outcomes
            now = self.clock.now()
            found = session.exec(select(Delivery).where(col(Delivery.id).in_(ids))).all()
            held = {row.id: row for row in found}
            for job, outcome in zip(jobs, outcomes, strict=True):
                tally.add(self._record(session, held.get(job.delivery_id), job, outcome, now))
        for job, outcome in zip(jobs, outcomes, strict=True):
            if not outcome.ok:
                _log.info(
                    "event %s to %s (host %s) failed: %s",
                    job.event_id, job.subscription_id, urlsplit(job.url).hostname, outcome.error,
                )
        return tally

    def _prepare(self, ids: list[int]) -> list[_Job]:
        """The claimed deliveries, each with its token: signed now if this is its first try
        (outside the write transaction), then stored with the key use's audit entry."""
        with reading(self.engine) as session:
            rows = _loaded(session, ids)
        signed: dict[int, str] = {}
        recorder = KeyUseRecorder()
        for delivery, sub, event in rows:
            if delivery.token is None:
                assert delivery.id is not None
                signed[delivery.id] = sign_event(self.keys, event, sub.id, self.issuer, recorder)
        if signed:
            with transaction(self.engine) as session:
                table = SQLModel.metadata.tables[Delivery.__tablename__]  # Core: executemany
                session.connection().execute(
                    update(table)
                    .where(table.c.id == bindparam("key"), table.c.token.is_(None))
                    .values(token=bindparam("signed")),
                    [{"key": k, "signed": v} for k, v in signed.items()],
                )
                recorder.flush(self.audit, session, ACTOR)
        jobs = []
        for delivery, sub, _ in rows:
            assert delivery.id is not None
            token = delivery.token or signed[delivery.id]
            jobs.append(_Job(delivery.id, sub.id, sub.url, delivery.event_id, token))
        return jobs

    def _post(self, job: _Job) -> Outcome:
        limit = self.policy.max_response_bytes
        headers = {
            "Content-Type": MEDIA_TYPE,
            "Idempotency-Key": job.event_id,
            "X-Elicence-Event-Id": job.event_id,
            "X-Elicence-Subscription": job.subscription_id,
        }
        try:
            with total_deadline(2 * self.policy.timeout_seconds), self._client.stream(
                "POST", job.url, content=job.token.encode("ascii"), headers=headers
            ) as response:
                status = response.status_code
                if not 200 <= status < 300:
                    return Outcome(status, f"HTTP {status}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    return Outcome(status, f"answer larger than {limit} bytes")
                size = 0
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if size > limit:
                        return Outcome(status, f"answer larger than {limit} bytes")
                return Outcome(status, None)
        except httpx.TimeoutException:
            return Outcome(None, "timeout")
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {str(exc)[:160]}")

    def _record(
        self, session: Session, row: Delivery | None, job: _Job, outcome: Outcome, now: datetime
    ) -> Tally:
        tally = Tally()
        if row is None or row.state != PENDING or row.claimed_by != self.worker_id:
            return tally  # the lease was lost and another worker owns it now
        row.attempts += 1
        row.last_status, row.last_error = outcome.status, outcome.error
        row.claimed_until, row.claimed_by = None, None
        if outcome.ok:
            row.state, row.delivered_at = DELIVERED, now
            tally.delivered = 1
        elif outcome.status == 410:
            row.state = DEAD
            self._disable(session, job.subscription_id, now)
            tally.disabled = 1
        elif row.attempts >= self.policy.max_attempts:
            row.state = DEAD
            tally.dead = 1
            self.audit.append(
                session,
                actor=ACTOR,
                action="event.dead_letter",
                object_type="event_subscription",
                object_id=job.subscription_id,
                detail={"event_id": job.event_id, "attempts": row.attempts,
                        "last_status": outcome.status, "last_error": outcome.error},
            )
        else:
            row.next_attempt_at = now + self.policy.backoff(row.attempts, self.rng)
            tally.failed = 1
        session.add(row)
        return tally

    def _disable(self, session: Session, subscription_id: str, now: datetime) -> None:
        sub = session.get(Subscription, subscription_id)
        if sub is None or sub.disabled_at is not None:
            return
        sub.disabled_at, sub.disabled_reason = now, "receiver answered 410 Gone"
        session.add(sub)
        self.audit.append(
            session,
            actor=ACTOR,
            action="subscription.disable",
            object_type="event_subscription",
            object_id=subscription_id,
            detail={"reason": "410 Gone"},
        )

    # --- loops --------------------------------------------------------------------------------

    def drain(self, *, wait_for_leases: bool = False, max_seconds: float = 300.0) -> Tally:
        """Steps until nothing is due; with ``wait_for_leases``, also waits (real time) for the
        leases of deliveries a stopped worker held, so they are sent before returning."""
        tally, end = Tally(), time.monotonic() + max_seconds
        while time.monotonic() < end:
            done = self.step()
            tally.add(done)
            if done.busy:
                continue
            if not wait_for_leases:
                break
            with reading(self.engine) as session:
                lease_end = next_lease_end(session)
            if lease_end is None:
                break
            time.sleep(min(1.0, max(0.05, (lease_end - self.clock.now()).total_seconds())))
        return tally

    def run(
        self,
        *,
        interval: float,
        stop: threading.Event,
        periodic: Sequence[Callable[[], object]] = (),
        periodic_seconds: float = 300.0,
    ) -> None:
        """Delivers until ``stop`` is set; calls each of ``periodic`` (e.g. the daily expiry
        scan) at start and every ``periodic_seconds``; a task that raises is logged, not fatal."""
        next_periodic = 0.0
        while not stop.is_set():
            if time.monotonic() >= next_periodic:
                for task in periodic:
                    try:
                        task()
                    except Exception:
                        _log.exception("periodic task %r failed", task)
                next_periodic = time.monotonic() + periodic_seconds
            try:
                busy = self.step()
            except Exception:  # the database may be down for a while: wait and try again
                _log.exception("delivery step failed")
                stop.wait(interval)
                continue
            if not busy.busy:
                stop.wait(interval)


def _loaded(session: Session, ids: list[int]) -> list[tuple[Delivery, Subscription, OutboxEvent]]:
    """The claimed deliveries with their subscription and event, in three reads."""
    rows = session.exec(
        select(Delivery).where(col(Delivery.id).in_(ids)).order_by(col(Delivery.outbox_id))
    ).all()
    subs = {
        s.id: s
        for s in session.exec(
            select(Subscription).where(col(Subscription.id).in_({r.subscription_id for r in rows}))
        ).all()
    }
    events = {
        e.id: e
        for e in session.exec(
            select(OutboxEvent).where(col(OutboxEvent.id).in_({r.outbox_id for r in rows}))
        ).all()
    }
    return [(r, subs[r.subscription_id], events[r.outbox_id]) for r in rows]
