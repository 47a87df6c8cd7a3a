"""The QR desk's batches on the event loop over PostgreSQL (``verify.loop_desk``): what a hostile
scan, another writer, a failing server or a slow one must not be able to do to a worker whose
event loop now reads and writes the database itself.

- A forged payload, a key id of no domain, a licence that is not there, a random text: each is
  answered exactly as it is alone; what needs a further read or the key store goes to the
  desk's thread, and the loop checks only what the batch read holds.
- A licence revoked between two batches is refused at the next one: nothing is remembered.
- A read the server holds up (a lock) never holds up the loop.
- An audit checkpoint is signed on the desk's thread, alone; the scans after it go on quietly.
- Another writer of the chain in between: the quiet write is refused by the database and the
  thread writes; the chain holds.
- A connection the server ended: the thread answers that batch, the next one reconnects.
- A write that fails on the connection is answered 503 and leaves nothing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from api.app import create_app
from api.edge import code_desk
from core.audit import AuditCheckpoint, AuditEntry, AuditLog, Pending, verify_chain
from core.db import transaction
from licences.identifiers import LicenceIdentifier
from licences.payload import Claims
from tests.conftest import fresh_schema, make_settings
from tests.domain import Domain, build_domain
from tests.repo_domains import food_body, issue
from tests.security.licences import forged
from tests.security.test_code_desk_loop import counts as engine_counts
from verify.code import CodeVerifier, unverified
from verify.loop_desk import LoopDesk
from verify.service import LOOP_CONNECTION, VerificationService

pytestmark = pytest.mark.postgres
REASON = {"reason": "测试原因 / test reason"}


@pytest.fixture(scope="module")
def pg(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Domain:
    data_dir = tmp_path_factory.mktemp("loop-desk") / "data"
    url = fresh_schema(postgres_url, "t_loop_desk")
    return build_domain(make_settings(data_dir, database_url=url))


class Routes:
    """Which scans the loop handed to the desk's thread, and on which thread each was checked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.to_thread: list[str] = []
        self.written_later: list[int] = []
        self.written_there: list[int] = []
        self.checked_on: dict[str, int] = {}
        to_thread, write_later = LoopDesk._to_thread, LoopDesk._write_later
        written_there, verify = LoopDesk._written_there, CodeVerifier.verify

        def noted_to_thread(desk: LoopDesk, jobs: list[Any]) -> None:
            self.to_thread.extend(job.text for job in jobs)
            to_thread(desk, jobs)

        def noted_write_later(desk: LoopDesk, settled: list[Any], records: list[Any]) -> None:
            self.written_later.append(len(records))
            write_later(desk, settled, records)

        async def noted_there(desk: LoopDesk, job: Any, report: Any, record: Any) -> None:
            self.written_there.append(1)
            await written_there(desk, job, report, record)

        def noted_verify(verifier: CodeVerifier, session: Any, code: str, *a: Any) -> Any:
            self.checked_on[code] = threading.get_ident()
            return verify(verifier, session, code, *a)

        monkeypatch.setattr(LoopDesk, "_to_thread", noted_to_thread)
        monkeypatch.setattr(LoopDesk, "_write_later", noted_write_later)
        monkeypatch.setattr(LoopDesk, "_written_there", noted_there)
        monkeypatch.setattr(CodeVerifier, "verify", noted_verify)

    def clear(self) -> None:
        self.to_thread.clear()
        self.written_later.clear()
        self.written_there.clear()
        self.checked_on.clear()


@asynccontextmanager
async def serving(domain: Domain) -> AsyncIterator[httpx.AsyncClient]:
    """The application on this event loop; at the end this loop's desk closed, as the
    application's lifespan closes it (the rest of the module's domain stays open)."""
    app = create_app(services=domain.services)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await code_desk.close_loop_desks()


async def scan(client: httpx.AsyncClient, code: str) -> httpx.Response:
    return await client.post("/api/v1/verify", json={"qr": code})


def verdict(response: httpx.Response) -> tuple[str, str | None]:
    assert response.status_code == 200, response.text
    body = response.json()
    return body["indication"], body.get("sub_indication")


def counts(domain: Domain) -> tuple[int, int]:
    """(verification log rows, verification audit entries) of the domain."""
    return engine_counts(domain.services.engine)


