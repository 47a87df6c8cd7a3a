"""The QR verification path made cheap keeps its behaviour: the audit chain written with prepared
statements (with the verification log row, in one transaction), the repository record read as
plain rows, and the one ASGI middleware at the edge (headers, CORS, limits, metrics)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from core.audit import AuditEntry, AuditHead, AuditLog, Pending, entry_hash, verify_chain
from core.clock import FixedClock
from core.db import create_db_engine, reading, transaction
from migrations.runner import upgrade
from tests.domain import Domain, demo_domain
from verify import log as verification_log

ORIGIN = "https://counter.example.gov.cn"


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "hot", cors_origins=[ORIGIN], public_rate_limit="6/minute")


def _log(tmp_path: Path, every: int = 3):  # type: ignore[no-untyped-def]
    from keys.audit import AuditCheckpointer
    from keys.soft import SoftKeyStore

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    clock = FixedClock(datetime(2026, 12, 1, tzinfo=UTC))
    checkpointer = AuditCheckpointer(SoftKeyStore(tmp_path / "keys", b"pw"), clock, every=every)
    checkpointer.ensure_key()
    return engine, AuditLog(clock, checkpointer=checkpointer), checkpointer


def _item(i: int) -> verification_log.Verification:
    return verification_log.Verification(
        at=datetime(2026, 12, 1, tzinfo=UTC),
        identifier=f"L{i}",
        channel="api-qr",
        method="qr-payload",
        indication="PASSED",
        sub_indication=None,
        audit=Pending("public", "licence.verify", "licence", f"L{i}", "PASSED", {"n": i}),
    )


def _verification(audit: AuditLog, engine, i: int) -> None:  # type: ignore[no-untyped-def]
    verification_log.recorder(engine, audit).record(_item(i))


def test_appends_chain_and_checkpoint_as_before(tmp_path: Path) -> None:
    engine, audit, checkpointer = _log(tmp_path)
    for i in range(7):
        _verification(audit, engine, i)
    with transaction(engine) as session:
        entry = audit.append(
            session, actor="op", action="thing.do", object_type="thing", object_id="x"
        )
    assert entry.seq == 8 and entry_hash(entry) == entry.hash  # the entry as written
    with Session(engine) as session:
        assert verify_chain(session).intact and verify_chain(session).entries == 8
        assert checkpointer.verify(session) == (2, None)  # seq 3 and 6
        head = session.get(AuditHead, 1)
        assert head is not None and (head.seq, head.hash) == (8, entry.hash)
        logged = session.exec(select(func.count()).select_from(verification_log.VerificationLog))
        assert logged.one() == 7


def test_a_failed_transaction_leaves_neither_row_nor_entry(tmp_path: Path) -> None:
    engine, audit, _ = _log(tmp_path)
    _verification(audit, engine, 0)
    with pytest.raises(RuntimeError), transaction(engine) as session:
        audit.append(session, actor="a", action="b", object_type="c", object_id="d")
        raise RuntimeError("after the append")
    _verification(audit, engine, 1)
    with Session(engine) as session:
        assert verify_chain(session).intact and verify_chain(session).entries == 2
        assert session.exec(select(func.count()).select_from(AuditEntry)).one() == 2


def test_pending_work_is_written_with_its_entry(tmp_path: Path) -> None:
    engine, audit, _ = _log(tmp_path)
    with transaction(engine) as session:
        session.add(
            verification_log.VerificationLog(
                at=datetime(2026, 12, 1, tzinfo=UTC),
                identifier="pending",
                channel="cli",
                method="pdf",
                indication="FAILED",
            )
        )
        audit.append(session, actor="a", action="b", object_type="c", object_id="d")
    with Session(engine) as session:
        assert [r.identifier for r in verification_log.history(session, "pending")] == ["pending"]


def test_concurrent_verifications_share_transactions_and_keep_one_chain(tmp_path: Path) -> None:
    engine, audit, checkpointer = _log(tmp_path, every=10)
    writes: list[int] = []
    recorder = verification_log.recorder(engine, audit)
    original = recorder._write

    def counted(items: list[verification_log.Verification]) -> None:
        writes.append(len(items))
        original(items)

    recorder._write = counted  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def work(start: int) -> None:
        try:
            for i in range(start, start + 15):
                _verification(audit, engine, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n * 100,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(writes) == 120 and len(writes) <= 120
    with Session(engine) as session:
        report = verify_chain(session)
        assert report.intact and report.entries == 120
        assert checkpointer.verify(session) == (12, None)
        details = [e.detail["n"] for e in session.exec(select(AuditEntry).order_by(AuditEntry.seq))]  # type: ignore[arg-type]
        assert sorted(details) == sorted(n * 100 + i for n in range(8) for i in range(15))
        logged = session.exec(select(func.count()).select_from(verification_log.VerificationLog))
        assert logged.one() == 120


def test_a_failed_group_write_fails_each_of_its_callers_and_nothing_is_left(
    tmp_path: Path,
) -> None:
    from core.errors import Unavailable

    engine, audit, _ = _log(tmp_path)
    recorder = verification_log.Recorder(engine, audit)
    started, release = threading.Event(), threading.Event()
    original = recorder._write
    calls = 0

    def failing_first(items: list[verification_log.Verification]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # hold the first batch until the others queue behind it
            started.set()
            release.wait(10)
            raise Unavailable("数据库暂不可用 / the database is unavailable", cause="test")
        if calls == 2:
            with transaction(engine) as session:  # a batch that fails half-way leaves nothing
                session.connection().execute(verification_log._INSERT, [i.row() for i in items])
                raise Unavailable("数据库暂不可用 / the database is unavailable", cause="test")
        original(items)

    recorder._write = failing_first  # type: ignore[method-assign]
    outcomes: dict[int, str] = {}

    def call(i: int) -> None:
        try:
            recorder.record(_item(i))
            outcomes[i] = "ok"
        except Unavailable as exc:
            outcomes[i] = exc.kind.value

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert started.wait(10)
    queued = [threading.Thread(target=call, args=(i,)) for i in (1, 2, 3)]
    for thread in queued:
        thread.start()
    while len(recorder._queue) < 3:
        threading.Event().wait(0.01)
    release.set()
    for thread in (first, *queued):
        thread.join(10)
    assert outcomes == {0: "unavailable", 1: "unavailable", 2: "unavailable", 3: "unavailable"}
    recorder.record(_item(4))  # and the next one is written
    with Session(engine) as session:
        assert verify_chain(session).entries == 1
        rows = session.exec(select(verification_log.VerificationLog)).all()
        assert [r.identifier for r in rows] == ["L4"]


def test_record_read_as_rows_equals_the_orm_record(domain: Domain) -> None:
    from licences.qrkeys import digest_of
    from licences.repository import full_record
    from verify.record_read import record_by_identifier
    from verify.summary import licence_summary, seal_summary

    issued = [domain.issue(0)["identifier"], domain.issue(1)["identifier"]]
    for identifier in issued:
        with reading(domain.services.engine) as session:
            from licences.models import Licence

            licence = session.get(Licence, identifier)
            assert licence is not None
            orm = full_record(session, licence)
        with reading(domain.services.engine) as session:
            rows = record_by_identifier(session, identifier)
        assert rows is not None
        pairs = zip(
            (orm.licence, orm.licence_type, orm.holder, orm.issuer, orm.seal),
            (rows.licence, rows.licence_type, rows.holder, rows.issuer, rows.seal),
            strict=True,
        )
        for expected, got in pairs:
            assert type(got) is type(expected)
            assert got.model_dump() == expected.model_dump()
        assert rows.licence.issued_at.tzinfo is not None
        today = orm.licence.issued_at.date()
        assert digest_of(rows) == digest_of(orm)
        assert licence_summary(rows, today) == licence_summary(orm, today)
        assert seal_summary(rows, "t") == seal_summary(orm, "t")
    with reading(domain.services.engine) as session:
        assert record_by_identifier(session, "no-such-licence") is None


def test_qr_verification_over_http_leaves_log_row_and_audit_entry(domain: Domain) -> None:
    issued = domain.issue(0)
    with reading(domain.services.engine) as session:
        entries = session.exec(select(func.count()).select_from(AuditEntry)).one()
    response = domain.client.post(
        "/api/v1/verify", json={"qr": issued["links"]["verify"]}, headers={"X-Request-Id": "r-1"}
    )
    assert response.json()["indication"] == "PASSED"
    with reading(domain.services.engine) as session:
        assert session.exec(select(func.count()).select_from(AuditEntry)).one() == entries + 1
        last = session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()  # type: ignore[attr-defined]
        assert last is not None
        assert (last.action, last.object_id, last.request_id) == (
            "licence.verify",
            issued["identifier"],
            "r-1",
        )
        rows = verification_log.history(session, issued["identifier"])
        assert [(r.channel, r.method, r.indication) for r in rows] == [
            ("api-qr", "qr-payload", "PASSED")
        ]
        assert verify_chain(session).intact


def test_edge_headers_request_id_and_metrics(domain: Domain) -> None:
    response = domain.client.get("/healthz", headers={"X-Request-Id": "edge-1"})
    assert response.headers["x-request-id"] == "edge-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    generated = domain.client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 16
    docs = domain.client.get("/docs")
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    metrics = domain.client.get("/metrics").text
    assert 'elicence_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics
    missing = domain.client.get("/no-such-page")
    assert missing.status_code == 404 and missing.headers["x-request-id"]
    assert 'route="unmatched",status="404"' in domain.client.get("/metrics").text


def test_cors_preflight_has_headers_and_is_neither_counted_nor_limited(domain: Domain) -> None:
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    for _ in range(10):  # more than the public rate of 6 a minute
        answer = domain.client.options("/api/v1/verify", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-request-id"]
    assert 'method="OPTIONS"' not in domain.client.get("/metrics").text


# Runs last in this module: it spends the module's public rate budget.
def test_limit_answer_is_problem_json_with_cors_and_security_headers(domain: Domain) -> None:
    answers = [
        domain.client.post(
            "/api/v1/verify",
            json={"qr": "HTTPS://X/V/AAAAAAAAAAAAAAAAAAAAAAAA"},
            headers={"Origin": ORIGIN, "X-Request-Id": f"lim-{i}"},
        )
        for i in range(10)
    ]
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["access-control-allow-origin"] == ORIGIN
    assert limited.headers["x-content-type-options"] == "nosniff"
    body = limited.json()
    assert body["status"] == 429 and body["instance"] == "/api/v1/verify"
    assert body["request_id"] == limited.headers["x-request-id"]
    metrics = domain.client.get("/metrics").text
    assert 'elicence_http_requests_total{method="POST",route="unmatched",status="429"}' in metrics


def test_two_workers_on_postgresql_keep_one_chain(tmp_path: Path, postgres_url: str) -> None:
    """Two engines, as two worker processes would have, each with its own recorder: the head
    row's lock serialises their group writes into one chain."""
    from keys.audit import AuditCheckpointer
    from keys.soft import SoftKeyStore
    from tests.conftest import reset_postgres_schema

    reset_postgres_schema(postgres_url)
    upgrade(postgres_url)
    clock = FixedClock(datetime(2026, 12, 1, tzinfo=UTC))
    store = SoftKeyStore(tmp_path / "keys", b"pw")
    workers = []
    for _ in range(2):
        checkpointer = AuditCheckpointer(store, clock, every=7)
        checkpointer.ensure_key()
        engine = create_db_engine(postgres_url)
        workers.append((engine, AuditLog(clock, checkpointer=checkpointer), checkpointer))
    errors: list[BaseException] = []

    def work(worker: int, thread: int) -> None:
        engine, audit, _ = workers[worker]
        try:
            for i in range(10):
                _verification(audit, engine, worker * 1000 + thread * 100 + i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w, t)) for w in range(2) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    engine, _, checkpointer = workers[0]
    with Session(engine) as session:
        report = verify_chain(session)
        assert report.intact and report.entries == 80
        assert checkpointer.verify(session) == (11, None)
    for engine, _, _ in workers:
        engine.dispose()


def test_public_verification_routes_come_first_and_no_other_route_claims_their_paths(
    domain: Domain,
) -> None:
    """The verify router is included first so a scanned code is matched without walking the
    others; that is only safe while no other route matches the same requests."""
    from starlette.routing import Match

    def leaves(routes: list[Any]) -> list[Any]:
        found: list[Any] = []
        for route in routes:
            inner = getattr(route, "original_router", None)
            found += leaves(inner.routes) if inner is not None else [route]
        return found

    app = domain.client.app
    first = next(r for r in app.routes if getattr(r, "original_router", None) is not None)
    assert {getattr(r, "path", None) for r in first.original_router.routes} >= {
        "/api/v1/verify",
        "/v/{code}",
        "/verify",
    }
    routes = leaves(app.routes)
    for method, path in [
        ("POST", "/api/v1/verify"),
        ("GET", "/v/ABC234"),
        ("GET", "/V/ABC234"),
        ("GET", "/verify"),
        ("POST", "/verify"),
    ]:
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        claiming = {
            r.endpoint.__module__
            for r in routes
            if hasattr(r, "endpoint") and r.matches(scope)[0] is not Match.NONE
        }
        assert claiming == {"api.pages.verify"}, (method, path, claiming)
