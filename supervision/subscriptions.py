"""Subscriptions: a department asks for signed events at an HTTPS endpoint of its own.

A subscription names its endpoint (``supervision.endpoints`` decides which URLs are acceptable)
and its topics. What a topic lets through is decided when an event is fanned out
(``supervision.fanout``), never trusted from the subscriber:

* ``issued``: events of licences the department issued;
* ``pulled``: events of licences the department has pulled (``licence_pull``) — so a department
  never hears of a licence it has no relation to;
* ``type:<code>``: every event of one licence type (identifiers and statuses only: an event
  never names a holder);
* ``alerts``: alerts of the departments under the subscriber's GB/T 2260 division, for a
  supervision office's client (scope ``supervise``);
* ``reminders``: expiry reminders, for the platform's message service (scope
  ``events:reminders``).

A department holds at most :data:`MAX_PER_DEPARTMENT` live subscriptions; another department's
subscription is answered as if it did not exist. Creating, deleting and replaying are audited.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import JSON, Column, DateTime
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, func, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import reading, transaction
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from licences.catalogue_rules import issuers
from licences.identifiers import validate_licence_type_code
from licences.models import LicenceType
from seals.clients import REMINDERS, SUPERVISE
from supervision.endpoints import MAX_URL, EndpointRule
from supervision.outbox import OutboxEvent

MAX_PER_DEPARTMENT = 10
MAX_TOPICS = 16
SUBSCRIBE = "events:subscribe"
# The scope each fixed topic needs; ``type:<code>`` needs SUBSCRIBE like ``issued``.
TOPIC_SCOPES = {
    "issued": SUBSCRIBE,
    "pulled": SUBSCRIBE,
    "alerts": SUPERVISE,
    "reminders": REMINDERS,
}
TYPE_PREFIX = "type:"


class Subscription(SQLModel, table=True):
    __tablename__ = "event_subscription"

    id: str = Field(primary_key=True, max_length=20)
    department_code: str = Field(foreign_key="department.code", index=True, max_length=18)
    client_id: str = Field(max_length=16)  # the client that made it: privileged topics follow it
    url: str = Field(max_length=MAX_URL)
    topics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The newest outbox event when it was made: it receives the events after that one only.
    starts_after: int = 0
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    deleted_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    disabled_at: datetime | None = Field(  # the receiver answered 410 Gone
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    disabled_reason: str | None = Field(default=None, max_length=128)


@dataclass(frozen=True)
class SubscriptionView:
    id: str
    url: str
    topics: tuple[str, ...]
    created_at: datetime
    status: str  # active | disabled
    disabled_reason: str | None

    @classmethod
    def of(cls, row: Subscription) -> SubscriptionView:
        return cls(
            id=row.id,
            url=row.url,
            topics=tuple(row.topics),
            created_at=row.created_at,
            status="disabled" if row.disabled_at is not None else "active",
            disabled_reason=row.disabled_reason,
        )


def check_topics(
    session: Session, topics: list[str], scopes: frozenset[str], department_code: str
) -> list[str]:
    """The topics, each known and allowed to a client holding ``scopes``, duplicates dropped.

    A type's events name every licence of that type, whoever issued it, so ``type:<code>`` is
    for the departments answerable for the type — its defining authority and its issuers —
    and not a way for any department to watch another's issuance; a relying department hears
    of the licences it pulled (``pulled``)."""
    if not topics:
        raise InvalidInput("须至少订阅一个主题 / name at least one topic", field="topics")
    if len(topics) > MAX_TOPICS:
        raise InvalidInput(
            f"主题至多 {MAX_TOPICS} 个 / at most {MAX_TOPICS} topics", field="topics"
        )
    kept: list[str] = []
    for topic in topics:
        if topic.startswith(TYPE_PREFIX):
            code = validate_licence_type_code(topic[len(TYPE_PREFIX) :], field="topics")
            entry = session.get(LicenceType, code)
            if entry is None:
                raise InvalidInput(
                    f"证照类型 {code} 不在目录中 / licence type {code} is not in the catalogue",
                    field="topics",
                )
            if department_code != entry.authority_code and department_code not in issuers(entry):
                raise Forbidden(
                    f"只有证照类型 {code} 的定义机构和签发部门可以订阅其全部事件 / only the "
                    f"defining authority and the issuers of licence type {code} may subscribe "
                    "to all its events",
                    extra={"topic": TYPE_PREFIX + code},
                )
            topic, needed = TYPE_PREFIX + code, SUBSCRIBE
        elif topic in TOPIC_SCOPES:
            needed = TOPIC_SCOPES[topic]
        else:
            raise InvalidInput(
                f"未知主题 {topic[:64]!r}（issued、pulled、type:<代码>、alerts、reminders）/ "
                f"unknown topic {topic[:64]!r} (issued, pulled, type:<code>, alerts, reminders)",
                field="topics",
            )
        if needed not in scopes:
            raise Forbidden(
                f"主题 {topic} 需要权限范围 {needed} / topic {topic} needs scope {needed}",
                extra={"topic": topic, "scope": needed},
            )
        if topic not in kept:
            kept.append(topic)
    return kept


class SubscriptionDesk:
    """What the departments' subscription API calls; each method owns its transaction."""

    def __init__(
        self,
        *,
        engine: Engine,
        audit: AuditLog,
        clock: Clock,
        rule: EndpointRule,
        max_per_department: int = MAX_PER_DEPARTMENT,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock
        self._rule = rule
        self._max = max_per_department

    def create(
        self,
        *,
        department_code: str,
        client_id: str,
        scopes: frozenset[str],
        actor: str,
        url: str,
        topics: list[str],
        request_id: str | None = None,
    ) -> SubscriptionView:
        url = self._rule.check_url(url)  # resolves the host: outside the transaction
        with transaction(self._engine) as session:
            kept = check_topics(session, topics, scopes, department_code)
            live = session.exec(
                select(func.count())
                .select_from(Subscription)
                .where(
                    Subscription.department_code == department_code,
                    col(Subscription.deleted_at).is_(None),
                )
            ).one()
            if live >= self._max:
                raise Conflict(
                    f"每个部门至多 {self._max} 个订阅 / a department holds at most {self._max} "
                    "subscriptions; delete one first",
                    extra={"limit": self._max},
                )
            newest = session.exec(select(func.max(OutboxEvent.id))).one()
            row = Subscription(
                id="sub_" + secrets.token_hex(8),
                starts_after=newest or 0,
                department_code=department_code,
                client_id=client_id,
                url=url,
                topics=kept,
                created_at=self._clock.now(),
            )
            session.add(row)
            session.flush()
            self._audit.append(
                session,
                actor=actor,
                action="subscription.create",
                object_type="event_subscription",
                object_id=row.id,
                detail={"url": without_query(url), "topics": kept},
                request_id=request_id,
            )
            return SubscriptionView.of(row)

    def of_department(self, department_code: str) -> list[SubscriptionView]:
        with reading(self._engine) as session:
            rows = session.exec(
                select(Subscription)
                .where(
                    Subscription.department_code == department_code,
                    col(Subscription.deleted_at).is_(None),
                )
                .order_by(col(Subscription.created_at), col(Subscription.id))
            ).all()
            return [SubscriptionView.of(row) for row in rows]

    def delete(
        self, *, department_code: str, subscription_id: str, actor: str, request_id: str | None
    ) -> None:
        """Ends the subscription; its pending deliveries are cancelled, none is sent again."""
        from supervision.delivery_records import cancel_pending

        with transaction(self._engine) as session:
            row = own(session, department_code, subscription_id)
            row.deleted_at = self._clock.now()
            session.add(row)
            cancelled = cancel_pending(session, row.id)
            self._audit.append(
                session,
                actor=actor,
                action="subscription.delete",
                object_type="event_subscription",
                object_id=row.id,
                detail={"cancelled": cancelled},
                request_id=request_id,
            )

    def deliveries(
        self, *, department_code: str, subscription_id: str, state: str | None, limit: int = 100
    ) -> list[dict[str, Any]]:
        from supervision.delivery_records import delivery_views

        with reading(self._engine) as session:
            own(session, department_code, subscription_id)
            return delivery_views(session, subscription_id, state, limit)

    def replay(
        self,
        *,
        department_code: str,
        subscription_id: str,
        event_id: str,
        actor: str,
        request_id: str | None,
    ) -> dict[str, Any]:
        """Sends a delivered or dead event again, the same signed bytes and event id."""
        from supervision.delivery_records import requeue

        with transaction(self._engine) as session:
            row = own(session, department_code, subscription_id)
            if row.disabled_at is not None:
                raise Conflict(
                    "订阅已停用（接收方答复 410），请重新订阅 / the subscription is disabled (the "
                    "receiver answered 410 Gone); subscribe again",
                    extra={"reason": "subscription_disabled"},
                )
            view = requeue(session, row.id, event_id, self._clock.now())
            self._audit.append(
                session,
                actor=actor,
                action="subscription.replay",
                object_type="event_subscription",
                object_id=row.id,
                detail={"event_id": event_id},
                request_id=request_id,
            )
            return view


def without_query(url: str) -> str:
    """The URL as the audit trail keeps it: a query may carry the receiver's own secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?…" if parts.query else "")


def own(session: Session, department_code: str, subscription_id: str) -> Subscription:
    """The department's live subscription; NotFound for another's, as for none at all."""
    row = session.get(Subscription, subscription_id[:20])
    if row is None or row.department_code != department_code or row.deleted_at is not None:
        raise NotFound(f"订阅不存在 / no such subscription: {subscription_id[:32]}")
    return row
