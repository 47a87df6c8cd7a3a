"""The audit chain catches an edit, a deletion, a reordering and a truncation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import Session

from core.audit import AuditLog, verify_chain
from core.clock import FixedClock
from core.db import create_db_engine, transaction
from migrations.runner import upgrade


@pytest.fixture
def engine(tmp_path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    log = AuditLog(FixedClock(datetime(2026, 11, 24, tzinfo=UTC)))
    for i in range(6):
        with transaction(engine) as session:
            log.append(
                session, actor="test", action="thing.do", object_type="thing", object_id=str(i)
            )
    return engine


def check(engine) -> tuple[bool, int | None]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        report = verify_chain(session)
    return report.intact, report.first_broken


def test_intact_chain(engine) -> None:  # type: ignore[no-untyped-def]
    assert check(engine) == (True, None)


def test_edit_is_caught(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET object_id = 'x' WHERE seq = 4"))
    assert check(engine) == (False, 4)


def test_deletion_is_caught(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE seq = 2"))
    assert check(engine) == (False, 2)


def test_truncation_is_caught(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE seq = 6"))
    assert check(engine) == (False, 6)


def test_reordering_is_caught(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET seq = 100 WHERE seq = 3"))
        conn.execute(text("UPDATE audit_entry SET seq = 3 WHERE seq = 5"))
        conn.execute(text("UPDATE audit_entry SET seq = 5 WHERE seq = 100"))
    intact, first = check(engine)
    assert not intact and first == 3


def test_signed_checkpoints_catch_a_chain_rewritten_whole(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import col, select

    from core.audit import AuditEntry, entry_hash
    from keys.audit import AuditCheckpointer
    from keys.soft import SoftKeyStore

    url = f"sqlite:///{tmp_path / 'cp.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    clock = FixedClock(datetime(2026, 11, 24, tzinfo=UTC))
    checkpointer = AuditCheckpointer(SoftKeyStore(tmp_path / "keys", b"pw"), clock, every=2)
    checkpointer.ensure_key()
    log = AuditLog(clock, checkpointer=checkpointer)
    for i in range(6):
        with transaction(engine) as session:
            log.append(
                session, actor="test", action="thing.do", object_type="thing", object_id=str(i)
            )
    with Session(engine) as session:
        assert checkpointer.verify(session) == (3, None)
    # Rewrite entry 3 and recompute every later hash: the chain itself looks intact again.
    with Session(engine) as session, session.begin():
        entries = list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))))
        entries[2].object_id = "rewritten"
        previous = entries[1].hash
        for entry in entries[2:]:
            entry.prev_hash = previous
            entry.hash = entry_hash(entry)
            previous = entry.hash
            session.add(entry)
        from core.audit import AuditHead

        head = session.get(AuditHead, 1)
        assert head is not None
        head.hash = previous
        session.add(head)
    assert check(engine) == (True, None)
    with Session(engine) as session:
        checked, broken = checkpointer.verify(session)
    assert (checked, broken) == (2, 4)
