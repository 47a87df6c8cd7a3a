"""The QR desk's checks on the event loop (``verify.desk.CodeDesk.serve_here``,
``api.edge.code_desk``): what must hold when the loop that parses every request also checks
the scans.

- The loop never waits on another writer: with SQLite's write lock held by another connection,
  a scan is answered once the lock is free (from the desk's thread), and the loop answers other
  requests meanwhile; nothing is written twice, nothing is lost.
- An audit checkpoint signed outside the process (a key service, a token) is never signed on
  the loop; one signed in the process is.
- With a database over the network, only the checks that need no further read run on the loop;
  a scan that must read more (a random code, a licence the batch read did not find) is checked
  on the desk's thread. Every scan is answered as it is alone.
- The desk's thread never waits forever for a loop: a closed or stuck loop leaves the checks to
  it, and they run once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, text
from sqlmodel import Session, SQLModel, select

import keys.versions
from api.app import create_app
from api.edge import code_desk
from core.audit import AuditEntry, AuditLog
from core.clock import FixedClock
from tests.domain import demo_domain
from tests.security.licences import Repository, forged, identifier, repository
from tests.security.support import NOW
from verify.code import CodeVerifier
from verify.desk import CodeDesk, CodeJob, Outcome
from verify.log import VerificationLog, recorder
from verify.report import Report
from verify.service import VerificationService

WAIT = 10


class Answers:
    """Outcomes by scan, with the thread each was given on."""

    def __init__(self) -> None:
        self.got: dict[str, Outcome] = {}
        self.threads: dict[str, int] = {}
        self.done = threading.Condition()

    def job(self, name: str, code: str, elsewhere: Any = None) -> CodeJob:
        def finish(outcome: Outcome) -> None:
            with self.done:
                assert name not in self.got, "one answer a scan"
                self.got[name] = outcome
                self.threads[name] = threading.get_ident()
                self.done.notify_all()

        return CodeJob(code, "api-qr", "public", f"req-{name}", None, finish, elsewhere)

    def wait_for(self, count: int) -> dict[str, Outcome]:
        with self.done:
            assert self.done.wait_for(lambda: len(self.got) >= count, WAIT), self.got
        return self.got


def verdict(outcome: Outcome) -> tuple[str, str | None]:
    assert isinstance(outcome, Report), outcome
    return (
        outcome.indication.value,
        outcome.sub_indication.value if outcome.sub_indication else None,
    )


def counts(engine: Any) -> tuple[int, int]:
    with Session(engine) as session:
        logged = session.exec(select(func.count()).select_from(VerificationLog)).one()
        audited = session.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "licence.verify")
        ).one()
    return logged, audited


@contextmanager
def write_lock(database: str) -> Iterator[None]:
    """SQLite's write lock, held by a connection of its own (another process would hold it
    the same way)."""
    holder = sqlite3.connect(database, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


class Checkpoints:
    """A checkpointer due at every entry, recording the thread it signs on."""

    def __init__(self, in_process: bool) -> None:
        self.signs_in_process = in_process
        self.threads: list[int] = []

    def due(self, seq: int) -> bool:
        return True

    def __call__(self, session: Session, entry: AuditEntry) -> None:
        self.threads.append(threading.get_ident())


def mixed_scans(repo: Repository) -> tuple[dict[str, str], str]:
    """Scans of a valid and a revoked licence, of one the repository does not hold (its check
    would read again) and a text that is no code of ours; and the valid licence."""
    valid, revoked = repo.add("M1"), repo.add("M2", status="revoked")
    scans = {
        "valid": repo.code(repo.claims(valid)),
        "revoked": repo.code(repo.claims(revoked)),
        "absent": repo.code(repo.claims(identifier("NOTSTORED"))),
        "unknown": "hello",
    }
    return scans, valid


def service_with(repo: Repository, audit: AuditLog, code: CodeVerifier | None = None) -> Any:
    return VerificationService(
        engine=repo.engine,
        pdf=None,  # type: ignore[arg-type]
        code=code or CodeVerifier(FixedClock(NOW), repo.keys),
        audit=audit,
    )


def test_the_loop_answers_other_requests_while_a_scan_waits_for_the_write_lock(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    domain = demo_domain(tmp_path_factory, "desk-loop")
    issued = domain.issue()
    code = issued["links"]["verify"]
    engine = domain.services.engine
    assert engine.dialect.name == "sqlite" and domain.services.code_desk.in_process
    before = counts(engine)
    answer: dict[str, Any] = {}
    with TestClient(create_app(services=domain.services)) as client:  # one event loop
        client.post("/api/v1/verify", json={"qr": code})  # warm: the desk's thread exists
        with write_lock(str(engine.url.database)):
            scan = threading.Thread(
                target=lambda: answer.update(r=client.post("/api/v1/verify", json={"qr": code}))
            )
            scan.start()
            time.sleep(0.5)  # the scan reached the desk, which found the lock held
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            assert time.monotonic() - started < 2, "the loop waited on the write lock"
            assert "r" not in answer, "answered before its record was written"
            assert counts(engine) == (before[0] + 1, before[1] + 1)  # the warm-up's only
        scan.join(WAIT)
    assert answer["r"].status_code == 200 and answer["r"].json()["indication"] == "PASSED"
    assert counts(engine) == (before[0] + 2, before[1] + 2)  # each scan recorded once


def test_a_batch_on_the_loop_is_answered_as_each_scan_alone_and_recorded_there() -> None:
    repo = repository()
    scans, valid = mixed_scans(repo)
    scans["forged"] = forged(repo.claims(valid), kid=repo.kid)[0]
    service = service_with(repo, AuditLog(FixedClock(NOW)))
    alone = {name: verdict(service.check_code(code, "api-qr")) for name, code in scans.items()}
    assert alone == {
        "valid": ("PASSED", None),
        "revoked": ("FAILED", "REVOKED"),
        "forged": ("FAILED", "SIG_CRYPTO_FAILURE"),
        "absent": ("FAILED", "NOT_IN_REPOSITORY"),
        "unknown": ("FAILED", "UNKNOWN_CODE"),
    }
    desk, answers = CodeDesk(service), Answers()
    desk.serve_here([answers.job(name, code) for name, code in scans.items()])
    here = threading.get_ident()
    assert answers.threads == dict.fromkeys(scans, here)  # answered before serve_here returned
    assert {name: verdict(got) for name, got in answers.got.items()} == alone
    assert counts(repo.engine) == (len(scans), len(scans))
    desk.close()


@pytest.mark.parametrize("in_process", [False, True])
def test_a_checkpoint_signed_outside_the_process_is_never_signed_on_the_loop(
    in_process: bool,
) -> None:
    repo = repository()
    ident = repo.add("K1")
    checkpoints = Checkpoints(in_process)
    service = service_with(repo, AuditLog(FixedClock(NOW), checkpointer=checkpoints))
    desk, answers = CodeDesk(service), Answers()
    desk.serve_here([answers.job("a", repo.code(repo.claims(ident)))])
    got = answers.wait_for(1)
    desk.close()
    assert verdict(got["a"]) == ("PASSED", None)
    here = threading.get_ident()
    assert len(checkpoints.threads) == 1  # signed once, in the transaction that committed
    assert (checkpoints.threads[0] == here) is in_process
    assert (answers.threads["a"] == here) is in_process
    assert counts(repo.engine) == (1, 1)


class Threads(CodeVerifier):
    """The real verifier, noting the thread each scan is checked on."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.threads: dict[str, int] = {}

    def verify(self, session: Any, text: str, *args: Any, **kwargs: Any) -> Report:
        self.threads[text] = threading.get_ident()
        return super().verify(session, text, *args, **kwargs)