def chain_intact(domain: Domain) -> bool:
    with Session(domain.services.engine) as session:
        return verify_chain(session).intact


def loop_desk_here(domain: Domain) -> LoopDesk:
    mailbox = code_desk._MAILBOXES[asyncio.get_running_loop()]
    return mailbox.networked[domain.services.code_desk]


def backend_of(domain: Domain) -> int:
    connection = loop_desk_here(domain)._connection
    assert connection is not None, "the loop has no connection of its own"
    return int(connection.info.backend_pid)


def admin(domain: Domain) -> psycopg.Connection[Any]:
    """A connection of the test's own to the domain's database and schema."""
    url = domain.services.engine.url.set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def backends(domain: Domain) -> set[int]:
    with admin(domain) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (LOOP_CONNECTION,)
        ).fetchall()
    return {int(row[0]) for row in rows}


def signed_by_domain(domain: Domain, claims: Claims) -> str:
    return domain.services.qr_keys.sign(claims, purpose="qr-licence", listener=None)


def absent(identifier: str) -> str:
    """A well-formed identifier of the same type and issuer that the repository does not hold."""
    parsed = LicenceIdentifier.parse(identifier)
    return str(replace(parsed, serial="Z" + parsed.serial[1:]))


def claims_of(code: str) -> Claims:
    signed = unverified(code)
    assert signed is not None
    return signed.claims


