"""Deliveries as stored: one row per (subscription, event), made by the worker, never by the
transaction that changed the licence (issuance does no delivery work at all).

Fan-out reads the outbox past a cursor (``event_delivery_cursor``) and writes the deliveries and
the new cursor in one transaction, with the cursor row locked, so two workers never fan the same
event out twice (the ``(subscription_id, outbox_id)`` key would refuse it anyway).

On PostgreSQL an outbox id is taken when the row is inserted, not when it commits, so a
transaction that is slow to commit may make an id below the cursor visible late. Fan-out
therefore stops at a gap in the ids and waits for it (:data:`GAP_WAIT` seconds, as first seen by
this worker) before stepping over it; a gap that is still empty by then was a rolled-back
transaction. SQLite numbers rows under its single write lock: no gaps.

Claiming a due delivery is one conditional UPDATE (pending, due, its lease expired or never
taken), so two workers never both own it; on PostgreSQL the candidates are read with
``FOR UPDATE SKIP LOCKED`` so workers pass each other instead of waiting. Order per licence
per subscription: a delivery is not a candidate while an earlier delivery of the same licence
to the same subscription is still pending. A worker killed mid-delivery leaves its lease to
expire; the delivery is then claimed again and the receiver sees the same event id again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint, exists, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Field, Session, SQLModel, col, select

from core.db import as_utc
from core.errors import Conflict, InvalidInput, NotFound
from licences.pulls import LicencePull
from seals.clients import REMINDERS, SUPERVISE, ApiClient
from seals.models import Department
from supervision import divisions
from supervision.outbox import OutboxEvent
from supervision.subscriptions import TYPE_PREFIX, Subscription

PENDING, DELIVERED, DEAD, CANCELLED = "pending", "delivered", "dead", "cancelled"
STATES = (PENDING, DELIVERED, DEAD, CANCELLED)
CURSOR = "fanout"
GAP_WAIT = 60.0  # seconds a gap in the outbox ids is waited for before it is stepped over
FANOUT_BATCH = 500
# Notices for the platform's message service: they carry the holder's ID (supervision.expiry), so
# only the reminders topic takes them.
REMINDER_KINDS = ("licence.expiring", "licence.overdue")
ALERT_KINDS = ("alert.raised",)


class Delivery(SQLModel, table=True):
    __tablename__ = "event_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "outbox_id", name="uq_event_delivery_event"),
        Index("ix_event_delivery_due", "state", "next_attempt_at"),
        Index("ix_event_delivery_order", "subscription_id", "licence", "outbox_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(foreign_key="event_subscription.id", max_length=20)
    outbox_id: int = Field(foreign_key="outbox_event.id")
    event_id: str = Field(max_length=32)
    kind: str = Field(max_length=48)
    licence: str | None = Field(default=None, max_length=96)  # orders delivery per licence
    state: str = Field(max_length=12)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    claimed_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    claimed_by: str | None = Field(default=None, max_length=32)
    token: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # signed once
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    delivered_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class DeliveryCursor(SQLModel, table=True):
    __tablename__ = "event_delivery_cursor"

    name: str = Field(primary_key=True, max_length=16)
    outbox_id: int = 0  # every event up to this id has been fanned out


@dataclass
class Gaps:
    """When this worker first saw each gap in the outbox ids (monotonic seconds)."""

    seen: dict[int, float]

    def ripe(self, missing: int) -> bool:
        first = self.seen.setdefault(missing, time.monotonic())
        return time.monotonic() - first >= GAP_WAIT


def _cursor(session: Session) -> DeliveryCursor:
    query = select(DeliveryCursor).where(DeliveryCursor.name == CURSOR).with_for_update()
    row = session.exec(query).first()
    if row is None:
        row = DeliveryCursor(name=CURSOR, outbox_id=0)
        session.add(row)
        session.flush()
    return row


@dataclass(frozen=True)
class _Audience:
    """What fan-out needs to know of the live subscriptions, read once per batch."""

    subscriptions: list[Subscription]
    divisions: dict[str, str]  # department code -> GB/T 2260 division
    privileged: dict[str, frozenset[str]]  # client id -> its scopes, while not revoked


def _audience(session: Session) -> _Audience:
    subs = list(
        session.exec(
            select(Subscription).where(
                col(Subscription.deleted_at).is_(None), col(Subscription.disabled_at).is_(None)
            )
        ).all()
    )
    division = {d.code: d.division_code for d in session.exec(select(Department)).all()}
    clients = {s.client_id for s in subs}
    scopes: dict[str, frozenset[str]] = {}
    if clients:
        for client in session.exec(select(ApiClient).where(col(ApiClient.id).in_(clients))).all():
            if client.revoked_at is None:
                scopes[client.id] = frozenset(client.scopes)
    return _Audience(subs, division, scopes)


def _matches(
    sub: Subscription, event: OutboxEvent, audience: _Audience, pulled: set[tuple[str, str]]
) -> bool:
    assert event.id is not None
    if event.id <= sub.starts_after:  # it happened before the subscription was made
        return False
    if sub.client_id not in audience.privileged:
        return False  # its client was revoked: what a stolen key set up stops with the key
    topics = set(sub.topics)
    if event.kind in ALERT_KINDS:
        if "alerts" not in topics or SUPERVISE not in audience.privileged.get(sub.client_id, ()):
            return False
        office = audience.divisions.get(sub.department_code)
        subject = audience.divisions.get(event.department_code or "")
        if office is None:
            return False
        if subject is None:  # an alert of no department: the national level only
            return office == divisions.NATIONAL
        return divisions.covers(office, subject)
    if event.kind in REMINDER_KINDS:
        held = audience.privileged.get(sub.client_id, frozenset())
        return "reminders" in topics and (REMINDERS in held or "admin" in held)
    if event.licence is None:
        return False
    if "issued" in topics and event.department_code == sub.department_code:
        return True
    if "pulled" in topics and (event.licence, sub.department_code) in pulled:
        return True
    return event.type_code is not None and TYPE_PREFIX + event.type_code in topics


def fan_out(session: Session, now: datetime, gaps: Gaps) -> int:
    """Deliveries for the outbox events past the cursor, and the cursor moved past them; the
    number of deliveries written. Call inside a transaction."""
    cursor = _cursor(session)
    events = list(
        session.exec(
            select(OutboxEvent)
            .where(col(OutboxEvent.id) > cursor.outbox_id)
            .order_by(col(OutboxEvent.id))
            .limit(FANOUT_BATCH)
        ).all()
    )
    if not events:
        return 0
    audience = _audience(session)
    licences = {e.licence for e in events if e.licence}
    pulled: set[tuple[str, str]] = set()
    if licences and any("pulled" in s.topics for s in audience.subscriptions):
        rows = session.exec(
            select(LicencePull.identifier, LicencePull.department_code)
            .where(col(LicencePull.identifier).in_(licences))
            .distinct()
        ).all()
        pulled = {(identifier, code) for identifier, code in rows}
    written, last = 0, cursor.outbox_id
    for event in events:
        assert event.id is not None
        if event.id != last + 1 and not all(gaps.ripe(i) for i in range(last + 1, event.id)):
            break  # a transaction holding an earlier id may still commit: wait for it
        for sub in audience.subscriptions:
            if _matches(sub, event, audience, pulled):
                session.add(
                    Delivery(
                        subscription_id=sub.id,
                        outbox_id=event.id,
                        event_id=event.event_id,
                        kind=event.kind,
                        licence=event.licence,
                        state=PENDING,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
                written += 1
        last = event.id
    if last != cursor.outbox_id:
        cursor.outbox_id = last
        session.add(cursor)
        session.flush()
    return written


def claim(session: Session, now: datetime, until: datetime, worker: str, limit: int) -> list[int]:
    """Claims up to ``limit`` due deliveries for ``worker`` until ``until``; their ids, in outbox
    order, at most one per (subscription, licence). Call inside a transaction."""
    earlier = aliased(Delivery)
    blocked = exists().where(
        col(earlier.subscription_id) == col(Delivery.subscription_id),
        col(earlier.licence) == col(Delivery.licence),
        col(earlier.outbox_id) < col(Delivery.outbox_id),
        col(earlier.state) == PENDING,
    )
    query = (
        select(Delivery.id)
        .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
        .where(
            Delivery.state == PENDING,
            col(Delivery.next_attempt_at) <= now,
            or_(col(Delivery.claimed_until).is_(None), col(Delivery.claimed_until) < now),
            col(Subscription.deleted_at).is_(None),
            col(Subscription.disabled_at).is_(None),
            ~blocked,
        )
        .order_by(col(Delivery.outbox_id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Delivery)
    candidates = [i for i in session.exec(query).all() if i is not None]
    if not candidates:
        return []
    session.exec(
        update(Delivery)
        .where(
            col(Delivery.id).in_(candidates),
            col(Delivery.state) == PENDING,
            or_(col(Delivery.claimed_until).is_(None), col(Delivery.claimed_until) < now),
        )
        .values(claimed_until=until, claimed_by=worker)
    )
    taken = session.exec(
        select(Delivery.id).where(
            col(Delivery.id).in_(candidates),
            col(Delivery.claimed_by) == worker,
            col(Delivery.claimed_until) == until,
        )
    ).all()
    return sorted(i for i in taken if i is not None)


def next_lease_end(session: Session) -> datetime | None:
    """When the earliest lease of a pending delivery ends (a worker that stopped mid-send)."""
    found = session.exec(
        select(Delivery.claimed_until)
        .where(Delivery.state == PENDING, col(Delivery.claimed_until).is_not(None))
        .order_by(col(Delivery.claimed_until))
        .limit(1)
    ).first()
    return as_utc(found) if found is not None else None


def cancel_pending(session: Session, subscription_id: str) -> int:
    result = session.exec(
        update(Delivery)
        .where(col(Delivery.subscription_id) == subscription_id, col(Delivery.state) == PENDING)
        .values(state=CANCELLED)
    )
    return int(result.rowcount)


def view(row: Delivery) -> dict[str, Any]:
    def at(value: datetime | None) -> str | None:
        return as_utc(value).isoformat() if value is not None else None

    return {
        "event_id": row.event_id,
        "kind": row.kind,
        "licence": row.licence,
        "state": row.state,
        "attempts": row.attempts,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "next_attempt_at": at(row.next_attempt_at) if row.state == PENDING else None,
        "created_at": at(row.created_at),
        "delivered_at": at(row.delivered_at),
    }


def delivery_views(
    session: Session, subscription_id: str, state: str | None, limit: int
) -> list[dict[str, Any]]:
    query = select(Delivery).where(Delivery.subscription_id == subscription_id)
    if state is not None:
        if state not in STATES:
            raise InvalidInput(
                f"状态须为 {'、'.join(STATES)} 之一 / state must be one of {', '.join(STATES)}",
                field="state",
            )
        query = query.where(Delivery.state == state)
    rows = session.exec(query.order_by(col(Delivery.outbox_id).desc()).limit(limit)).all()
    return [view(row) for row in rows]


def requeue(session: Session, subscription_id: str, event_id: str, now: datetime) -> dict[str, Any]:
    row = session.exec(
        select(Delivery).where(
            Delivery.subscription_id == subscription_id, Delivery.event_id == event_id[:32]
        )
    ).first()
    if row is None:
        raise NotFound(f"此订阅无该事件 / no such event for this subscription: {event_id[:32]}")
    if row.state not in (DELIVERED, DEAD):
        raise Conflict(
            f"事件状态为 {row.state}，仅已送达或死信可重发 / the event is {row.state}; only a "
            "delivered or dead event is replayed",
            extra={"state": row.state},
        )
    row.state, row.attempts, row.next_attempt_at = PENDING, 0, now
    row.claimed_until = row.claimed_by = None
    session.add(row)
    session.flush()
    return view(row)
