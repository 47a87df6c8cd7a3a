"""The audit chain (电子监察 / 网上留痕): an append-only table where each entry carries the SHA-256
of the one before, so an edit, a deletion or a reordering is found by :func:`verify_chain`.

Appends happen inside the caller's transaction: the audit entry lands with the action it records
or not at all. A single head row is updated *first*, which takes the write lock (SQLite) or the
row lock (PostgreSQL) and so serialises appends across workers. The append is written with
prepared SQL statements, not the ORM's unit of work: it runs with every verification.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, Column, Connection, DateTime, Integer, LargeBinary, bindparam, func
from sqlalchemy.engine import Engine
from sqlalchemy.orm import configure_mappers
from sqlmodel import Field, Session, SQLModel, col, select

from core import audit_pg, sqlite_writes
from core.clock import Clock
from core.db import as_utc
from core.roundtrips import psycopg_connection
from core.sqlite_writes import sqlite_connection

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
    every hash recomputed — still fails: the rewriter cannot sign the new heads.

    Checkpoints are numbered 1, 2, 3 … without gaps (``number``), so a deleted checkpoint is
    itself a break, and each carries an RFC 3161 token of the domain's TSA over
    :func:`checkpoint_digest`. The latest is published in the signed trust list: a copy kept
    outside the database (``elicence audit verify --anchor``) catches a chain rewritten or
    truncated together with its checkpoints. Checkpoints made before numbering (no token) are
    signed over the first message form."""

    __tablename__ = "audit_checkpoint"

    seq: int = Field(primary_key=True)  # the audit entry at the head when it was made
    number: int = Field(sa_column=Column(Integer, nullable=False, unique=True))
    hash: str = Field(max_length=64)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    key_ref: str = Field(max_length=256)
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    timestamp_token: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )


Checkpointer = Callable[[Session, "AuditEntry"], None]


def checkpoint_message(seq: int, head_hash: str, number: int | None = None) -> bytes:
    """What the audit key signs: with ``number``, the numbered form the TSA also stamps."""
    if number is None:
        return f"elicence-audit-checkpoint:{seq}:{head_hash}".encode()
    return f"elicence-audit-checkpoint/2:{number}:{seq}:{head_hash}".encode()


def checkpoint_digest(number: int, seq: int, head_hash: str) -> bytes:
    """SHA-256 of the numbered checkpoint: the message imprint of its TSA token."""
    return hashlib.sha256(checkpoint_message(seq, head_hash, number)).digest()


def next_checkpoint_number(session: Session) -> int:
    """One more than the highest number; appends are serialised by the head's lock."""
    highest = session.exec(select(func.max(col(AuditCheckpoint.number)))).one()
    return int(highest or 0) + 1


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    """The newest checkpoint with a TSA token: the one to publish and export."""
    return session.exec(
        select(AuditCheckpoint)
        .where(col(AuditCheckpoint.timestamp_token).is_not(None))
        .order_by(col(AuditCheckpoint.number).desc())
    ).first()


