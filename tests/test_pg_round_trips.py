"""PostgreSQL round trips of a verification (``core/pgpool.py``, ``core/pipeline.py``, the
pipelined writes of ``core/audit.py`` and ``verify/log.py``, the read of ``verify/code.py``):
fewer trips, the same guarantees.

What a faster path could lose, tried here on a real server: a connection the server dropped
must not fail a request (no ping on every checkout any more); a photo swapped or deleted in the
database must still fail the QR check now that PostgreSQL hashes it; a group commit whose last
statement fails, or whose connection dies between its statements, must leave nothing — no audit
entry without its log row — and say so as the product's errors; the chain stays intact under
concurrent writers; and the read's statement must stay prepared (it is only if no ROLLBACK
follows each read).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, create_engine, select

from core import audit_pg
from core.audit import AuditEntry, AuditLog, Pending, verify_chain
from core.clock import SystemClock
from core.errors import Unavailable
from core.pgpool import check_on_checkout, postgres_engine
from tests.conftest import fresh_schema, make_settings, postgres_admin
from tests.domain import Domain, build_domain
from tests.layout_support import define, encoded, face, issue
from verify.log import Recorder, Verification, VerificationLog

pytestmark = pytest.mark.postgres


def _terminate(pid: int) -> None:
    with psycopg.connect(postgres_admin(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _backend(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


class Pings:
    """Counts the dialect's pings of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        real = engine.dialect.do_ping

        def counted(connection: Any) -> bool:
            self.count += 1
            return bool(real(connection))

        engine.dialect.do_ping = counted  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def schema_url(postgres_url: str) -> str:
    return fresh_schema(postgres_url, "t_round_trips")


@pytest.fixture
def engine(schema_url: str) -> Iterator[Engine]:
    engine = postgres_engine(schema_url)
    SQLModel.metadata.create_all(engine, tables=[AuditEntry.__table__, VerificationLog.__table__])  # type: ignore[attr-defined]
    from core.audit import AuditHead

    SQLModel.metadata.create_all(engine, tables=[AuditHead.__table__])  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entry"))
        connection.execute(text("DELETE FROM audit_head"))
        connection.execute(text("DELETE FROM verification_log"))
    yield engine
    engine.dispose()


# -- the pool -------------------------------------------------------------------------------


def test_a_connection_in_use_is_not_pinged_but_one_the_server_ended_is_replaced(
    engine: Engine,
) -> None:
    pings = Pings(engine)
    first = _backend(engine)
    for _ in range(5):
        assert _backend(engine) == first  # the same pooled connection, hot
    assert pings.count == 0
    _terminate(first)  # a restart, an idle timeout, an operator: the server drops it
    time.sleep(0.2)
    replacement = _backend(engine)  # no request fails on the dead connection
    assert replacement != first
    assert pings.count == 1  # its socket said so: it alone was checked


def test_a_connection_idle_past_the_limit_is_pinged_before_use(schema_url: str) -> None:
    engine = create_engine(schema_url, pool_pre_ping=False)
    check_on_checkout(engine, idle_seconds=0.0)  # no idle allowance: every reuse is checked
    pings = Pings(engine)
    try:
        _backend(engine)
        time.sleep(0.01)
        _backend(engine)
        assert pings.count >= 1
    finally:
        engine.dispose()


def test_a_kept_cursor_serves_one_connection_and_one_format(schema_url: str) -> None:
    from core.roundtrips import kept_cursor

    url = schema_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as first, psycopg.connect(url) as second:
        kept = kept_cursor(first)
        assert kept_cursor(first) is kept  # the next statement of this connection reuses it
        assert kept_cursor(first, binary=True) is not kept  # the binary one is its own
        assert kept_cursor(second) is not kept
        assert kept.execute("SELECT 1").fetchone() == (1,)
        assert kept_cursor(first).execute("SELECT 2").fetchone() == (2,)  # no stale result
        kept.close()
        assert kept_cursor(first) is not kept  # a closed one is replaced


