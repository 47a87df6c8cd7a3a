"""The QR desk (``verify/desk.py``): scans checked a batch at a time on one thread.

What a hostile scanner would try against a shared batch, and what must hold:
- a batch mixing genuine, revoked, forged, unknown and expired codes answers each exactly as a
  scan alone is answered (the batch read never lends one scan's record to another, and a forged
  payload's name is never believed);
- a code that breaks its check fails alone, the rest of the batch is answered and recorded;
- a write that fails answers no scan of its batch, and leaves no log row or audit entry;
- a read that fails is the database's 503 for every scan of the batch, not a driver error;
- forged payloads naming licences that do not exist cost the batch's one statement, never a
  query each (their names are read before any signature is checked);
- a code for a recognised domain never makes the desk wait on the network;
- a closed desk answers what it had queued and takes nothing more.
"""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from core.audit import AuditEntry, AuditLog
from core.clock import FixedClock
from core.errors import Unavailable
from licences.models import Licence
from tests.security.licences import Repository, forged, identifier, repository
from tests.security.support import NOW
from verify.code import CodeVerifier
from verify.desk import CodeDesk, CodeJob, Outcome, Unsettled
from verify.log import VerificationLog
from verify.report import Indication, Report, SubIndication
from verify.service import VerificationService

WAIT = 10  # seconds a test waits for the desk before it calls it stuck


class Service(VerificationService):
    """The real service, counting the batches the desk hands it."""

    def __init__(self, repo: Repository, code: CodeVerifier | None = None,
                 foreign: Any = None) -> None:
        super().__init__(
            engine=repo.engine, pdf=None,  # type: ignore[arg-type]
            code=code or CodeVerifier(FixedClock(NOW), repo.keys),
            audit=AuditLog(FixedClock(NOW)), foreign=foreign,
        )
        self.checked: list[int] = []
        self.written: list[int] = []

    def check_codes(self, scans: Any, elsewhere: Any = None) -> list[Report | Exception]:
        self.checked.append(len(scans))
        return super().check_codes(scans, elsewhere)

    def record(self, records: Any) -> None:
        self.written.append(len(records))
        super().record(records)


class Answers:
    """Outcomes by scan, filled on the desk's thread."""

    def __init__(self) -> None:
        self.got: dict[str, Outcome] = {}
        self.twice: list[str] = []
        self.done = threading.Condition()

    def job(self, name: str, code: str, hold: threading.Event | None = None,
            entered: threading.Event | None = None) -> CodeJob:
        def finish(outcome: Outcome) -> None:
            if entered is not None:
                entered.set()
            if hold is not None:
                assert hold.wait(WAIT)
            with self.done:
                if name in self.got:
                    self.twice.append(name)  # one answer a scan, never a second
                self.got[name] = outcome
                self.done.notify_all()

        return CodeJob(code, "api-qr", "public", f"req-{name}", None, finish)

    def wait_for(self, count: int) -> dict[str, Outcome]:
        with self.done:
            assert self.done.wait_for(lambda: len(self.got) >= count, WAIT), self.got
        assert self.twice == []
        return self.got


def held_batch(desk: CodeDesk, answers: Answers, jobs: list[CodeJob]) -> None:
    """``jobs`` queued while the desk is busy with a first scan, so that they reach it as one
    batch."""
    hold, entered = threading.Event(), threading.Event()
    desk.submit(answers.job("first", "hello", hold, entered))
    assert entered.wait(WAIT)
    for job in jobs:
        desk.submit(job)
    hold.set()


def logged(repo: Repository) -> list[tuple[str | None, str, str | None]]:
    with Session(repo.engine) as session:
        rows = session.exec(select(VerificationLog).order_by(VerificationLog.id)).all()  # type: ignore[arg-type]
        return [(r.identifier, r.indication, r.sub_indication) for r in rows]


def audited(repo: Repository) -> list[tuple[str, str, str | None]]:
    with Session(repo.engine) as session:
        rows = session.exec(
            select(AuditEntry).where(AuditEntry.action == "licence.verify").order_by(AuditEntry.seq)  # type: ignore[arg-type]
        ).all()
        return [(a.object_id, a.outcome, a.request_id) for a in rows]


@pytest.fixture
def repo() -> Repository:
    return repository()


def verdict(outcome: Outcome) -> tuple[str, str | None, str | None]:
    assert isinstance(outcome, Report), outcome
    sub = outcome.sub_indication.value if outcome.sub_indication else None
    return outcome.indication.value, sub, outcome.licence.identifier if outcome.licence else None


