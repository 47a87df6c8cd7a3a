"""The audit chain (电子监察 / 网上留痕): an append-only table where each entry carries the SHA-256
of the one before, so an edit, a deletion or a reordering is found by :func:`verify_chain`.

Appends happen inside the caller's transaction: the audit entry lands with the action it records
or not at all. A single head row is updated *first*, which takes the write lock (SQLite) or the
row lock (PostgreSQL) and so serialises appends across workers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, LargeBinary
from sqlmodel import Field, Session, SQLModel, col, select

from core.clock import Clock
from core.db import as_utc

GENESIS = "0" * 64


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    seq: int = Field(primary_key=True)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64, index=True)
    object_type: str = Field(max_length=32)
    object_id: str = Field(max_length=128, index=True)
    outcome: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    request_id: str | None = Field(default=None, max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default=GENESIS, max_length=64)


class AuditCheckpoint(SQLModel, table=True):
    """Every N entries the chain head is signed by the audit key, so a chain rewritten whole —
    every hash recomputed — still fails: the rewriter cannot sign the new heads."""

    __tablename__ = "audit_checkpoint"

    seq: int = Field(primary_key=True)
    hash: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    key_ref: str = Field(max_length=256)
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


Checkpointer = Callable[[Session, "AuditEntry"], None]


def checkpoint_message(seq: int, head_hash: str) -> bytes:
    return f"elicence-audit-checkpoint:{seq}:{head_hash}".encode()


def entry_hash(entry: AuditEntry) -> str:
    body = {
        "seq": entry.seq,
        "at": as_utc(entry.at).isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "request_id": entry.request_id,
        "prev_hash": entry.prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditLog:
    def __init__(self, clock: Clock, checkpointer: Checkpointer | None = None) -> None:
        self._clock = clock
        self.checkpointer = checkpointer

    def append(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        outcome: str = "ok",
        detail: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> AuditEntry:
        session.execute(
            AuditHead.__table__.update().values(seq=AuditHead.__table__.c.seq + 1)  # type: ignore[attr-defined]
        )
        head = session.get(AuditHead, 1, populate_existing=True)
        if head is None:
            head = AuditHead(id=1, seq=1, hash=GENESIS)
            session.add(head)
            session.flush()
        entry = AuditEntry(
            seq=head.seq,
            at=self._clock.now(),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            outcome=outcome,
            detail=detail or {},
            request_id=request_id,
            prev_hash=head.hash,
            hash="",
        )
        entry.hash = entry_hash(entry)
        head.hash = entry.hash
        session.add(entry)
        session.flush()
        if self.checkpointer is not None:
            self.checkpointer(session, entry)
        return entry


@dataclass(frozen=True)
class ChainReport:
    intact: bool
    entries: int
    first_broken: int | None = None
    reason: str | None = None


def verify_chain(session: Session) -> ChainReport:
    """Walk the chain from the first entry; report the first entry that does not fit."""
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    for entry in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))):
        count += 1
        if entry.seq != expected_seq:
            return ChainReport(False, count, expected_seq, f"entry {expected_seq} is missing")
        if entry.prev_hash != expected_prev:
            return ChainReport(False, count, entry.seq, "does not link to the entry before it")
        if entry_hash(entry) != entry.hash:
            return ChainReport(False, count, entry.seq, "its content was changed")
        expected_prev = entry.hash
        expected_seq += 1
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if head_seq != count or head_hash != expected_prev:
        return ChainReport(False, count, count + 1, "entries after this point were removed")
    return ChainReport(True, count)
