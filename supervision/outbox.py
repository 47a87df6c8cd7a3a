"""The transactional outbox: an event is a row written in the transaction of the change it
reports, so an event exists exactly when its change committed.

Rows are numbered in commit-independent insertion order (``id``); delivery keeps the order per
licence (``licence``). ``event_id`` is what a receiver deduplicates on: a redelivery carries the
same id. ``dedupe`` makes an event that is emitted by a scan (a licence's expiry on its day, a
reminder) exist once however many times the scan runs.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_event"
    __table_args__ = (Index("ix_outbox_event_licence", "licence", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=32)
    kind: str = Field(max_length=48, index=True)
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    licence: str | None = Field(default=None, max_length=96)  # the identifier; orders delivery
    department_code: str | None = Field(default=None, max_length=18, index=True)
    type_code: str | None = Field(default=None, max_length=21)
    audit_seq: int | None = None  # the audit entry that caused it, when one did
    dedupe: str | None = Field(default=None, unique=True, max_length=160)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def emit(
    session: Session,
    *,
    kind: str,
    at: datetime,
    data: dict[str, Any],
    licence: str | None = None,
    department_code: str | None = None,
    type_code: str | None = None,
    audit_seq: int | None = None,
    dedupe: str | None = None,
) -> OutboxEvent | None:
    """Writes the event in ``session``'s transaction. With ``dedupe``, an event already written
    under that key is not written again (None is returned); the caller's transaction goes on."""
    event = OutboxEvent(
        event_id=new_event_id(),
        kind=kind,
        occurred_at=at,
        licence=licence,
        department_code=department_code,
        type_code=type_code,
        audit_seq=audit_seq,
        dedupe=dedupe,
        data=data,
    )
    if dedupe is None:
        session.add(event)
        session.flush()
        return event
    if session.exec(select(OutboxEvent.id).where(OutboxEvent.dedupe == dedupe)).first():
        return None
    nested = session.begin_nested()  # a concurrent scan may insert the same key first
    try:
        session.add(event)
        session.flush()
    except IntegrityError:
        nested.rollback()
        return None
    nested.commit()
    return event