# -- the pipelined group commit -------------------------------------------------------------


def _item(n: int, indication: str = "PASSED") -> Verification:
    return Verification(
        at=datetime(2026, 3, 14, 2, 0, tzinfo=UTC),
        identifier=f"L{n}",
        channel="api-qr",
        method="qr-payload",
        indication=indication,
        sub_indication=None,
        audit=Pending("bench", "licence.verify", "licence", f"L{n}", "PASSED", {"n": n}),
    )


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        entries = connection.execute(text("SELECT count(*) FROM audit_entry")).scalar_one()
        logged = connection.execute(text("SELECT count(*) FROM verification_log")).scalar_one()
    return int(entries), int(logged)


def _at_once(work: Callable[[int], None], bases: Sequence[int]) -> list[BaseException]:
    """``work(base)`` on a thread of its own for each base, all at once; what they raised."""
    failures: list[BaseException] = []

    def run(base: int) -> None:
        try:
            work(base)
        except BaseException as exc:  # reported to the caller
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(base,)) for base in bases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return failures


def test_concurrent_verifications_each_leave_a_log_row_and_an_entry_on_an_intact_chain(
    engine: Engine,
) -> None:
    recorder = Recorder(engine, AuditLog(SystemClock()))

    def worker(base: int) -> None:
        for n in range(base, base + 15):
            recorder.record(_item(n))

    assert _at_once(worker, [k * 100 for k in range(8)]) == []
    assert _counts(engine) == (120, 120)
    with Session(engine) as session:
        report = verify_chain(session)
        assert report.intact and report.entries == 120, report
        details = session.exec(text("SELECT object_id, detail FROM audit_entry")).all()  # type: ignore[call-overload]
        logged = {r[0] for r in session.exec(text("SELECT identifier FROM verification_log"))}  # type: ignore[call-overload]
    # each entry carries its own verification's detail, and each has its log row
    assert all(detail == {"n": int(obj[1:])} for obj, detail in details)
    assert logged == {obj for obj, _ in details}


def test_a_log_row_the_server_refuses_leaves_no_audit_entry_either(engine: Engine) -> None:
    """The log rows go out last, with COMMIT: a refusal there must undo the entries and the
    head's advance written before it, and reach the caller as SQLAlchemy's error."""
    recorder = Recorder(engine, AuditLog(SystemClock()))
    recorder.record(_item(1))
    with pytest.raises(DBAPIError) as raised:
        recorder.record(_item(2, indication="X" * 40))  # longer than the column allows
    assert isinstance(raised.value.orig, psycopg.errors.StringDataRightTruncation)
    assert _counts(engine) == (1, 1)
    recorder.record(_item(3))  # the connection is usable again, the chain continues
    with Session(engine) as session:
        report = verify_chain(session)
    assert report.intact and report.entries == 2


def test_a_connection_lost_between_the_statements_is_unavailable_and_writes_nothing(
    engine: Engine,
) -> None:
    audit = AuditLog(SystemClock())
    killed: list[int] = []

    def kill_own_backend(session: Session, _entry: AuditEntry) -> None:
        # between the entries and the log rows with COMMIT: the server goes away
        if not killed:
            pid = int(session.connection().execute(text("SELECT pg_backend_pid()")).scalar_one())
            killed.append(pid)
            _terminate(pid)

    audit.observe(kill_own_backend)
    recorder = Recorder(engine, audit)
    with pytest.raises(Unavailable):
        recorder.record(_item(1))
    assert killed and _counts(engine) == (0, 0)
    recorder.record(_item(2))  # a fresh connection, the chain starts cleanly
    assert _counts(engine) == (1, 1)
    with Session(engine) as session:
        assert verify_chain(session).intact


# -- the remembered head (core/audit_pg.py) ---------------------------------------------------


