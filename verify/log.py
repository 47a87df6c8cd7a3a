"""The verification log: when, through which channel and with what result a licence was verified.

The audit chain already records every verification, but it is an append-only integrity record
for operators, not something to query per licence. This table answers the holder's question
"who checked my licence, and when?" cheaply, by identifier, and keeps no personal data of the
verifier (the public verification routes are anonymous).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from threading import Event, Lock
from typing import Any
from weakref import WeakKeyDictionary, ref

from sqlalchemy import Column, DateTime
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Field, Session, SQLModel, col, select

from core import audit_pg, sqlite_writes
from core.audit import AuditLog, CheckpointDue, Pending
from core.db import as_utc
from core.errors import ElicenceError, Unavailable
from core.roundtrips import commit_with, psycopg_connection
from core.sqlite_writes import sqlite_connection

MAX_HISTORY = 500
# On PostgreSQL a verification's records commit without waiting for the WAL's flush to disk
# (``core.roundtrips.commit_with``): the flush was half the server's work per verification and
# most of the writer's wait. A crash of the database server or its machine can lose the last
# few hundred milliseconds of verification records — whole transactions, the newest, the chain
# intact — the durability SQLite gives them here (WAL, ``synchronous=NORMAL``: a power loss can
# lose the newest commits). Issuance, status changes and every other audited action still wait
# for the disk, and each one that does makes every verification before it durable too.
WAIT_FOR_DISK = False

CHANNELS: dict[str, str] = {
    "qr-page": "手机扫码打开核验页 / phone scan of the QR code",
    "page-scan": "柜台扫码枪 / counter QR scanner",
    "kiosk-scan": "自助终端扫码 / self-service kiosk scan",
    "page-upload": "核验页上传文件 / file upload on the verification page",
    "api-qr": "核验接口（二维码） / verification API, QR text",
    "api-upload": "核验接口（文件） / verification API, file",
    "cli": "命令行 / command line",
}
METHODS: dict[str, str] = {
    "pdf": "PDF文件 / PDF file",
    "ofd": "OFD文件 / OFD file",
    "qr-code": "证照二维码（旧版） / licence QR (earlier form)",
    "qr-payload": "证照二维码 / licence QR",
    "presentation": "出示码 / presentation QR",
    "qr-copy": "加注件二维码 / stamped copy QR",
}


class VerificationLog(SQLModel, table=True):
    __tablename__ = "verification_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    identifier: str | None = Field(default=None, index=True, max_length=96)
    channel: str = Field(max_length=32)
    method: str = Field(max_length=16)
    indication: str = Field(max_length=16)
    sub_indication: str | None = Field(default=None, max_length=40)


_TABLE = VerificationLog.__table__  # type: ignore[attr-defined]
_INSERT = _TABLE.insert()
_LOG_KEYS = ("at", "identifier", "channel", "method", "indication", "sub_indication")


@dataclass(frozen=True)
class Verification:
    """One verification to record: its log row and its audit entry."""

    at: datetime
    identifier: str | None
    channel: str
    method: str
    indication: str
    sub_indication: str | None
    audit: Pending

    def row(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "identifier": self.identifier[:96] if self.identifier else None,
            "channel": self.channel[:32],
            "method": self.method[:16],
            "indication": self.indication,
            "sub_indication": self.sub_indication,
        }


class _Waiter:
    __slots__ = ("error", "handled", "items", "wake", "wrote")

    def __init__(self, items: list[Verification]) -> None:
        self.items = items
        self.wake = Event()
        self.handled = False
        self.wrote = False  # this caller's thread ran the transaction
        self.error: BaseException | None = None

    def raise_error(self) -> None:
        error = self.error
        if error is None:
            return
        if self.wrote:
            raise error
        if isinstance(error, ElicenceError):  # the same answer, raised in this thread
            raise type(error)(
                error.message,
                kind=error.kind,
                field=error.field,
                extra=error.extra,
                cause=error.cause,
            ) from error
        raise RuntimeError("recording the verification failed") from error


class Recorder:
    """Writes verifications — each its log row and its audit entry — with group commit.

    Every verification is audited, so every one is a write on the audit head, and the writes of
    a process queue there anyway. Here they queue in memory instead: the first caller writes
    its own record and everything queued behind it, up to ``batch``, in one transaction (two
    multi-row inserts and one advance of the head), then hands the next batch to the first
    caller still waiting. A caller returns only once its transaction has committed; when it
    fails, every caller in it gets the error, as each would have alone. One verification alone
    is written at once, in a transaction of its own.
    """

    def __init__(self, engine: Engine, audit: AuditLog, batch: int = 64) -> None:
        self._engine = ref(engine)  # weak: the registry below must not keep engines alive
        self._audit = audit
        self._batch = batch
        self._lock = Lock()
        self._queue: deque[_Waiter] = deque()
        self._writing = False

    def record(self, item: Verification) -> None:
        self.record_many([item])

    def record_many(self, items: list[Verification]) -> None:
        """``items`` in one transaction, with whatever else is queued (a batch of checks made
        together, ``verify.desk``); like :meth:`record`, returns once they have committed."""
        if not items:
            return
        me = _Waiter(items)
        with self._lock:
            self._queue.append(me)
            leads = not self._writing
            self._writing = True
        if not leads:
            me.wake.wait()
        if not me.handled:  # the writer now: first in, or handed the turn
            self._write_until(me)
        me.raise_error()

    def record_now(self, items: list[Verification]) -> bool:
        """``items`` in one transaction now, if that needs no wait: no other write of this
        recorder under way, the database's write lock free (SQLite's busy wait is off for the
        transaction) and no audit checkpoint due among them that would be signed outside this
        process (by a key service or a token: ``core.audit.AuditLog.append_many``). False:
        nothing was written; the caller records them with :meth:`record_many` where waiting
        does no harm. For an event loop (``verify.desk``), which must never wait on another
        writer."""
        if not items:
            return True
        with self._lock:
            if self._writing:
                return False
            self._writing = True
        try:
            return self._write(items, wait=False)
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].wake.set()  # queued meanwhile: it writes the next batch
                else:
                    self._writing = False

    def _write_until(self, me: _Waiter) -> None:
        while not me.handled:
            with self._lock:
                batch = [self._queue.popleft()]
                size = len(batch[0].items)
                while self._queue and size + len(self._queue[0].items) <= self._batch:
                    size += len(self._queue[0].items)
                    batch.append(self._queue.popleft())
            error: BaseException | None = None
            try:
                self._write([item for w in batch for item in w.items])
            except BaseException as exc:  # every caller in the batch gets it
                error = exc
            for waiter in batch:
                waiter.handled, waiter.error = True, error
                if waiter is me:
                    waiter.wrote = True
                else:
                    waiter.wake.set()
        with self._lock:
            if self._queue:
                self._queue[0].wake.set()  # not handled: it writes the next batch
            else:
                self._writing = False

    def _write(self, items: list[Verification], *, wait: bool = True) -> bool:
        """True once written; False (``wait`` off, SQLite only) when the write would have
        waited: for the database's write lock, or on a key service to sign an audit
        checkpoint."""
        rows = [item.row() for item in items]
        engine = self._engine()
        if engine is None:
            raise Unavailable("数据库暂不可用 / the database is unavailable", cause="engine closed")
        if not wait and engine.dialect.name != "sqlite":
            return False  # a network database: every write waits on it
        try:
            with _transaction(engine, wait=wait) as connection:
                self._write_in(connection, items, rows, wait)
        except (_Busy, CheckpointDue):
            return False  # rolled back: nothing of it stays
        return True

    def _write_in(
        self,
        connection: Connection,
        items: list[Verification],
        rows: list[dict[str, Any]],
        wait: bool,
    ) -> None:
        if sqlite_connection(connection) is not None:
            sqlite_writes.insert_rows(connection, _TABLE, _LOG_KEYS, rows)
            self._append(connection, items, may_wait=wait)
        elif psycopg_connection(connection) is None:
            connection.execute(_INSERT, rows[0] if len(rows) == 1 else rows)
            self._append(connection, items)
        elif not self._audit.append_quietly(
            connection,
            [item.audit for item in items],
            audit_pg.Rows(_TABLE, _LOG_KEYS, rows, wait_for_disk=WAIT_FOR_DISK),
        ):
            # PostgreSQL, when an observer may act on an entry, a checkpoint is due or
            # another writer came between: the log rows go out with COMMIT, one round trip
            # for both, after the entries (BEGIN with them, or with the head's advance).
            self._append(connection, items)
            commit_with(connection, _TABLE, _LOG_KEYS, rows, wait_for_disk=WAIT_FOR_DISK)
        # else: entries and log rows in one statement, committed (``core.audit``: quiet)

    def _append(
        self, connection: Connection, items: list[Verification], *, may_wait: bool = True
    ) -> None:
        # The ORM session joins the same transaction for the audit checkpoint only (every N
        # entries); otherwise it is never used, and costs nothing.
        with Session(bind=connection) as session:
            self._audit.append_many(
                session,
                [item.audit for item in items],
                connection=connection,
                may_wait=may_wait,
            )
            session.flush()


def quiet_write(
    engine: Engine, audit: AuditLog, items: list[Verification]
) -> audit_pg.QuietWrite | None:
    """``items``' log rows and audit entries as the one statement a quiet PostgreSQL write
    sends (:meth:`Recorder._write_in`), for a caller that sends it on a connection of its own
    (``verify.loop_desk``) and then tells ``audit.quietly_written``. None: not a quiet write
    (an observer may act on an entry, a checkpoint is due, or this process has not written the
    chain yet): :meth:`Recorder.record_many` writes them."""
    rows = [item.row() for item in items]
    also = audit_pg.Rows(_TABLE, _LOG_KEYS, rows, wait_for_disk=WAIT_FOR_DISK)
    return audit.quiet_write(engine, [item.audit for item in items], also)


def quiet_run(engine: Engine, audit: AuditLog, items: list[Verification]) -> tuple[int, bool]:
    """How many of ``items``, from the first, :func:`quiet_write` would take (``core.audit.
    AuditLog.quiet_run``)."""
    return audit.quiet_run(engine, [item.audit for item in items])


class _Busy(Exception):
    """SQLite's write lock is held by another connection, and this write does not wait."""