def test_a_mixed_batch_is_answered_as_each_scan_alone_and_only_what_needs_no_more_runs_here(
    pg: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    valid = issue(pg, food_body(pg))["links"]["verify"]
    revoked = issue(pg, food_body(pg))
    answer = pg.client.post(
        f"/api/v1/licences/{revoked['identifier']}/revoke", json=REASON, headers=pg.auth()
    )
    assert answer.status_code == 200, answer.text
    claims = claims_of(valid)
    listed_kid = pg.services.qr_keys.published()[0].kid
    scans = {
        "valid": valid,
        "revoked": revoked["links"]["verify"],
        "forged": forged(claims, kid=listed_kid)[0],  # a listed key id, a signature of no key
        "foreign": forged(claims)[0],  # a key id of no trust domain
        "absent": signed_by_domain(pg, replace(claims, identifier=absent(claims.identifier))),
        "text": "hello",
    }
    expected = {
        "valid": ("PASSED", None),
        "revoked": ("FAILED", "REVOKED"),
        "forged": ("FAILED", "SIG_CRYPTO_FAILURE"),
        "foreign": ("INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND"),
        "absent": ("FAILED", "NOT_IN_REPOSITORY"),
        "text": ("FAILED", "UNKNOWN_CODE"),
    }
    routes = Routes(monkeypatch)

    async def run() -> dict[str, tuple[str, str | None]]:
        async with serving(pg) as client:
            assert verdict(await scan(client, valid)) == ("PASSED", None)  # warm: seal image
            routes.clear()
            before = counts(pg)
            answers = await asyncio.gather(*(scan(client, code) for code in scans.values()))
            assert counts(pg) == (before[0] + len(scans), before[1] + len(scans))
            return {name: verdict(got) for name, got in zip(scans, answers, strict=True)}

    assert asyncio.run(run()) == expected
    loop = threading.get_ident()  # asyncio.run's loop runs on this thread
    on_loop = {name for name, code in scans.items() if routes.checked_on.get(code) == loop}
    assert on_loop == {"valid", "revoked", "forged"}
    assert set(routes.to_thread) == {scans["foreign"], scans["absent"], scans["text"]}
    assert chain_intact(pg)


def test_a_licence_revoked_between_two_batches_is_refused_at_the_next(pg: Domain) -> None:
    issued = issue(pg, food_body(pg))

    async def run() -> list[tuple[str, str | None]]:
        async with serving(pg) as client:
            first = verdict(await scan(client, issued["links"]["verify"]))
            revoked = await client.post(
                f"/api/v1/licences/{issued['identifier']}/revoke", json=REASON, headers=pg.auth()
            )
            assert revoked.status_code == 200, revoked.text
            return [first, verdict(await scan(client, issued["links"]["verify"]))]

    assert asyncio.run(run()) == [("PASSED", None), ("FAILED", "REVOKED")]


def test_a_read_the_server_holds_up_never_holds_up_the_loop(
    pg: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = issue(pg, food_body(pg))["links"]["verify"]
    routes = Routes(monkeypatch)

    async def run() -> None:
        async with serving(pg) as client:
            assert verdict(await scan(client, code)) == ("PASSED", None)
            routes.clear()
            with admin(pg) as holder:
                holder.execute("BEGIN")
                holder.execute("LOCK TABLE licence IN ACCESS EXCLUSIVE MODE")
                waiting = asyncio.create_task(scan(client, code))
                await asyncio.sleep(0.5)  # the batch's read waits for the lock
                started = time.monotonic()
                assert (await client.get("/healthz")).status_code == 200
                assert time.monotonic() - started < 2, "the loop waited on the database"
                assert not waiting.done(), "answered while its read could not run"
                holder.execute("ROLLBACK")
            assert verdict(await asyncio.wait_for(waiting, 10)) == ("PASSED", None)
            assert routes.to_thread == []  # read by the loop, not handed over

    asyncio.run(run())


class NotingCheckpoints:
    """The domain's checkpointer, due every ``every`` entries, noting the thread that signs."""

    def __init__(self, inner: Any, every: int) -> None:
        self.inner = inner
        self.every = every
        self.threads: list[int] = []

    @property
    def signs_in_process(self) -> bool:
        return bool(self.inner.signs_in_process)

    def due(self, seq: int) -> bool:
        return seq % self.every == 0

    def __call__(self, session: Session, entry: AuditEntry) -> None:
        if self.due(entry.seq):
            self.threads.append(threading.get_ident())
            self.inner._every = 1  # the real signing, for this entry
            try:
                self.inner(session, entry)
            finally:
                self.inner._every = 100


def test_a_checkpoint_is_signed_on_the_desks_thread_alone_and_the_scans_after_it_go_on(
    pg: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = issue(pg, food_body(pg))["links"]["verify"]
    audit = pg.services.audit
    noting = NotingCheckpoints(audit.checkpointer, every=7)
    monkeypatch.setattr(audit, "checkpointer", noting)
    routes = Routes(monkeypatch)

    def checkpoints() -> int:
        with Session(pg.services.engine) as session:
            return int(session.exec(select(func.count()).select_from(AuditCheckpoint)).one())

    before: list[int] = []

    async def run() -> list[tuple[str, str | None]]:
        async with serving(pg) as client:
            assert verdict(await scan(client, code)) == ("PASSED", None)
            routes.clear()  # the warm-up's entry may have brought a checkpoint of its own
            noting.threads.clear()
            before.append(checkpoints())
            got: list[tuple[str, str | None]] = []
            for _ in range(3):  # batches of up to 20, across several checkpoints
                answers = await asyncio.gather(*(scan(client, code) for _ in range(20)))
                got.extend(verdict(answer) for answer in answers)
            return got

    assert set(asyncio.run(run())) == {("PASSED", None)}
    crossed = len(noting.threads)
    assert crossed >= 60 // 7 - 1  # checkpoints came due among the 60 entries
    assert threading.get_ident() not in noting.threads  # never signed on the loop
    assert routes.written_there == [1] * crossed  # each checkpoint's entry alone
    assert routes.written_later == [1] * crossed  # and nothing else went to the thread
    assert routes.to_thread == []
    with Session(pg.services.engine) as session:
        report = noting.inner.check(session)
    assert checkpoints() - before[0] == crossed
    assert report.intact, report
    assert chain_intact(pg)


def test_another_writer_moving_the_head_makes_the_thread_write_and_the_chain_holds(
    pg: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = issue(pg, food_body(pg))["links"]["verify"]
    audit = pg.services.audit  # no checkpoint comes due: only the other writer sends work over
    monkeypatch.setattr(audit, "checkpointer", NotingCheckpoints(audit.checkpointer, 10**9))
    routes = Routes(monkeypatch)
    other_worker = AuditLog(pg.services.clock)  # its own remembered head, the same chain

    async def run() -> list[tuple[str, str | None]]:
        async with serving(pg) as client:
            got = [verdict(await scan(client, code))]
            routes.clear()
            with transaction(pg.services.engine) as session:
                other_worker.append_many(session, [Pending("other", "x.test", "t", "1", "ok")])
            got.append(verdict(await scan(client, code)))  # its quiet write is refused
            assert routes.written_later == [1]
            got.append(verdict(await scan(client, code)))  # on the head the thread left
            assert routes.written_later == [1]
            return got

    before = counts(pg)
    assert asyncio.run(run()) == [("PASSED", None)] * 3
    assert counts(pg) == (before[0] + 3, before[1] + 3)  # each scan recorded once
    assert chain_intact(pg)


def test_a_connection_the_server_ended_is_replaced_and_no_scan_fails(
    pg: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = issue(pg, food_body(pg))["links"]["verify"]
    routes = Routes(monkeypatch)

    async def run() -> list[tuple[str, str | None]]:
        async with serving(pg) as client:
            got = [verdict(await scan(client, code))]
            ended = backend_of(pg)
            with admin(pg) as connection:
                connection.execute("SELECT pg_terminate_backend(%s)", (ended,))
            routes.clear()
            got.append(verdict(await scan(client, code)))  # the read fails: the thread's turn
            assert routes.to_thread == [code]
            got.append(verdict(await scan(client, code)))  # a new connection, the loop's
            assert routes.to_thread == [code]
            assert backend_of(pg) != ended
            return got

    before = counts(pg)
    assert asyncio.run(run()) == [("PASSED", None)] * 3
    assert counts(pg) == (before[0] + 3, before[1] + 3)


def test_a_write_that_fails_on_the_connection_is_unavailable_and_leaves_nothing(
    pg: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = issue(pg, food_body(pg))["links"]["verify"]
    quiet_write = VerificationService.quiet_write
    cut: list[int] = []

    def cut_then_write(service: VerificationService, records: list[Any]) -> Any:
        if not cut:  # once: the server ends the loop's connection between read and write
            with admin(pg) as connection:
                pid = backend_of(pg)
                connection.execute("SELECT pg_terminate_backend(%s)", (pid,))
                cut.append(pid)
        return quiet_write(service, records)

    async def run() -> tuple[httpx.Response, tuple[int, int], tuple[str, str | None]]:
        async with serving(pg) as client:
            assert verdict(await scan(client, code)) == ("PASSED", None)
            before = counts(pg)
            monkeypatch.setattr(VerificationService, "quiet_write", cut_then_write)
            failed = await scan(client, code)
            after = counts(pg)
            assert after == before, "a failed write left a record"
            return failed, after, verdict(await scan(client, code))

    failed, after, next_one = asyncio.run(run())
    assert failed.status_code == 503, failed.text
    assert failed.headers["content-type"].startswith("application/problem+json")
    assert next_one == ("PASSED", None)  # the next batch, on a new connection
    assert counts(pg) == (after[0] + 1, after[1] + 1)
    assert chain_intact(pg)


def test_the_loops_connection_ends_with_the_application(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dir = tmp_path_factory.mktemp("loop-desk-life") / "data"
    own = build_domain(
        make_settings(data_dir, database_url=fresh_schema(postgres_url, "t_ld_life"))
    )
    code = issue(own, food_body(own))["links"]["verify"]
    app = create_app(services=own.services)
    seen: list[int] = []

    async def run() -> None:
        async with app.router.lifespan_context(app):  # as uvicorn runs the application
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                for _ in range(2):
                    assert verdict(await scan(client, code)) == ("PASSED", None)
                seen.append(backend_of(own))
                assert seen[0] in backends(own)

    asyncio.run(run())
    deadline = time.monotonic() + 5
    while seen[0] in backends(own) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen[0] not in backends(own)


def test_a_loop_that_closed_without_its_lifespan_leaves_no_connection(pg: Domain) -> None:
    code = issue(pg, food_body(pg))["links"]["verify"]
    app = create_app(services=pg.services)
    seen: list[int] = []

    async def run() -> None:  # no lifespan: as a test client without its context
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(2):
                assert verdict(await scan(client, code)) == ("PASSED", None)
            seen.append(backend_of(pg))

    asyncio.run(run())
    assert seen[0] in backends(pg)
    asyncio.run(run())  # the next loop's first scan ends the closed loop's connection
    deadline = time.monotonic() + 5
    while seen[0] in backends(pg) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen[0] not in backends(pg)