class Spy:
    """Counts the calls of a module's function and lets each through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
        self.count = 0
        real = getattr(module, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)


def _append(engine: Engine, audit: AuditLog, n: int) -> None:
    with Session(engine) as session:
        audit.append_many(session, [Pending("w", "licence.verify", "licence", f"L{n}", "ok")])
        session.commit()


def _chain(engine: Engine) -> tuple[bool, int, list[int]]:
    with Session(engine) as session:
        report = verify_chain(session)
        seqs = list(session.exec(text("SELECT seq FROM audit_entry ORDER BY seq")).scalars())  # type: ignore[call-overload]
    return report.intact, report.entries, seqs


def test_a_lone_writer_appends_after_the_head_it_left_in_one_trip(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    advances = Spy(monkeypatch, audit_pg, "advance")  # the plain appends
    audit = AuditLog(SystemClock())
    recorder = Recorder(engine, audit)
    for n in range(5):
        recorder.record(_item(n))
    _append(engine, audit, 5)  # an ORM transaction of its own: the same chain, the same guess
    # the first append reads the head; every later one writes after the head it left
    assert advances.count == 1
    assert _chain(engine) == (True, 6, [1, 2, 3, 4, 5, 6])


def test_the_one_trip_append_outlives_a_rollback_that_deallocates_every_statement(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pooled connection also serves other work, and psycopg answers a ROLLBACK there
    with DEALLOCATE ALL: the append's prepared statement must come back, not fail."""
    advances = Spy(monkeypatch, audit_pg, "advance")  # the plain appends
    recorder = Recorder(engine, AuditLog(SystemClock()))
    for n in range(8):
        recorder.record(_item(n))
        with Session(engine) as session:  # the same connection: nothing else is checked out
            raw: Any = session.connection().connection.driver_connection
            raw.execute("SELECT count(*) FROM audit_entry", prepare=True)  # as a hot read is
            session.rollback()  # psycopg: ROLLBACK, then DEALLOCATE ALL
    assert advances.count == 1
    assert _chain(engine) == (True, 8, list(range(1, 9)))