def test_a_mixed_batch_is_answered_scan_by_scan_as_each_alone(repo: Repository) -> None:
    valid, revoked, other = repo.add("D1"), repo.add("D2", status="revoked"), repo.add("D3")
    scans = {
        "valid": repo.code(repo.claims(valid)),
        "revoked": repo.code(repo.claims(revoked)),
        # signed by no key of ours, naming a real licence: its name is not believed
        "forged": forged(repo.claims(other), kid=repo.kid)[0],
        # genuine signature, a record digest the repository's record does not have
        "altered": repo.code(repo.claims(other, record_digest=bytes(16))),
        "absent": repo.code(repo.claims(identifier("NOTSTORED"))),
        "expired": repo.code(repo.presentation(valid, NOW - timedelta(minutes=10))),
        "again": repo.code(repo.claims(valid)),
        "unknown": "hello",
    }
    expected = {
        "valid": ("PASSED", None, valid),
        "revoked": ("FAILED", "REVOKED", revoked),
        "forged": ("FAILED", "SIG_CRYPTO_FAILURE", None),
        "altered": ("FAILED", "HASH_FAILURE", None),
        "absent": ("FAILED", "NOT_IN_REPOSITORY", None),
        "expired": ("FAILED", "EXPIRED", None),
        "again": ("PASSED", None, valid),
        "unknown": ("FAILED", "UNKNOWN_CODE", None),
    }
    service = Service(repo)
    alone = {name: verdict(service.check_code(code, "api-qr")) for name, code in scans.items()}
    assert alone == expected

    desk, answers = CodeDesk(service), Answers()
    held_batch(desk, answers, [answers.job(name, code) for name, code in scans.items()])
    got = answers.wait_for(len(scans) + 1)
    desk.close()

    assert {name: verdict(got[name]) for name in scans} == expected
    assert service.checked == [1, len(scans)]  # the first scan, then the rest as one batch
    assert service.written == [1, len(scans)]  # and each batch's records in one transaction
    assert [row[0] for row in logged(repo)].count(valid) == 3  # valid, again, expired
    assert sorted(request for _, _, request in audited(repo)) == sorted(
        f"req-{name}" for name in ["first", *scans]
    )


class Exploding(CodeVerifier):
    def verify(
        self,
        session: Any,
        text: str,
        channel: str = "qr",
        known: Any = None,
        decoded: Any = None,
        listed_only: bool = False,
    ) -> Report:
        if text == "boom":
            raise RuntimeError("a check that breaks")
        return super().verify(session, text, channel, known, decoded, listed_only)


def test_a_scan_whose_check_breaks_fails_alone(repo: Repository) -> None:
    ident = repo.add("E1")
    service = Service(repo, code=Exploding(FixedClock(NOW), repo.keys))
    desk, answers = CodeDesk(service), Answers()
    code = repo.code(repo.claims(ident))
    held_batch(desk, answers, [answers.job("boom", "boom"), answers.job("good", code)])
    got = answers.wait_for(3)
    desk.close()

    assert isinstance(got["boom"], RuntimeError)
    assert verdict(got["good"]) == ("PASSED", None, ident)
    assert [request for _, _, request in audited(repo)] == ["req-first", "req-good"]


def test_a_failed_write_answers_no_scan_and_leaves_nothing(repo: Repository) -> None:
    ident = repo.add("F1")
    service = Service(repo)
    with Session(repo.engine) as session:  # the log's table gone: the batch's insert fails
        session.exec(text("DROP TABLE verification_log"))  # type: ignore[call-overload]
        session.commit()
    desk, answers = CodeDesk(service), Answers()
    codes = {"a": repo.code(repo.claims(ident)), "b": "hello"}
    for name, code in codes.items():
        desk.submit(answers.job(name, code))
    got = answers.wait_for(2)
    desk.close()

    assert all(isinstance(outcome, Exception) for outcome in got.values()), got
    assert audited(repo) == []  # the audit entries rolled back with the log rows
    with Session(repo.engine) as session:
        assert session.get(Licence, ident) is not None


