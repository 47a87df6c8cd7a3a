"""The audit chain (core/audit.py) and the audit of key uses (keys/audit.py), on an in-memory
database: what an entry holds, how it links, and every way of breaking the chain that
``verify_chain`` must name — an edited entry, a relinked one whose hash was recomputed, a gap,
a truncated tail."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from core.audit import GENESIS, AuditEntry, AuditHead, AuditLog, Pending, entry_hash, verify_chain
from core.clock import FixedClock
from keys.audit import AuditedKeyUse, KeyUseRecorder
from keys.store import KeyRef
from tests.security.support import NOW, memory_engine


def expected_hash(seq: int, prev: str, actor: str, action: str, object_id: str,
                  detail: dict[str, Any], at: str = "2026-03-14T02:00:00+00:00",
                  outcome: str = "ok", request_id: str | None = None,
                  object_type: str = "licence") -> str:
    """The entry hash as documented: SHA-256 of these keys as sorted, compact JSON."""
    body = {"seq": seq, "at": at, "actor": actor, "action": action, "object_type": object_type,
            "object_id": object_id, "outcome": outcome, "detail": detail,
            "request_id": request_id, "prev_hash": prev}
    text_ = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text_.encode()).hexdigest()


def chain(entries: int = 3) -> Any:
    engine = memory_engine()
    log = AuditLog(FixedClock(NOW))
    with Session(engine) as session:
        for i in range(1, entries + 1):
            log.append(session, actor=f"a{i}", action="licence.issue", object_type="licence",
                       object_id=f"L{i}", detail={"n": i, "名": "值"})
        session.commit()
    return engine


def rows(engine: Any) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))))


def test_entries_link_from_genesis_and_hash_their_content() -> None:
    engine = chain(3)
    written = rows(engine)
    prev = GENESIS
    for i, entry in enumerate(written, start=1):
        assert (entry.seq, entry.actor, entry.action, entry.object_id, entry.outcome,
                entry.request_id, entry.prev_hash) == (i, f"a{i}", "licence.issue", f"L{i}", "ok",
                                                       None, prev)
        assert entry.hash == expected_hash(i, prev, f"a{i}", "licence.issue", f"L{i}",
                                           {"n": i, "名": "值"}) == entry_hash(entry)
        prev = entry.hash
    with Session(engine) as session:
        head = session.get(AuditHead, 1)
        assert head is not None and (head.seq, head.hash) == (3, prev)
        report = verify_chain(session)
    assert (report.intact, report.entries, report.first_broken, report.reason) == (True, 3, None, None)


def test_append_many_writes_in_order_and_returns_the_entries_as_written() -> None:
    engine = memory_engine()
    log = AuditLog(FixedClock(NOW))
    with Session(engine) as session:
        assert log.append_many(session, []) == []
        one = log.append(session, actor="x", action="a", object_type="t", object_id="1",
                         outcome="refused", detail=None, request_id="r0")
        many = log.append_many(session, [Pending("y", "b", "t", "2", detail={"k": 1}, request_id="r1"),
                                         Pending("z", "c", "t", "3", outcome="failed")])
        session.commit()
    assert [(e.seq, e.actor, e.outcome, e.detail, e.request_id) for e in [one, *many]] == [
        (1, "x", "refused", {}, "r0"), (2, "y", "ok", {"k": 1}, "r1"), (3, "z", "failed", {}, None)]
    assert [e.hash for e in rows(engine)] == [e.hash for e in [one, *many]]
    assert many[0].prev_hash == one.hash and many[1].prev_hash == many[0].hash
    assert many[1].hash == expected_hash(3, many[0].hash, "z", "c", "3", {}, outcome="failed",
                                         object_type="t")
    assert one.at == NOW
    with Session(engine) as session:
        assert verify_chain(session).intact


def test_appends_flush_the_callers_pending_work_first() -> None:
    engine = memory_engine()
    log = AuditLog(FixedClock(NOW))
    seen: list[int] = []
    with Session(engine) as session:
        log.checkpointer = lambda s, entry: seen.append(entry.seq)
        log.append_many(session, [Pending("a", "b", "t", str(i)) for i in range(3)])
        session.commit()
    assert seen == [1, 2, 3]


def tamper(engine: Any, sql: str, **params: Any) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql), params)


def report_of(engine: Any) -> tuple[bool, int, int | None, str | None]:
    with Session(engine) as session:
        r = verify_chain(session)
    return r.intact, r.entries, r.first_broken, r.reason


def test_an_edited_entry_is_found() -> None:
    engine = chain(3)
    tamper(engine, "UPDATE audit_entry SET actor = 'mallory' WHERE seq = 2")
    assert report_of(engine) == (False, 2, 2, "its content was changed")


def test_an_entry_relinked_with_its_hash_recomputed_is_found() -> None:
    """The attacker rewrites entry 2 to link elsewhere and recomputes its hash: the content check
    passes, only the link to entry 1 fails."""
    engine = chain(3)
    fake_prev = "f" * 64
    entry = rows(engine)[1]
    new_hash = expected_hash(2, fake_prev, "a2", "licence.issue", "L2", {"n": 2, "名": "值"})
    tamper(engine, "UPDATE audit_entry SET prev_hash = :p, hash = :h WHERE seq = 2",
           p=fake_prev, h=new_hash)
    assert entry.hash != new_hash
    assert report_of(engine) == (False, 2, 2, "does not link to the entry before it")


def test_a_first_entry_not_linked_to_genesis_is_found() -> None:
    engine = chain(1)
    new_hash = expected_hash(1, "1" * 64, "a1", "licence.issue", "L1", {"n": 1, "名": "值"})
    tamper(engine, "UPDATE audit_entry SET prev_hash = :p, hash = :h WHERE seq = 1",
           p="1" * 64, h=new_hash)
    tamper(engine, "UPDATE audit_head SET hash = :h", h=new_hash)
    assert report_of(engine) == (False, 1, 1, "does not link to the entry before it")


def test_a_missing_entry_is_found() -> None:
    engine = chain(3)
    tamper(engine, "DELETE FROM audit_entry WHERE seq = 2")
    assert report_of(engine) == (False, 2, 2, "entry 2 is missing")
    engine = chain(2)
    tamper(engine, "DELETE FROM audit_entry WHERE seq = 1")
    assert report_of(engine) == (False, 1, 1, "entry 1 is missing")


@pytest.mark.parametrize("sql", [
    "DELETE FROM audit_entry WHERE seq = 3",  # the tail removed, the head left
    "UPDATE audit_head SET seq = 4",  # the head counts an entry that is not there
    "UPDATE audit_head SET hash = '" + "e" * 64 + "'",  # the head names another last entry
])
def test_a_truncated_chain_is_found(sql: str) -> None:
    engine = chain(3)
    tamper(engine, sql)
    intact, entries, first_broken, reason = report_of(engine)
    assert (intact, first_broken, reason) == (False, entries + 1, "entries after this point were removed")


def test_an_empty_chain_is_intact_and_a_headless_one_is_not() -> None:
    engine = memory_engine()
    assert report_of(engine) == (True, 0, None, None)
    engine = chain(1)
    tamper(engine, "DELETE FROM audit_head")
    assert report_of(engine) == (False, 1, 2, "entries after this point were removed")


def test_entries_are_stamped_with_the_clock() -> None:
    clock = FixedClock(NOW)
    engine = memory_engine()
    log = AuditLog(clock)
    with Session(engine) as session:
        log.append(session, actor="a", action="b", object_type="c", object_id="d")
        clock.advance(timedelta(seconds=90))
        later = log.append(session, actor="a", action="b", object_type="c", object_id="e")
        session.commit()
    assert later.at == NOW + timedelta(seconds=90)
    assert later.hash == expected_hash(2, rows(engine)[0].hash, "a", "b", "e", {},
                                       at="2026-03-14T02:01:30+00:00", object_type="c")


# --- key uses ----------------------------------------------------------------------------------

def key_rows(engine: Any) -> list[tuple[str, str, str, str, dict[str, Any], str | None]]:
    return [(e.actor, e.action, e.object_type, e.object_id, e.detail, e.request_id)
            for e in rows(engine)]


def test_every_key_use_is_audited_in_the_callers_transaction() -> None:
    engine = memory_engine()
    log = AuditLog(FixedClock(NOW))
    ref = KeyRef("soft", "seal-A", 3)
    with Session(engine) as session:
        AuditedKeyUse(log, session, "department:X", "req-9").key_used(ref, "seal")
        session.rollback()  # the work failed: its key use is not recorded either
    assert rows(engine) == []
    with Session(engine) as session:
        AuditedKeyUse(log, session, "department:X", "req-9").key_used(ref, "seal")
        AuditedKeyUse(log, session, "operator").key_used(KeyRef("soft", "tsa", 1), "timestamp")
        session.commit()
    assert key_rows(engine) == [
        ("department:X", "key.sign", "key", "soft:seal-A:v3", {"purpose": "seal", "version": 3}, "req-9"),
        ("operator", "key.sign", "key", "soft:tsa:v1", {"purpose": "timestamp", "version": 1}, None),
    ]


def test_key_uses_made_outside_a_transaction_are_written_with_the_record() -> None:
    engine = memory_engine()
    log = AuditLog(FixedClock(NOW))
    recorder = KeyUseRecorder()
    recorder.key_used(KeyRef("soft", "seal-A", 1), "seal")
    recorder.key_used(KeyRef("soft", "tsa", 2), "timestamp")
    assert recorder.uses == [(KeyRef("soft", "seal-A", 1), "seal"), (KeyRef("soft", "tsa", 2), "timestamp")]
    with Session(engine) as session:
        recorder.flush(log, session, "department:X", "req-1")
        session.commit()
    assert recorder.uses == []
    assert key_rows(engine) == [
        ("department:X", "key.sign", "key", "soft:seal-A:v1", {"purpose": "seal", "version": 1}, "req-1"),
        ("department:X", "key.sign", "key", "soft:tsa:v2", {"purpose": "timestamp", "version": 2}, "req-1"),
    ]
    with Session(engine) as session:
        recorder.flush(log, session, "department:X")  # nothing left: nothing written
        session.commit()
    assert len(rows(engine)) == 2


def test_entries_are_walked_in_sequence_order_whatever_order_the_database_returns() -> None:
    """SQLite returns an unordered SELECT in rowid order, which is ``seq``; PostgreSQL promises
    no order at all. With SQLite asked to return unordered rows backwards, only an explicit
    ``ORDER BY seq`` still finds the chain intact."""
    engine = chain(3)
    tamper(engine, "PRAGMA reverse_unordered_selects = ON")
    with Session(engine) as session:
        unordered = [e.seq for e in session.exec(select(AuditEntry))]
    assert unordered == [3, 2, 1]  # the pragma holds on this (single) connection
    assert report_of(engine) == (True, 3, None, None)