def test_a_second_writer_between_two_appends_is_found_and_the_chain_holds(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers on one chain, taking turns: each one's remembered head is stale at every
    turn. Written from the guess, the entries would repeat numbers the other worker used and
    hash after an entry that is no longer the last."""
    advances = Spy(monkeypatch, audit_pg, "advance")  # the plain appends
    first, second = AuditLog(SystemClock()), AuditLog(SystemClock())
    for n in range(6):
        _append(engine, first if n % 2 == 0 else second, n)
    assert advances.count == 6  # every guess was refused, every append then read the head
    assert _chain(engine) == (True, 6, [1, 2, 3, 4, 5, 6])
    with Session(engine) as session:
        query = text("SELECT object_id FROM audit_entry ORDER BY seq")
        objects = list(session.exec(query).scalars())  # type: ignore[call-overload]
    assert objects == [f"L{n}" for n in range(6)]


def test_a_rolled_back_append_leaves_a_guess_the_database_refuses(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guess is kept before the transaction ends; a rollback makes it a head that never
    was. The next append must not chain after the entries that were undone."""
    audit = AuditLog(SystemClock())
    _append(engine, audit, 1)
    with Session(engine) as session:
        audit.append_many(session, [Pending("w", "licence.verify", "licence", "undone", "ok")])
        session.rollback()
    advances = Spy(monkeypatch, audit_pg, "advance")  # the plain appends
    _append(engine, audit, 2)
    assert advances.count == 1
    assert _chain(engine) == (True, 2, [1, 2])


def test_writers_that_find_no_chain_yet_start_one_together(engine: Engine) -> None:
    """The first entries ever create the head row. On PostgreSQL an UPDATE of a row that is
    not there locks nothing, so writers arriving together at an empty chain must not each try
    to create it (one would fail on its key), nor start two chains."""
    for attempt in range(3):
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM audit_entry"))
            connection.execute(text("DELETE FROM audit_head"))
        start = threading.Barrier(4)

        def worker(base: int) -> None:
            audit = AuditLog(SystemClock())
            start.wait(10)
            _append(engine, audit, base)

        assert _at_once(worker, [attempt * 10 + k for k in range(4)]) == []
        assert _chain(engine) == (True, 4, [1, 2, 3, 4])


def test_concurrent_writers_on_one_chain_from_their_own_guesses(engine: Engine) -> None:
    """Four writers of their own (four workers), each remembering its own head, appending at
    once: the database's check under the head's lock orders them."""
    _append(engine, AuditLog(SystemClock()), 0)  # the head row exists, as after `elicence init`

    def worker(base: int) -> None:
        audit = AuditLog(SystemClock())
        for n in range(base, base + 12):
            _append(engine, audit, n)

    assert _at_once(worker, [k * 100 for k in range(4)]) == []
    intact, entries, seqs = _chain(engine)
    assert intact and entries == 49 and seqs == list(range(1, 50))


# -- a quiet batch in one statement (core/audit.py append_quietly) --------------------------


def test_a_batch_no_observer_wants_is_written_with_its_log_rows_in_one_statement(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import verify.log

    transactions = Spy(monkeypatch, verify.log, "commit_with")  # the three-trip write's last
    recorder = Recorder(engine, AuditLog(SystemClock()))
    recorder.record(_item(0))  # the head is not known yet: the plain way, once
    for n in range(1, 4):
        recorder.record_many([_item(10 * n), _item(10 * n + 1)])
    assert transactions.count == 1
    assert _counts(engine) == (7, 7)
    assert _chain(engine) == (True, 7, list(range(1, 8)))


def test_rows_sent_as_json_arrive_as_they_were_hashed(engine: Engine) -> None:
    """The entries and log rows go to the server as one JSON text (``audit_pg.as_json``): a
    time with another offset, text that JSON must escape and a nested detail must come back
    as the values their hashes were taken over, on the plain path and the quiet one."""
    from datetime import timedelta, timezone

    from core.clock import FixedClock

    beijing = timezone(timedelta(hours=8))
    at = datetime(2026, 12, 7, 9, 30, 1, 123456, tzinfo=beijing)
    odd = 'L"1\\ 号\n'
    item = Verification(
        at=at,
        identifier=odd,
        channel="api-qr",
        method="qr-payload",
        indication="FAILED",
        sub_indication="HASH_FAILURE",
        audit=Pending(
            "public",
            "licence.verify",
            "licence",
            odd,
            "FAILED",
            {"名称": '核验 "引号" \\', "nested": {"n": [1, 2.5, None, True]}},
        ),
    )
    recorder = Recorder(engine, AuditLog(FixedClock(at)))
    recorder.record(item)  # the plain way: the head is not known yet
    recorder.record_many([item, item])  # after the head it left, quietly
    assert _chain(engine) == (True, 3, [1, 2, 3])
    with Session(engine) as session:
        entries = session.exec(select(AuditEntry)).all()
        rows = session.exec(select(VerificationLog)).all()
    assert {(e.object_id, e.at.astimezone(UTC)) for e in entries} == {(odd, at.astimezone(UTC))}
    assert all(e.detail == item.audit.detail for e in entries)
    assert [(r.identifier, r.at.astimezone(UTC), r.sub_indication) for r in rows] == [
        (odd, at.astimezone(UTC), "HASH_FAILURE")
    ] * 3


def test_an_observer_sees_every_entry_it_said_it_may_act_on(engine: Engine) -> None:
    """A batch holding one entry an observer wants is written the transactional way, with the
    observer in it: the alert rules must see each failed verification."""
    seen: list[str] = []
    audit = AuditLog(SystemClock())
    audit.observe(lambda _s, entry: seen.append(entry.object_id), lambda p: p.outcome != "PASSED")
    recorder = Recorder(engine, audit)
    recorder.record(_item(0))
    recorder.record_many([_item(1), _item(2)])  # quiet: not observed
    failed = _item(4)
    failed = Verification(**{**failed.__dict__, "audit": Pending(
        "bench", "licence.verify", "licence", "L4", "FAILED", {"n": 4})})  # fmt: skip
    recorder.record_many([_item(3), failed])
    assert seen == ["L0", "L3", "L4"]  # the first (plain) batch and the one with a failure
    assert _chain(engine) == (True, 5, [1, 2, 3, 4, 5])


def test_an_observer_that_does_not_say_sees_every_entry(engine: Engine) -> None:
    seen: list[str] = []
    audit = AuditLog(SystemClock())
    audit.observe(lambda _s, entry: seen.append(entry.object_id))
    recorder = Recorder(engine, audit)
    for n in range(4):
        recorder.record(_item(n))
    assert seen == ["L0", "L1", "L2", "L3"]


class Checkpoints:
    """A checkpointer due every third entry, recording the entries it was handed."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def due(self, seq: int) -> bool:
        return seq % 3 == 0

    def __call__(self, _session: Session, entry: AuditEntry) -> None:
        self.seen.append(entry.seq)


def test_a_batch_that_brings_a_checkpoint_is_not_written_quietly(engine: Engine) -> None:
    checkpoints = Checkpoints()
    recorder = Recorder(engine, AuditLog(SystemClock(), checkpointer=checkpoints))
    for n in range(7):
        recorder.record(_item(n))
    assert [seq for seq in checkpoints.seen if checkpoints.due(seq)] == [3, 6]
    plain: list[int] = []
    audit = AuditLog(SystemClock(), checkpointer=lambda _s, entry: plain.append(entry.seq))
    recorder = Recorder(engine, audit)
    for n in range(7, 10):
        recorder.record(_item(n))
    assert len(plain) == 3  # a checkpointer that cannot tell is handed every entry


def test_two_workers_writing_quietly_at_once_keep_one_chain(engine: Engine) -> None:
    Recorder(engine, AuditLog(SystemClock())).record(_item(0))

    def worker(base: int) -> None:
        recorder = Recorder(engine, AuditLog(SystemClock()))  # a process of its own
        for n in range(base, base + 20):
            recorder.record_many([_item(n), _item(n + 1000)])

    assert _at_once(worker, [k * 100 for k in range(1, 4)]) == []
    assert _counts(engine) == (121, 121)
    assert _chain(engine) == (True, 121, list(range(1, 122)))


# -- the QR read -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_domain(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Domain:
    data_dir: Path = tmp_path_factory.mktemp("round-trips") / "data"
    url = fresh_schema(postgres_url, "t_round_trips_domain")
    return build_domain(make_settings(data_dir, database_url=url))


def _verify(domain: Domain, url: str) -> tuple[str, str | None]:
    report = domain.client.post("/api/v1/verify", json={"qr": url}).json()
    return report["indication"], report.get("sub_indication")


def test_a_photo_swapped_or_deleted_on_postgresql_fails_the_qr_check(pg_domain: Domain) -> None:
    """PostgreSQL hashes the stored photo in the record's query: the digest must be the stored
    bytes' own, so another face — or none — no longer matches what the code carries."""
    type_code = define(pg_domain, "302").json()["code"]
    response = issue(pg_domain, type_code, face())
    assert response.status_code == 201, response.text
    issued = response.json()
    url = issued["links"]["verify"]
    assert _verify(pg_domain, url) == ("PASSED", None)
    other = encoded(Image.new("RGB", (358, 441), "grey"), "PNG")
    from licences.photos import decode_photo

    with pg_domain.services.engine.begin() as conn:
        conn.execute(
            text("UPDATE licence_photo SET image = :img WHERE identifier = :i"),
            {"img": decode_photo(other).jpeg, "i": issued["identifier"]},
        )
    assert _verify(pg_domain, url) == ("FAILED", "HASH_FAILURE")
    with pg_domain.services.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM licence_photo WHERE identifier = :i"), {"i": issued["identifier"]}
        )
    assert _verify(pg_domain, url) == ("FAILED", "HASH_FAILURE")


def test_the_record_query_stays_prepared_across_verifications(pg_domain: Domain) -> None:
    """psycopg forgets a connection's prepared statements on ROLLBACK: a read that ended in one
    would plan the five-table query afresh for every scan."""
    url = pg_domain.issue(0)["links"]["verify"]
    service = pg_domain.services.verification
    for _ in range(12):  # past psycopg's threshold (5 uses) on every pooled connection used
        assert service.verify_code(url, channel="api-qr", actor="t").indication.value == "PASSED"
    engine = pg_domain.services.engine
    pool: Any = engine.pool
    held = [engine.connect() for _ in range(max(1, pool.checkedin()))]
    try:
        prepared = [
            str(row[0])
            for connection in held
            for row in connection.execute(text("SELECT statement FROM pg_prepared_statements"))
        ]
    finally:
        for connection in held:
            connection.close()
    assert any("licence__identifier" in statement for statement in prepared), prepared


def test_the_relaxed_commit_of_verifications_never_reaches_the_next_transaction(
    engine: Engine,
) -> None:
    """A verification's records commit without waiting for the disk; an issuance on the same
    pooled connection afterwards must still wait (``SET LOCAL`` ends with its transaction)."""
    recorder = Recorder(engine, AuditLog(SystemClock()))
    pool: Any = engine.pool
    recorder.record(_item(1))
    assert pool.checkedin() == 1  # the one connection the next transaction gets
    with engine.begin() as connection:
        assert connection.execute(text("SHOW synchronous_commit")).scalar_one() == "on"


def test_the_record_read_from_psycopg_equals_the_orm_record(pg_domain: Domain) -> None:
    """The record comes straight from psycopg in binary form on PostgreSQL: every value the
    report and the record digest use must be the ORM's own (times with their zone, JSON
    fields, the seal image's bytes)."""
    from core.db import reading
    from licences.models import Licence
    from licences.qrkeys import digest_of
    from licences.repository import full_record
    from verify.record_read import record_by_identifier

    identifier = pg_domain.issue(0)["identifier"]
    with reading(pg_domain.services.engine) as session:
        licence = session.get(Licence, identifier)
        assert licence is not None
        orm = full_record(session, licence)
    with reading(pg_domain.services.engine) as session:
        rows = record_by_identifier(session, identifier)
    assert rows is not None
    for expected, got in zip(
        (orm.licence, orm.licence_type, orm.holder, orm.issuer, orm.seal),
        (rows.licence, rows.licence_type, rows.holder, rows.issuer, rows.seal),
        strict=True,
    ):
        assert type(got) is type(expected)
        assert got.model_dump() == expected.model_dump()
    assert rows.licence.issued_at.tzinfo is not None
    assert digest_of(rows) == digest_of(orm)


def test_checkpoints_signed_inside_the_group_commit_hold_on_postgresql(pg_domain: Domain) -> None:
    """The recorder's transaction is opened by the head's advance (autocommit connection,
    BEGIN in the same query); a checkpoint every 100 entries is signed and written by the ORM
    inside it. Concurrent verifications across several checkpoints must leave a chain and
    numbered checkpoints that verify — and none without its entries."""
    from sqlalchemy import func, select

    from core.audit import AuditCheckpoint

    url = pg_domain.issue(0)["links"]["verify"]
    service = pg_domain.services.verification
    with Session(pg_domain.services.engine) as session:
        before = session.execute(select(func.count()).select_from(AuditCheckpoint)).scalar_one()
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(40):
                service.verify_code(url, channel="api-qr", actor="t")
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    verdict = pg_domain.services.audit_desk.verify(None)
    assert verdict.chain.intact, verdict.chain
    assert verdict.checkpoints.intact, verdict.checkpoints
    with Session(pg_domain.services.engine) as session:
        after = session.execute(select(func.count()).select_from(AuditCheckpoint)).scalar_one()
    assert after >= before + 2  # 240 entries cross at least two multiples of 100