class Peer:
    """A recognised domain that would answer only when the test lets it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def verify_code(self, text: str, local: Report, channel: str) -> Report | None:
        self.calls.append(text)
        raise AssertionError("the desk must never ask a peer")


def test_a_code_for_a_recognised_domain_never_holds_the_desk(repo: Repository) -> None:
    ident = repo.add("G1")
    peer = Peer()
    service = Service(repo, foreign=peer)
    desk, answers = CodeDesk(service), Answers()
    theirs, _ = forged(repo.claims(ident))  # a key this domain does not know
    mine = repo.code(repo.claims(ident))
    held_batch(desk, answers, [answers.job("theirs", theirs), answers.job("mine", mine)])
    got = answers.wait_for(3)
    desk.close()

    unsettled = got["theirs"]
    assert isinstance(unsettled, Unsettled)
    assert unsettled.report.sub_indication is SubIndication.NO_SIGNING_CERTIFICATE_FOUND
    assert peer.calls == []
    assert verdict(got["mine"]) == ("PASSED", None, ident)
    # the unsettled scan is recorded by whoever asks the peer, not by the desk
    assert [request for _, _, request in audited(repo)] == ["req-first", "req-mine"]


def test_a_closed_desk_answers_its_queue_and_takes_nothing_more(repo: Repository) -> None:
    ident = repo.add("H1")
    desk, answers = CodeDesk(Service(repo)), Answers()
    hold, entered = threading.Event(), threading.Event()
    desk.submit(answers.job("first", "hello", hold, entered))
    assert entered.wait(WAIT)
    desk.submit(answers.job("queued", repo.code(repo.claims(ident))))
    closing = threading.Thread(target=desk.close)
    closing.start()
    hold.set()
    closing.join(WAIT)
    assert not closing.is_alive()
    assert verdict(answers.got["queued"]) == ("PASSED", None, ident)
    with pytest.raises(RuntimeError):
        desk.submit(answers.job("late", "hello"))
    assert "late" not in answers.got


def test_outcomes_reach_the_event_loop_with_one_wake_up_a_batch() -> None:
    from api.edge.code_desk import _Mailbox

    async def scenario() -> tuple[int, list[Any]]:
        loop = asyncio.get_running_loop()
        wake_ups = 0
        schedule = loop.call_soon_threadsafe

        def counting(*args: Any) -> Any:
            nonlocal wake_ups
            wake_ups += 1
            return schedule(*args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        box = _Mailbox(loop)
        futures: list[asyncio.Future[Outcome]] = [loop.create_future() for _ in range(5)]
        futures[2].cancel()  # a client that went away
        outcomes: list[Outcome] = [Unavailable(f"n{n}") for n in range(5)]
        poster = threading.Thread(
            target=lambda: [box.post(f, o) for f, o in zip(futures, outcomes, strict=True)]
        )
        poster.start()
        poster.join()
        live = [f for f in futures if not f.cancelled()]
        got = await asyncio.wait_for(asyncio.gather(*live), WAIT)
        return wake_ups, [str(o) for o in got]

    wake_ups, got = asyncio.run(scenario())
    assert wake_ups == 1
    assert got == ["n0", "n1", "n3", "n4"]


def test_an_indication_is_never_lost_in_the_hand_over(repo: Repository) -> None:
    """Forty scans from four threads at once: every one answered, each with its own verdict,
    and every one recorded exactly once."""
    valid = repo.add("K1")
    good = repo.code(repo.claims(valid))
    desk, answers = CodeDesk(Service(repo)), Answers()

    def scan(worker: int) -> None:
        for n in range(10):
            name = f"{worker}-{n}"
            desk.submit(answers.job(name, good if n % 2 else "hello"))

    threads = [threading.Thread(target=scan, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = answers.wait_for(40)
    desk.close()
    for name, outcome in got.items():
        passed = int(name.split("-")[1]) % 2 == 1
        assert isinstance(outcome, Report)
        assert outcome.indication is (Indication.PASSED if passed else Indication.FAILED), name
    assert sorted(request for _, _, request in audited(repo)) == sorted(
        f"req-{name}" for name in got
    )
    assert len(logged(repo)) == 40


def test_a_batch_whose_read_fails_is_answered_database_unavailable(repo: Repository) -> None:
    """The batch read goes to sqlite3 itself: its error must still be the service's 503, not a
    driver exception that the edge would answer with a 500."""
    ident = repo.add("L1")
    with Session(repo.engine) as session:  # the record query's outer join has nothing to read
        session.exec(text("DROP TABLE licence_photo"))  # type: ignore[call-overload]
        session.commit()
    desk, answers = CodeDesk(Service(repo)), Answers()
    desk.submit(answers.job("a", repo.code(repo.claims(ident))))
    got = answers.wait_for(1)
    desk.close()
    assert isinstance(got["a"], Unavailable), repr(got["a"])
    assert audited(repo) == []


def test_forged_payloads_naming_absent_licences_buy_no_query_each(repo: Repository) -> None:
    """A batch's names are read before any signature is checked. A flood of forged payloads,
    each naming a licence that does not exist, must cost the one batch statement, not a query
    of its own each."""
    ident = repo.add("M1")
    ghosts = [forged(repo.claims(identifier(f"GHOST{n}")), kid=repo.kid)[0] for n in range(10)]
    statements: list[str] = []
    fairy = repo.engine.raw_connection()  # the pool's one connection (StaticPool)
    driver = fairy.driver_connection
    assert driver is not None
    driver.set_trace_callback(statements.append)  # every statement, ORM's and the desk's own
    try:
        desk, answers = CodeDesk(Service(repo)), Answers()
        jobs = [answers.job(f"ghost{n}", code) for n, code in enumerate(ghosts)]
        held_batch(desk, answers, [*jobs, answers.job("real", repo.code(repo.claims(ident)))])
        got = answers.wait_for(12)
        desk.close()
    finally:
        driver.set_trace_callback(None)
    assert verdict(got["real"]) == ("PASSED", None, ident)
    assert {verdict(got[f"ghost{n}"]) for n in range(10)} == {
        ("FAILED", "SIG_CRYPTO_FAILURE", None)
    }
    licence_reads = [s for s in statements if re.match(r"\s*SELECT\b.*\bFROM licence\b", s, re.S)]
    assert len(licence_reads) == 1, licence_reads
