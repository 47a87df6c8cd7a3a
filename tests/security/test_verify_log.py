"""The verification log (``verify/log.py``): every verification leaves its row and its audit
entry in one transaction, written with group commit, and the holder reads them back newest first.

Group commit is driven deterministically: the first writer is held inside its transaction while
other callers queue, then released; the batches each transaction wrote are recorded."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, select

from core.audit import AuditEntry, AuditLog, Pending, verify_chain
from core.errors import ErrorKind, Forbidden, InvalidInput, Unavailable
from tests.security.support import NOW, clock, memory_engine
from verify import log
from verify.log import MAX_HISTORY, Recorder, Verification, VerificationLog, history, recorder


def item(n: int = 1, *, identifier: str | None = "L1", channel: str = "api-qr",
         method: str = "qr-payload", at: datetime = NOW) -> Verification:
    return Verification(
        at=at, identifier=identifier, channel=channel, method=method, indication="PASSED",
        sub_indication=None if n % 2 else "EXPIRED",
        audit=Pending(actor=f"a{n}", action="licence.verify", object_type="licence",
                      object_id=f"o{n}", outcome="PASSED", detail={"n": n}),
    )


def rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(
            "SELECT id, at, identifier, channel, method, indication, sub_indication "
            "FROM verification_log ORDER BY id"))]


def audit_entries(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all())  # type: ignore[arg-type]


def test_a_row_keeps_to_the_column_sizes() -> None:
    long = Verification(at=NOW, identifier="I" * 200, channel="c" * 40, method="m" * 20,
                        indication="FAILED", sub_indication="HASH_FAILURE",
                        audit=Pending("a", "b", "c", "d"))
    assert long.row() == {"at": NOW, "identifier": "I" * 96, "channel": "c" * 32,
                          "method": "m" * 16, "indication": "FAILED",
                          "sub_indication": "HASH_FAILURE"}
    assert item(identifier=None).row()["identifier"] is None
    assert item(identifier="").row()["identifier"] is None
    assert item(2).row() == {"at": NOW, "identifier": "L1", "channel": "api-qr",
                             "method": "qr-payload", "indication": "PASSED",
                             "sub_indication": "EXPIRED"}


def test_one_verification_writes_its_row_and_its_audit_entry() -> None:
    engine = memory_engine()
    Recorder(engine, AuditLog(clock())).record(item(1))
    assert rows(engine) == [(1, "2026-03-14 02:00:00.000000", "L1", "api-qr", "qr-payload",
                             "PASSED", None)]
    [entry] = audit_entries(engine)
    assert (entry.actor, entry.action, entry.object_type, entry.object_id, entry.outcome,
            entry.detail) == ("a1", "licence.verify", "licence", "o1", "PASSED", {"n": 1})
    with Session(engine) as session:
        assert verify_chain(session).intact


class HeldAudit(AuditLog):
    """An audit log whose first write waits to be released, and that records every batch."""

    def __init__(self, fail: BaseException | None = None, fail_on: int = 1) -> None:
        super().__init__(clock())
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: list[str] = []
        self.fail, self.fail_on = fail, fail_on

    def append_many(self, session: Session, pending: Sequence[Pending], *,
                    connection: Connection | None = None,
                    may_wait: bool = True) -> list[AuditEntry]:
        self.batches.append([p.object_id for p in pending])
        self.threads.append(threading.current_thread().name)
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail is not None and len(self.batches) == self.fail_on:
            raise self.fail
        return super().append_many(session, pending, connection=connection, may_wait=may_wait)


def run_queued(rec: Recorder, audit: HeldAudit, count: int) -> dict[str, BaseException | None]:
    """Item 1 is written first and held; items 2..count queue behind it; then it is released."""
    outcome: dict[str, BaseException | None] = {}

    def call(n: int) -> None:
        try:
            rec.record(item(n))
            outcome[f"o{n}"] = None
        except BaseException as exc:
            outcome[f"o{n}"] = exc

    first = threading.Thread(target=call, args=(1,), name="t1")
    first.start()
    assert audit.entered.wait(10)
    others = []
    for n in range(2, count + 1):
        thread = threading.Thread(target=call, args=(n,), name=f"t{n}")
        thread.start()
        others.append(thread)
        deadline = time.monotonic() + 10
        while len(rec._queue) < n - 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert len(rec._queue) == n - 1
    audit.release.set()
    for thread in (first, *others):
        thread.join(10)
        assert not thread.is_alive()
    return outcome


def test_callers_queued_behind_a_write_share_the_next_transactions() -> None:
    engine = memory_engine()
    audit = HeldAudit()
    rec = Recorder(engine, audit, batch=2)
    outcome = run_queued(rec, audit, 4)
    assert outcome == {"o1": None, "o2": None, "o3": None, "o4": None}
    # The first alone; then the queue in batches of two, in arrival order.
    assert audit.batches == [["o1"], ["o2", "o3"], ["o4"]]
    # The first caller wrote its own; the first waiter still queued wrote each later batch.
    assert audit.threads == ["t1", "t2", "t4"]
    assert [r[2:] for r in rows(engine)] == [
        ("L1", "api-qr", "qr-payload", "PASSED", None),
        ("L1", "api-qr", "qr-payload", "PASSED", "EXPIRED"),
        ("L1", "api-qr", "qr-payload", "PASSED", None),
        ("L1", "api-qr", "qr-payload", "PASSED", "EXPIRED"),
    ]
    assert [e.object_id for e in audit_entries(engine)] == ["o1", "o2", "o3", "o4"]
    # The recorder is idle again: the next caller writes at once, alone.
    rec.record(item(5))
    assert audit.batches[-1] == ["o5"] and audit.threads[-1] == threading.current_thread().name


def test_the_default_batch_takes_the_whole_queue() -> None:
    engine = memory_engine()
    audit = HeldAudit()
    outcome = run_queued(Recorder(engine, audit), audit, 5)
    assert set(outcome.values()) == {None}
    assert audit.batches == [["o1"], ["o2", "o3", "o4", "o5"]]


def test_a_failed_transaction_fails_every_caller_in_it_and_leaves_nothing() -> None:
    engine = memory_engine()
    # A kind other than its class's: the copy keeps the error's own.
    refused = Forbidden("拒绝 / refused", kind=ErrorKind.CONFLICT, field="f", extra={"k": 1},
                        cause="c")
    audit = HeldAudit(fail=refused, fail_on=2)
    outcome = run_queued(Recorder(engine, audit, batch=2), audit, 4)
    assert outcome["o1"] is None and outcome["o4"] is None
    # The writer of the failed batch raises the error itself ...
    assert outcome["o2"] is refused
    # ... every other caller in it gets the same answer, raised in its own thread.
    again = outcome["o3"]
    assert type(again) is Forbidden and again is not refused
    assert isinstance(again, Forbidden)
    assert (again.message, again.kind, again.field, again.extra, again.cause) == (
        "拒绝 / refused", ErrorKind.CONFLICT, "f", {"k": 1}, "c")
    assert again.__cause__ is refused
    assert [r[6] for r in rows(engine)] == [None, "EXPIRED"]  # items 1 and 4
    assert [e.object_id for e in audit_entries(engine)] == ["o1", "o4"]


def test_an_unexpected_error_reaches_the_other_callers_as_a_failed_recording() -> None:
    engine = memory_engine()
    broken = KeyError("boom")
    audit = HeldAudit(fail=broken, fail_on=2)
    outcome = run_queued(Recorder(engine, audit, batch=8), audit, 3)
    assert outcome["o2"] is broken
    other = outcome["o3"]
    assert type(other) is RuntimeError
    assert str(other) == "recording the verification failed"
    assert other.__cause__ is broken
    assert [r[0] for r in rows(engine)] == [1]


def test_a_lone_failure_is_raised_as_it_is() -> None:
    engine = memory_engine()
    refused = InvalidInput("坏 / bad")
    audit = HeldAudit(fail=refused, fail_on=1)
    audit.release.set()
    with pytest.raises(InvalidInput) as raised:
        Recorder(engine, audit).record(item(1))
    assert raised.value is refused
    assert rows(engine) == []
    audit.fail = None
    Recorder(engine, audit).record(item(2))  # the recorder is not left busy
    assert [r[0] for r in rows(engine)] == [1]


def test_an_audit_checkpoint_reads_the_same_transaction() -> None:
    engine = memory_engine()
    seen: list[tuple[int, int]] = []

    def checkpointer(session: Session, entry: AuditEntry) -> None:
        logged = session.exec(select(VerificationLog)).all()
        seen.append((entry.seq, len(logged)))

    Recorder(engine, AuditLog(clock(), checkpointer)).record(item(1))
    assert seen == [(1, 1)]


def test_a_database_that_cannot_write_is_unavailable() -> None:
    engine = create_engine("sqlite://", connect_args={"check_same_thread": False},
                           poolclass=StaticPool)  # no tables
    with pytest.raises(Unavailable) as raised:
        Recorder(engine, AuditLog(clock())).record(item())
    assert raised.value.message == "数据库暂不可用，请稍后重试 / the database is unavailable, please retry"
    assert raised.value.cause == "no such table: verification_log"


def test_a_closed_engine_is_unavailable() -> None:
    engine = memory_engine()
    rec = Recorder(engine, AuditLog(clock()))
    del engine
    gc.collect()
    with pytest.raises(Unavailable) as raised:
        rec.record(item())
    assert raised.value.message == "数据库暂不可用 / the database is unavailable"
    assert raised.value.cause == "engine closed"


def test_one_recorder_per_engine_and_audit_log() -> None:
    engine, other_engine = memory_engine(), memory_engine()
    audit, other_audit = AuditLog(clock()), AuditLog(clock())
    first = recorder(engine, audit)
    assert recorder(engine, audit) is first
    assert first._audit is audit and first._engine() is engine
    assert first._batch == 64
    assert recorder(engine, other_audit) is not first
    assert recorder(engine, other_audit) is recorder(engine, other_audit)
    assert recorder(other_engine, audit) is not first
    # A recorder kept under an id that now names another audit log is not reused.
    log._RECORDERS[engine][id(other_audit)] = first
    fresh = recorder(engine, other_audit)
    assert fresh is not first and fresh._audit is other_audit


def test_history_is_one_licences_newest_first() -> None:
    engine = memory_engine()
    rec = Recorder(engine, AuditLog(clock()))
    for n in range(1, 5):
        rec.record(item(n, identifier="L1" if n != 3 else "L2",
                        at=NOW + timedelta(minutes=n)))
    with Session(engine) as session:
        found = history(session, "L1")
    assert [(r.id, r.identifier, r.at) for r in found] == [
        (4, "L1", NOW + timedelta(minutes=4)),
        (2, "L1", NOW + timedelta(minutes=2)),
        (1, "L1", NOW + timedelta(minutes=1)),
    ]
    assert all(r.at.tzinfo is UTC for r in found)
    with Session(engine) as session:
        assert [r.id for r in history(session, "L1", limit=2)] == [4, 2]
        assert [r.id for r in history(session, "L1", limit=0)] == [4]
        assert [r.id for r in history(session, "L1", limit=-5)] == [4]
        assert history(session, "L9") == []


def test_history_reads_at_most_the_maximum() -> None:
    engine = memory_engine()
    with engine.begin() as connection:
        connection.execute(VerificationLog.__table__.insert(), [  # type: ignore[attr-defined]
            {"at": NOW, "identifier": "L1", "channel": "cli", "method": "pdf",
             "indication": "PASSED"} for _ in range(MAX_HISTORY + 2)])
    with Session(engine) as session:
        assert len(history(session, "L1", limit=10_000)) == MAX_HISTORY == 500
        assert len(history(session, "L1")) == 100
        assert len(history(session, "L1", limit=MAX_HISTORY + 1)) == 500


def test_channels_and_methods_are_named_in_both_languages() -> None:
    assert log.CHANNELS["qr-page"] == "手机扫码打开核验页 / phone scan of the QR code"
    assert log.METHODS["presentation"] == "出示码 / presentation QR"
