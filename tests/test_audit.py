"""The audit chain catches an edit, a deletion, a reordering and a truncation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

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


# -- numbered checkpoints ------------------------------------------------------------------------


def numbered(tmp_path, every: int = 2):  # type: ignore[no-untyped-def]
    """Twelve entries with a checkpoint every ``every``: six numbered checkpoints."""
    from keys.audit import AuditCheckpointer
    from keys.soft import SoftKeyStore

    url = f"sqlite:///{tmp_path / 'numbered.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    clock = FixedClock(datetime(2026, 11, 24, tzinfo=UTC))
    checkpointer = AuditCheckpointer(SoftKeyStore(tmp_path / "keys", b"pw"), clock, every=every)
    checkpointer.ensure_key()
    log = AuditLog(clock, checkpointer=checkpointer)
    for i in range(12):
        with transaction(engine) as session:
            log.append(
                session, actor="test", action="thing.do", object_type="thing", object_id=str(i)
            )
    return engine, checkpointer


def test_checkpoints_are_numbered_without_gaps(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, checkpointer = numbered(tmp_path)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT number, seq FROM audit_checkpoint ORDER BY number"))
        assert [tuple(row) for row in rows] == [(1, 2), (2, 4), (3, 6), (4, 8), (5, 10), (6, 12)]
    with Session(engine) as session:
        report = checkpointer.check(session)
    assert (report.intact, report.checked) == (True, 6)


def test_a_deleted_middle_checkpoint_is_a_break(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, checkpointer = numbered(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_checkpoint WHERE number = 3"))
    with Session(engine) as session:
        report = checkpointer.check(session)
        assert checkpointer.verify(session) == (3, 8)
    assert (report.broken_number, report.broken_entry) == (3, 8)
    assert report.reason is not None and "checkpoint 3 is missing" in report.reason


def test_the_first_checkpoint_deleted_is_a_break(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, checkpointer = numbered(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_checkpoint WHERE number = 1"))
    with Session(engine) as session:
        report = checkpointer.check(session)
    assert report.broken_number == 1 and "checkpoint 1 is missing" in str(report.reason)


def test_renumbered_checkpoints_do_not_verify(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Closing the gap by renumbering: the number is under the audit key's signature."""
    engine, checkpointer = numbered(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_checkpoint WHERE number = 3"))
        for number in (4, 5, 6):
            conn.execute(
                text(f"UPDATE audit_checkpoint SET number = {number - 1} WHERE number = {number}")
            )
    with Session(engine) as session:
        report = checkpointer.check(session)
    assert (report.broken_number, report.broken_entry) == (3, 8)
    assert "signature of checkpoint 3 (entry 8) does not match" in str(report.reason)


def test_swapped_checkpoint_numbers_are_a_break(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, checkpointer = numbered(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_checkpoint SET number = 100 WHERE number = 2"))
        conn.execute(text("UPDATE audit_checkpoint SET number = 2 WHERE number = 3"))
        conn.execute(text("UPDATE audit_checkpoint SET number = 3 WHERE number = 100"))
    with Session(engine) as session:
        report = checkpointer.check(session)
    assert (report.broken_number, report.broken_entry) == (2, 6)
    assert "signature of checkpoint 2 (entry 6) does not match" in str(report.reason)


def test_checkpoints_without_their_key_are_a_break(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from keys.audit import AuditCheckpointer
    from keys.soft import SoftKeyStore

    engine, _ = numbered(tmp_path)
    keyless = AuditCheckpointer(
        SoftKeyStore(tmp_path / "other-keys", b"pw"), FixedClock(datetime(2026, 11, 24, tzinfo=UTC))
    )
    with Session(engine) as session:
        report = keyless.check(session)
    assert report.broken_number == 1 and "audit key" in str(report.reason)


def test_anchor_problem_names_truncation_rewrite_and_lost_checkpoint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from core.audit import AuditCheckpoint, anchor_problem

    engine, _ = numbered(tmp_path)
    with Session(engine) as session:
        anchored = session.exec(select(AuditCheckpoint).where(AuditCheckpoint.number == 4)).one()
        number, seq, head = anchored.number, anchored.seq, anchored.hash
        assert anchor_problem(session, number, seq, head) is None
        assert anchor_problem(session, number, seq, "f" * 64) == (
            "entry 8 was rewritten: its hash is not the anchored one"
        )
        assert anchor_problem(session, number, 99, head) == (
            "the chain no longer holds entry 99 (truncated)"
        )
        assert anchor_problem(session, 5, seq, head) == (
            "checkpoint 5 in the database is not the anchored one"
        )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_checkpoint WHERE number = 4"))
    with Session(engine) as session:
        assert anchor_problem(session, number, seq, head) == (
            "checkpoint 4 is no longer in the database"
        )


# -- migration 0011 ------------------------------------------------------------------------------


def test_0011_numbers_existing_checkpoints_which_still_verify(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A domain with checkpoints from before numbering: 0011 numbers them in entry order, they
    verify in their first (unnumbered) form, and the table matches the model."""
    import hashlib

    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from core.audit import checkpoint_message
    from keys.audit import AuditCheckpointer
    from keys.soft import SoftKeyStore
    from keys.store import HashAlgorithm, KeyRef
    from migrations.runner import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0006")
    engine = create_db_engine(url)
    clock = FixedClock(datetime(2026, 11, 24, tzinfo=UTC))
    log = AuditLog(clock)
    for i in range(4):
        with transaction(engine) as session:
            log.append(session, actor="test", action="a", object_type="t", object_id=str(i))
    store = SoftKeyStore(tmp_path / "keys", b"pw")
    checkpointer = AuditCheckpointer(store, clock, every=2)
    ref = checkpointer.ensure_key()
    with engine.begin() as conn:
        for seq in (4, 2):  # written out of order: numbering follows the entries
            head = conn.execute(text(f"SELECT hash FROM audit_entry WHERE seq = {seq}")).scalar()
            digest = hashlib.sha256(checkpoint_message(seq, head)).digest()
            conn.execute(
                text(
                    "INSERT INTO audit_checkpoint (seq, hash, at, key_ref, signature) "
                    "VALUES (:seq, :hash, :at, :ref, :sig)"
                ),
                {
                    "seq": seq,
                    "hash": head,
                    "at": "2026-11-24 00:00:00",
                    "ref": str(ref),
                    "sig": store.sign_digest(KeyRef.parse(str(ref)), digest, HashAlgorithm.SHA256),
                },
            )
    command.upgrade(alembic_config(url), "heads")
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT number, seq FROM audit_checkpoint ORDER BY number"))
        assert [tuple(row) for row in rows] == [(1, 2), (2, 4)]
    with Session(engine) as session:
        report = checkpointer.check(session)
    assert (report.intact, report.checked) == (True, 2)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert [d for d in diff if "audit_checkpoint" in repr(d)] == []
    # Their numbers are not under their signature, but the order of entries still is checked.
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_checkpoint SET number = 100 WHERE number = 1"))
        conn.execute(text("UPDATE audit_checkpoint SET number = 1 WHERE number = 2"))
        conn.execute(text("UPDATE audit_checkpoint SET number = 2 WHERE number = 100"))
    with Session(engine) as session:
        report = checkpointer.check(session)
    assert report.broken_number == 2 and "checkpoint 2 (entry 2) is out of order" in str(
        report.reason
    )
    engine.dispose()


def test_a_checkpoint_the_tsa_cannot_stamp_is_deferred_not_the_action(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A data directory initialised before the TSA existed reaches a checkpoint with no usable
    TSA certificate: the audited action stands, no checkpoint is written and no number is
    spent, so the next checkpoint is number 1 and the numbers have no gap."""
    from core.errors import Unavailable
    from keys.audit import AuditCheckpointer
    from keys.soft import SoftKeyStore

    class NoTsa:
        calls = 0

        def stamp(self, session, digest):  # type: ignore[no-untyped-def]
            NoTsa.calls += 1
            raise Unavailable("没有可用的时间戳证书 / no usable tsa certificate")

        def check(self, session, digest, token):  # type: ignore[no-untyped-def]
            return None

    url = f"sqlite:///{tmp_path / 'deferred.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    clock = FixedClock(datetime(2026, 11, 24, tzinfo=UTC))
    checkpointer = AuditCheckpointer(
        SoftKeyStore(tmp_path / "keys", b"pw"), clock, every=2, timestamps=NoTsa()
    )
    checkpointer.ensure_key()
    log = AuditLog(clock, checkpointer=checkpointer)

    def append(i: int) -> None:
        with transaction(engine) as session:
            log.append(session, actor="test", action="thing.do", object_type="thing", object_id=str(i))

    for i in range(4):
        append(i)
    assert NoTsa.calls == 2
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_entry")).scalar_one() == 4
        assert conn.execute(text("SELECT count(*) FROM audit_checkpoint")).scalar_one() == 0
    checkpointer.timestamps = None  # a domain whose checkpoints are not stamped
    for i in range(4, 6):
        append(i)
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT number, seq FROM audit_checkpoint"))
        assert [tuple(row) for row in rows] == [(1, 6)]
    assert check(engine) == (True, None)


def test_the_observers_say_before_an_entry_is_written_whether_they_act_on_it() -> None:
    """A batch no observer may act on is written without them (``AuditLog.append_quietly``):
    each observer's ``concerns`` must cover every entry it acts on. The outbox acts on the
    audited status changes that succeeded, the alert rules on all but a passed verification."""
    from core.audit import AuditEntry, Pending
    from supervision import events
    from supervision.alerts import AlertRules

    def entry(action: str, outcome: str) -> AuditEntry:
        return AuditEntry(
            seq=1, at=datetime(2026, 3, 14, tzinfo=UTC), actor="a", action=action,
            object_type="licence", object_id="L1", outcome=outcome, prev_hash="0" * 64,
            hash="0" * 64, detail={},
        )  # fmt: skip

    for action in events.KINDS:
        assert events.concerns(Pending("a", action, "licence", "L1", "ok"))
        assert not events.concerns(Pending("a", action, "licence", "L1", "refused"))
    for action, outcome in (("licence.verify", "PASSED"), ("licence.verify", "FAILED")):
        assert not events.concerns(Pending("a", action, "licence", "L1", outcome))
        assert events.licence_event(None, entry(action, outcome)) is None  # type: ignore[arg-type]
    passed = Pending("a", "licence.verify", "licence", "L1", "PASSED")
    assert not AlertRules.concerns(passed)
    for outcome in ("FAILED", "INDETERMINATE"):
        assert AlertRules.concerns(Pending("a", "licence.verify", "licence", "L1", outcome))
    for action in ("licence.issue", "seal.suspend", "seal.revoke", "licence.revoke"):
        assert AlertRules.concerns(Pending("a", action, "licence", "L1", "ok"))