@contextmanager
def running_loop() -> Iterator[tuple[asyncio.AbstractEventLoop, int]]:
    loop = asyncio.new_event_loop()
    ident: list[int] = []
    thread = threading.Thread(
        target=lambda: (ident.append(threading.get_ident()), loop.run_forever())
    )
    thread.start()
    while not ident:
        time.sleep(0.01)
    try:
        yield loop, ident[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT)
        loop.close()


def test_over_the_network_only_checks_that_read_nothing_more_run_on_the_loop() -> None:
    repo = repository()
    scans, valid = mixed_scans(repo)
    scans["expired"] = repo.code(repo.presentation(valid, NOW - timedelta(minutes=10)))
    verifier = Threads(FixedClock(NOW), repo.keys)
    service = service_with(repo, AuditLog(FixedClock(NOW)), verifier)
    alone = {name: verdict(service.check_code(code, "api-qr")) for name, code in scans.items()}
    desk, answers = CodeDesk(service), Answers()
    with running_loop() as (loop, loop_thread):
        for name, code in scans.items():
            desk.submit(answers.job(name, code, lambda checks: code_desk._on_loop(loop, checks)))
        got = answers.wait_for(len(scans))
    desk.close()
    assert {name: verdict(outcome) for name, outcome in got.items()} == alone
    on_loop = {name for name, code in scans.items() if verifier.threads[code] == loop_thread}
    assert on_loop == {"valid", "revoked", "expired"}
    assert counts(repo.engine) == (len(scans), len(scans))


def noting(ran: list[int]) -> Any:
    """Checks that only note the thread they run on."""

    def checks() -> list[Report | Exception]:
        ran.append(threading.get_ident())
        return []

    return checks


def test_a_closed_loop_leaves_the_checks_to_the_desks_thread() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    ran: list[int] = []
    assert code_desk._on_loop(loop, noting(ran)) == []
    assert ran == [threading.get_ident()]


def test_a_stuck_loop_leaves_the_checks_to_the_desks_thread_and_they_run_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(code_desk, "LOOP_WAIT", 0.2)
    ran: list[int] = []
    release = threading.Event()
    with running_loop() as (loop, _):
        loop.call_soon_threadsafe(lambda: release.wait(WAIT))  # the loop is busy elsewhere
        got = code_desk._on_loop(loop, noting(ran))
        release.set()
        done = threading.Event()
        loop.call_soon_threadsafe(done.set)  # after the late callback had its turn
        assert done.wait(WAIT)
    assert got == [] and ran == [threading.get_ident()]  # here, once