def checkpoint_json(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """The checkpoint as published in the trust list (``docs/trust-list.md``)."""
    token = checkpoint.timestamp_token
    return {
        "sequence": checkpoint.number,
        "entry": checkpoint.seq,
        "hash": checkpoint.hash,
        "at": as_utc(checkpoint.at).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "timestamp": base64.b64encode(token).decode("ascii") if token is not None else None,
    }


def entry_hash(entry: AuditEntry) -> str:
    return _hash(
        {
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
    )


def _hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Pending:
    """One entry to append (:meth:`AuditLog.append_many`)."""

    actor: str
    action: str
    object_type: str
    object_id: str
    outcome: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None


_HEAD = AuditHead.__table__  # type: ignore[attr-defined]
_ENTRY = AuditEntry.__table__  # type: ignore[attr-defined]
# Built once: appends are on the path of every audited action. The first statement takes the
# head's lock and reads the previous entry in the same round trip (UPDATE ... RETURNING).
_ADVANCE = (
    _HEAD.update()
    .where(_HEAD.c.id == 1)
    .values(seq=_HEAD.c.seq + bindparam("count"))
    .returning(_HEAD.c.seq, _HEAD.c.hash)
)
_SET_HEAD_HASH = _HEAD.update().where(_HEAD.c.id == 1).values(hash=bindparam("new_hash"))
_CREATE_HEAD = _HEAD.insert()
_INSERT_ENTRY = _ENTRY.insert()


_PG = audit_pg.Statements(_ENTRY)
_ENTRY_KEYS = tuple(column.key for column in _ENTRY.columns)
_SQLITE_ADVANCE = "UPDATE audit_head SET seq = seq + ? WHERE id = 1 RETURNING seq, hash"
_SQLITE_CREATE_HEAD = "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)"
_SQLITE_SET_HEAD_HASH = "UPDATE audit_head SET hash = ? WHERE id = 1"


@cache
def _mappers_ready() -> None:
    configure_mappers()


def _written(values: dict[str, Any]) -> AuditEntry:
    """The entry as written, detached and read-only (built without the ORM's bookkeeping,
    which cost more than the insert)."""
    _mappers_ready()
    return AuditEntry.model_construct(**values)


class CheckpointDue(Exception):
    """An append told not to sign a checkpoint reached one: the caller's transaction is to be
    rolled back and the entries appended where signing may wait (``verify.log``)."""


Observer = Callable[[Session, AuditEntry], object]  # what it returns is ignored
# Whether an observer may act on an entry (write, query, raise), told before it is written.
Concerns = Callable[[Pending], bool]


class AuditLog:
    """``observers`` see every entry once it is written, in the same transaction: what they
    write (an outbox event, an alert) lands with the action or not at all, and no caller can
    skip them, since every audited action passes here. An observer may append entries of its
    own; they are observed in turn.

    An observer registered with ``concerns`` says which entries it may act on. Entries that
    concern no observer and bring no checkpoint are *quiet*: on PostgreSQL a batch of them can
    be written with the rows it records in one statement (:meth:`append_quietly`)."""

    def __init__(self, clock: Clock, checkpointer: Checkpointer | None = None) -> None:
        self._clock = clock
        self.checkpointer = checkpointer
        self.observers: list[Observer] = []
        self._concerns: dict[Observer, Concerns] = {}
        self._heads = audit_pg.Heads()  # PostgreSQL: where this process left each chain

    def observe(self, observer: Observer, concerns: Concerns | None = None) -> None:
        """``concerns``: the entries ``observer`` may act on; without it, every entry."""
        self.observers.append(observer)
        if concerns is not None:
            self._concerns[observer] = concerns

    def _no_checkpoint(self, first: int, last: int) -> bool:
        """None of entries ``first`` to ``last`` is due a checkpoint (a checkpointer that
        cannot tell is due at every entry)."""
        checkpointer = self.checkpointer
        if checkpointer is None:
            return True
        due = getattr(checkpointer, "due", None)
        return due is not None and not any(due(seq) for seq in range(first, last + 1))

    def _signs_here(self, entries: Sequence[AuditEntry]) -> bool:
        """No checkpoint among ``entries``, or the checkpointer signs in this process."""
        if getattr(self.checkpointer, "signs_in_process", False):
            return True
        return self._no_checkpoint(entries[0].seq, entries[-1].seq)

    def _quiet(self, pending: Sequence[Pending], last_seq: int) -> bool:
        """No observer acts on these entries, numbered up to ``last_seq``, and none of them
        is due a checkpoint."""
        if not self._no_checkpoint(last_seq - len(pending) + 1, last_seq):
            return False
        for observer in self.observers:
            concerns = self._concerns.get(observer)
            if concerns is None or any(concerns(item) for item in pending):
                return False
        return True

    def append_quietly(
        self, connection: Connection, pending: Sequence[Pending], also: audit_pg.Rows
    ) -> bool:
        """PostgreSQL: ``pending`` with ``also`` (rows of another table, the records of the same
        actions) in one statement, its own transaction, committed when this returns True —
        if the entries are quiet and the head is still where this process left it. False:
        nothing was written, and the caller appends as usual."""
        write = self.quiet_write(connection.engine, pending, also)
        if write is None or not audit_pg.write_quietly(connection, write):
            return False
        self.quietly_written(connection.engine, write)
        return True

    def quiet_write(
        self, engine: Engine, pending: Sequence[Pending], also: audit_pg.Rows
    ) -> audit_pg.QuietWrite | None:
        """:meth:`append_quietly`'s statement, for a caller that sends it on a connection of its
        own to ``engine``'s database, and tells :meth:`quietly_written` when the head moved.
        None: these entries are not quiet, or this process has not written the chain yet."""
        last = self._heads.get(engine)
        count = len(pending)
        if last is None or not pending or not self._quiet(pending, last[0] + count):
            return None
        rows = self._stamped(pending, (last[0] + count, last[1]))
        return audit_pg.quiet_write(_PG, last, rows, also)

    def quiet_run(self, engine: Engine, pending: Sequence[Pending]) -> tuple[int, bool]:
        """How many of ``pending``, from the first, :meth:`quiet_write` would write after the
        head this process left; and whether the one after them is held back only by the
        checkpoint due at it (no observer acts on it), so that the entries after it are quiet
        again once it is written. (0, False): this process has not written the chain yet."""
        last = self._heads.get(engine)
        if last is None:
            return 0, False
        for n, item in enumerate(pending):
            for observer in self.observers:
                concerns = self._concerns.get(observer)
                if concerns is None or concerns(item):
                    return n, False
            if not self._no_checkpoint(last[0] + n + 1, last[0] + n + 1):
                return n, True
        return len(pending), False

    def quietly_written(self, engine: Engine, write: audit_pg.QuietWrite) -> None:
        """``write`` committed: the head this process left is the one it wrote."""
        self._heads.put(engine, write.head)

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
        pending = Pending(actor, action, object_type, object_id, outcome, detail or {}, request_id)
        return self.append_many(session, [pending])[0]

    def _stamped(self, pending: Sequence[Pending], head: Any) -> list[dict[str, Any]]:
        """The entries' rows, numbered and chained after ``head`` (the advanced head's ``seq``
        and the previous hash, or None for the first entries ever)."""
        count = len(pending)
        last, prev_hash = (count, GENESIS) if head is None else head
        at = self._clock.now()
        stamped = as_utc(at).isoformat()
        rows: list[dict[str, Any]] = []
        for seq, item in enumerate(pending, start=last - count + 1):
            values: dict[str, Any] = {
                "seq": seq,
                "at": stamped,
                "actor": item.actor,
                "action": item.action,
                "object_type": item.object_type,
                "object_id": item.object_id,
                "outcome": item.outcome,
                "detail": item.detail,
                "request_id": item.request_id,
                "prev_hash": prev_hash,
            }
            # The hashed body is exactly ``entry_hash``'s: these keys, the time as ISO text.
            values["hash"] = prev_hash = _hash(values)
            values["at"] = at
            rows.append(values)
        return rows

    def _written_rows(
        self, connection: Connection, pending: Sequence[Pending]
    ) -> list[dict[str, Any]]:
        """The entries written after the head, its lock taken first (the module's docstring)."""
        count = len(pending)
        if sqlite_connection(connection) is not None:  # calls in this process, through sqlite3
            found = sqlite_writes.execute(connection, _SQLITE_ADVANCE, (count,))
            head = found[0] if found else None
            if head is None:  # the first entries ever: the head row is created with them
                sqlite_writes.execute(connection, _SQLITE_CREATE_HEAD, (count, GENESIS))
            rows = self._stamped(pending, head)
            sqlite_writes.insert_rows(connection, _ENTRY, _ENTRY_KEYS, rows)
            sqlite_writes.execute(connection, _SQLITE_SET_HEAD_HASH, (rows[-1]["hash"],))
            return rows
        if psycopg_connection(connection) is None:  # another database: through SQLAlchemy
            head = connection.execute(_ADVANCE, {"count": count}).first()
            if head is None:
                connection.execute(_CREATE_HEAD, {"id": 1, "seq": count, "hash": GENESIS})
            rows = self._stamped(pending, head)
            connection.execute(_INSERT_ENTRY, rows[0] if count == 1 else rows)
            connection.execute(_SET_HEAD_HASH, {"new_hash": rows[-1]["hash"]})
            return rows
        # PostgreSQL: after the head this process left, in one round trip, if no one else has
        # written since (``core.audit_pg``); else the plain two.
        engine = connection.engine
        last = self._heads.get(engine)
        if last is not None:
            rows = self._stamped(pending, (last[0] + count, last[1]))
            if not audit_pg.append_after(connection, _PG, last, rows):
                last = None
        if last is None:
            head = audit_pg.advance(connection, count)
            if head is None:  # the first entries ever: maybe other writers' too
                head = audit_pg.start_chain(connection, count, GENESIS)
            rows = self._stamped(pending, head)
            audit_pg.insert_and_set_head(connection, _PG, rows)
        self._heads.put(engine, (rows[-1]["seq"], rows[-1]["hash"]))
        return rows

    def append_many(
        self,
        session: Session,
        pending: Sequence[Pending],
        *,
        connection: Connection | None = None,
        may_wait: bool = True,
    ) -> list[AuditEntry]:
        """Appends in order, in the caller's transaction, with three statements however many
        there are: advance the head (its lock, and the previous hash, in one round trip),
        insert the entries, set the head's hash — and every N entries a signed checkpoint.
        On PostgreSQL the last two are one statement, and when no other writer came since this
        process's last append, all three are (``core.audit_pg``).
        Work the caller left pending is flushed first, as before, so the head's lock is not
        held while it is written. Returns the entries as written: detached and read-only.

        ``connection``: the statements go there, and ``session`` (on the same transaction) is
        used only for a checkpoint — for a writer that needs no ORM otherwise.
        ``may_wait`` False (an event loop's write): :class:`CheckpointDue` is raised, before
        anything is signed, when one of the entries brings a checkpoint whose signing leaves
        this process (a key service or a token: ``signs_in_process``)."""
        if not pending:
            return []
        if session.autoflush:
            session.flush()
        if connection is None:
            connection = session.connection()
        rows = self._written_rows(connection, pending)
        entries = [_written(values) for values in rows]
        if self.checkpointer is not None:
            if not may_wait and not self._signs_here(entries):
                raise CheckpointDue
            for entry in entries:
                self.checkpointer(session, entry)
        for entry in entries:
            for observer in self.observers:
                observer(session, entry)
        return entries


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


def anchor_problem(session: Session, number: int, seq: int, head_hash: str) -> str | None:
    """Why the chain no longer holds the anchored checkpoint ``number`` (entry ``seq`` with
    hash ``head_hash``), or None. Checked after :func:`verify_chain`: when the chain links and
    entry ``seq`` still has the anchored hash, no entry up to it was changed."""
    entry = session.get(AuditEntry, seq)
    if entry is None:
        return f"the chain no longer holds entry {seq} (truncated)"
    if entry.hash != head_hash:
        return f"entry {seq} was rewritten: its hash is not the anchored one"
    checkpoint = session.exec(
        select(AuditCheckpoint).where(AuditCheckpoint.number == number)
    ).first()
    if checkpoint is None:
        return f"checkpoint {number} is no longer in the database"
    if checkpoint.seq != seq or checkpoint.hash != head_hash:
        return f"checkpoint {number} in the database is not the anchored one"
    return None
