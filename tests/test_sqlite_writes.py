"""The audit chain's and the verification log's writes on SQLite go to sqlite3 itself
(``core.sqlite_writes``): the rows must be the ones SQLAlchemy wrote before, in the caller's
transaction, and a failure must leave nothing behind."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.audit import AuditEntry, AuditLog, Pending, entry_hash, verify_chain
from core.clock import FixedClock
from core.db import create_db_engine, transaction
from migrations.runner import upgrade
from verify.log import Recorder, Verification, VerificationLog

AT = datetime(2026, 12, 7, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'writes.db'}"
    upgrade(url)
    return create_db_engine(url)


def verification(n: int, outcome: str = "PASSED") -> Verification:
    return Verification(
        at=AT + timedelta(seconds=n),
        identifier=f"L{n}",
        channel="api-qr",
        method="qr-payload",
        indication=outcome,
        sub_indication=None if outcome == "PASSED" else "NOT_IN_REPOSITORY",
        audit=Pending(
            actor="public",
            action="licence.verify",
            object_type="licence",
            object_id=f"L{n}",
            outcome=outcome,
            detail={"channel": "api-qr", "名称": "核验 / verify", "n": n},
        ),
    )


def test_entries_and_log_rows_read_back_as_written(engine) -> None:  # type: ignore[no-untyped-def]
    audit = AuditLog(FixedClock(AT))
    Recorder(engine, audit).record_many([verification(1), verification(2, "FAILED")])
    with Session(engine) as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        rows = session.exec(select(VerificationLog).order_by(col(VerificationLog.id))).all()
        assert verify_chain(session).intact
    assert [e.seq for e in entries] == [1, 2]
    assert entries[1].detail == {"channel": "api-qr", "名称": "核验 / verify", "n": 2}
    assert entries[0].prev_hash == "0" * 64 and entries[1].prev_hash == entries[0].hash
    assert all(entry_hash(e) == e.hash for e in entries)
    assert [(r.identifier, r.indication, r.sub_indication) for r in rows] == [
        ("L1", "PASSED", None),
        ("L2", "FAILED", "NOT_IN_REPOSITORY"),
    ]
    # The stored text is SQLite's form of a date-time and the JSON serialiser's: what the ORM
    # writes, as a row it inserts shows.
    with transaction(engine) as session:
        session.add(
            VerificationLog(
                at=AT + timedelta(seconds=2), channel="cli", method="pdf", indication="PASSED"
            )
        )
    with engine.connect() as connection:
        by_orm = connection.execute(text("SELECT at FROM verification_log WHERE id = 3")).one()
        stored = connection.execute(text("SELECT at, detail FROM audit_entry WHERE seq = 1")).one()
        logged = connection.execute(text("SELECT at FROM verification_log WHERE id = 2")).one()
    assert stored[0] == "2026-12-07 03:04:05.678901"
    assert logged[0] == by_orm[0] == "2026-12-07 03:04:07.678901"  # L2: two seconds after AT
    assert json.loads(stored[1]) == {"channel": "api-qr", "名称": "核验 / verify", "n": 1}


def test_the_chain_continues_across_orm_and_driver_writes(engine) -> None:  # type: ignore[no-untyped-def]
    audit = AuditLog(FixedClock(AT))
    with transaction(engine) as session:
        audit.append(
            session, actor="clerk", action="licence.issue", object_type="licence", object_id="L0"
        )
    Recorder(engine, audit).record_many([verification(1)])
    with transaction(engine) as session:
        audit.append(
            session, actor="clerk", action="licence.revoke", object_type="licence", object_id="L0"
        )
    with Session(engine) as session:
        report = verify_chain(session)
        head = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc())).first()
    assert (report.intact, report.entries) == (True, 3)
    assert head is not None and head.action == "licence.revoke"


def test_a_refused_write_leaves_neither_rows_nor_a_moved_head(engine) -> None:  # type: ignore[no-untyped-def]
    audit = AuditLog(FixedClock(AT))
    recorder = Recorder(engine, audit)
    recorder.record_many([verification(1)])
    # An entry the table refuses, after the log rows are in and the head has moved: the whole
    # transaction goes, the head's advance with it.
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_entry"
                " WHEN NEW.object_id = 'L3' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    with pytest.raises(IntegrityError):
        recorder.record_many([verification(2), verification(3)])
    with Session(engine) as session:
        report = verify_chain(session)
        logged = session.exec(select(VerificationLog)).all()
    assert (report.intact, report.entries) == (True, 1)
    assert [row.identifier for row in logged] == ["L1"]
    recorder.record_many([verification(4)])  # and the chain goes on from where it was
    with Session(engine) as session:
        assert verify_chain(session).entries == 2