def test_a_write_that_would_wait_is_not_made_now_and_leaves_nothing(tmp_path: Path) -> None:
    database = tmp_path / "desk.sqlite"
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 30})
    SQLModel.metadata.create_all(engine)
    repo = repository()
    service = service_with(repo, AuditLog(FixedClock(NOW)))
    report = service.check_code("hello", "api-qr")
    item = service.code_record("hello", report, "public", "req-1", None)
    writes = recorder(engine, AuditLog(FixedClock(NOW)))
    with write_lock(str(database)):
        started = time.monotonic()
        assert writes.record_now([item]) is False
        assert time.monotonic() - started < 1
        assert counts(engine) == (0, 0)
        waiting = threading.Thread(target=writes.record_many, args=([item],))
        waiting.start()  # a writer that does wait: the recorder is busy while it waits
        time.sleep(0.3)
        assert writes.record_now([item]) is False
    waiting.join(WAIT)
    assert counts(engine) == (1, 1)
    assert writes.record_now([item]) is True
    assert counts(engine) == (2, 2)
    with engine.connect() as connection:  # the pool's connection waits again, as configured
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_a_closed_desk_answers_a_scan_whose_write_would_wait_and_writes_nothing() -> None:
    repo = repository()
    ident = repo.add("C1")
    service = service_with(repo, AuditLog(FixedClock(NOW), checkpointer=Checkpoints(False)))
    desk, answers = CodeDesk(service), Answers()
    desk.close()
    desk.serve_here([answers.job("a", repo.code(repo.claims(ident)))])
    got = answers.wait_for(1)
    assert isinstance(got["a"], RuntimeError) and "closed" in str(got["a"])
    assert counts(repo.engine) == (0, 0)


class Broken:
    def serve_here(self, jobs: list[CodeJob]) -> None:
        raise RuntimeError("the desk broke")


def test_a_batch_the_desk_could_not_take_is_answered_not_left_waiting() -> None:
    loop = asyncio.new_event_loop()
    try:
        mailbox = code_desk._Mailbox(loop)
        answers = Answers()
        mailbox.pending = [answers.job(f"s{n}", "hello") for n in range(40)]  # two batches
        mailbox.check_pending(Broken())  # type: ignore[arg-type]
        got = answers.wait_for(40)
    finally:
        loop.close()
    assert {str(outcome) for outcome in got.values()} == {"the desk broke"}
    assert mailbox.pending == []


def test_the_loop_never_asks_a_key_store_outside_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key service (Vault, a token) may keep its caller waiting: with one, a SQLite desk is not
    run on the loop, and the loop checks only scans whose key is listed already."""
    monkeypatch.setattr(keys.versions, "MISS_RELIST_SECONDS", 0.0)  # every miss asks the store
    repo = repository()
    valid = repo.add("V1")
    store: Any = repo.store
    asked: list[int] = []
    for name in ("versions", "public_key", "exists"):
        method = getattr(store, name)

        def noted(*args: Any, _method: Any = method) -> Any:
            asked.append(threading.get_ident())
            return _method(*args)

        setattr(store, name, noted)
    store.in_process = False
    genuine = repo.code(repo.claims(valid))  # lists the QR key
    foreign_kid = forged(repo.claims(valid))[0]  # names a real licence, a key id never listed
    verifier = Threads(FixedClock(NOW), repo.keys)
    service = service_with(repo, AuditLog(FixedClock(NOW)), verifier)
    desk, answers = CodeDesk(service), Answers()
    assert not desk.in_process  # SQLite, but the keys are elsewhere
    asked.clear()
    with running_loop() as (loop, loop_thread):
        for name, code in (("genuine", genuine), ("foreign", foreign_kid)):
            desk.submit(answers.job(name, code, lambda checks: code_desk._on_loop(loop, checks)))
        got = answers.wait_for(2)
    desk.close()
    assert verdict(got["genuine"]) == ("PASSED", None)
    assert verdict(got["foreign"]) == ("INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND")
    assert verifier.threads[genuine] == loop_thread
    assert verifier.threads[foreign_kid] != loop_thread  # its key had to be looked for
    assert asked and loop_thread not in asked


def test_a_fault_in_a_loop_batch_answers_every_scan_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``verify.loop_desk``: a batch that fails in a way no step of it expected still answers
    each of its scans, and the batches after it are served."""
    from verify.loop_desk import LoopDesk

    class Desk:
        service = None

        def submit(self, job: CodeJob) -> None:
            raise AssertionError("nothing goes to the thread here")

    async def broken(desk: LoopDesk, jobs: list[CodeJob]) -> None:
        raise RuntimeError("the batch broke")

    monkeypatch.setattr(LoopDesk, "_serve", broken)
    answers = Answers()

    async def run() -> None:
        desk = LoopDesk(Desk())  # type: ignore[arg-type]
        for n in range(40):  # two batches
            desk.add(answers.job(f"s{n}", "hello"))
        await desk.aclose()

    asyncio.run(run())
    got = answers.wait_for(40)
    assert {str(outcome) for outcome in got.values()} == {"the batch broke"}