@contextmanager
def _no_busy_wait(connection: Connection, wait: bool) -> Iterator[None]:
    """SQLite's busy wait off for the block (``wait`` False), the connection's own after."""
    raw = sqlite_connection(connection)
    if wait or raw is None:
        yield
        return
    before = raw.execute("PRAGMA busy_timeout").fetchone()[0]
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(before)}")


def _busy(exc: OperationalError) -> bool:
    return str(getattr(exc.orig, "sqlite_errorname", "")).startswith("SQLITE_BUSY")


@contextmanager
def _transaction(engine: Engine, *, wait: bool = True) -> Iterator[Connection]:
    """:func:`core.db.transaction` as a plain connection (the recorder needs no ORM).

    On PostgreSQL the connection is in autocommit and the transaction opened by the audit
    append's first statement, in the same round trip (``core.audit``): psycopg would otherwise
    send BEGIN on its own. It ends with the log rows' COMMIT (:meth:`Recorder._write`), or the
    ROLLBACK psycopg sends when anything fails."""
    try:
        with engine.connect() as connection, _no_busy_wait(connection, wait):
            if psycopg_connection(connection) is not None:
                connection.execution_options(isolation_level="AUTOCOMMIT")
            with connection.begin():
                yield connection
    except OperationalError as exc:
        if not wait and _busy(exc):
            raise _Busy from exc
        raise Unavailable(
            "数据库暂不可用，请稍后重试 / the database is unavailable, please retry",
            cause=str(exc.orig),
        ) from exc


_RECORDERS: WeakKeyDictionary[Engine, dict[int, Recorder]] = WeakKeyDictionary()
_RECORDERS_LOCK = Lock()


def recorder(engine: Engine, audit: AuditLog) -> Recorder:
    """The one recorder of this engine and audit log in this process (forgotten with the
    engine)."""
    with _RECORDERS_LOCK:
        by_audit = _RECORDERS.setdefault(engine, {})
        found = by_audit.get(id(audit))
        if found is None or found._audit is not audit:
            found = by_audit[id(audit)] = Recorder(engine, audit)
        return found


def history(session: Session, identifier: str, limit: int = 100) -> list[VerificationLog]:
    """The newest verifications of one licence first."""
    rows = session.exec(
        select(VerificationLog)
        .where(VerificationLog.identifier == identifier)
        .order_by(col(VerificationLog.id).desc())
        .limit(max(1, min(limit, MAX_HISTORY)))
    ).all()
    for row in rows:
        row.at = as_utc(row.at)
    return list(rows)
