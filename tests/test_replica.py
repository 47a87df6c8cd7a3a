"""Verification and search read from a real PostgreSQL streaming replica (tests/pg_replica.py),
and a lagging replica never changes a verdict.

Replay on the replica is paused (``pg_wal_replay_pause``) to make the lag deterministic: what the
primary wrote after that is not on the replica, and each test first checks that it is not (the
attack's precondition), then that the answer is the primary's. Writes — the verification log and
its audit entry, issuance, lifecycle — land on the primary: the replica is read-only, so a write
routed there would fail the request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from core.db import create_db_engine, create_replica_engine, reading
from tests.conftest import fresh_schema, make_settings
from tests.domain import Domain, build_domain
from tests.holder_login import free_port
from tests.pg_replica import Replica
from tests.repo_domains import food_body, issue, verify_qr
from verify.reads import ReadRoute
from verify.report import Indication, Report

pytestmark = pytest.mark.postgres

SCHEMA = "t_replica"


@pytest.fixture(scope="module")
def routed(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, pg_replica: Replica
) -> Iterator[tuple[Domain, str]]:
    """A demo domain on the primary whose verification and search read the replica; and the
    primary's URL (its own schema)."""
    url = fresh_schema(postgres_url, SCHEMA)
    settings = make_settings(
        tmp_path_factory.mktemp("replica") / "data",
        database_url=url,
        database_replica_url=pg_replica.url(url),
    )
    domain = build_domain(settings)
    pg_replica.sync()
    yield domain, url


def _one(url: str, sql: str, *args: Any) -> Any:
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as c:
        cursor = c.execute(sql, args)
        row = cursor.fetchone() if cursor.description else None
    return None if row is None else row[0]


def _status_on_replica(replica: Replica, url: str, identifier: str) -> Any:
    return _one(replica.url(url), "SELECT status FROM licence WHERE identifier = %s", identifier)


def _verify_pdf(domain: Domain, issued: dict[str, Any]) -> dict[str, Any]:
    return domain.verify_pdf(domain.pdf(issued))


def test_verification_reads_the_replica(routed: tuple[Domain, str], fresh_replica: Replica) -> None:
    """The marker: the issuer's name is changed on the primary while replay is paused; the
    verification shows the replica's name, so its reads went there — and it still answers
    PASSED with its log row written on the primary. Without routing it would show the new name."""
    domain, url = routed
    issued = issue(domain, food_body(domain))
    code = domain.department(0)["code"]
    name = _one(url, "SELECT name FROM department WHERE code = %s", code)
    fresh_replica.sync()
    fresh_replica.pause()
    try:
        _one(url, "UPDATE department SET name = %s WHERE code = %s", name + "（副本标记）", code)
        logged = _one(url, "SELECT count(*) FROM verification_log")
        answer = verify_qr(domain, issued)
        assert answer["indication"] == "PASSED", answer
        assert answer["licence"]["issuer_name"] == name  # the replica's row, not the primary's
        assert _one(url, "SELECT count(*) FROM verification_log") == logged + 1  # primary
        fresh_replica.resume()
        fresh_replica.sync()
        fresh = verify_qr(domain, issued)
        assert fresh["licence"]["issuer_name"] == name + "（副本标记）"
    finally:
        _one(url, "UPDATE department SET name = %s WHERE code = %s", name, code)


def test_a_licence_issued_a_moment_ago_is_never_not_in_repository(
    routed: tuple[Domain, str], fresh_replica: Replica
) -> None:
    domain, url = routed
    fresh_replica.pause()
    issued = issue(domain, food_body(domain))
    assert _status_on_replica(fresh_replica, url, issued["identifier"]) is None  # not replayed yet
    answer = verify_qr(domain, issued)
    assert (answer["indication"], answer["sub_indication"]) == ("PASSED", None), answer
    assert answer["licence"]["identifier"] == issued["identifier"]
    pdf = _verify_pdf(domain, issued)
    assert (pdf["indication"], pdf["sub_indication"]) == ("PASSED", None), pdf
    assert _status_on_replica(fresh_replica, url, issued["identifier"]) is None  # still lagging


@pytest.mark.parametrize(("action", "sub"), [("revoke", "REVOKED"), ("suspend", "SUSPENDED")])
def test_a_licence_revoked_a_moment_ago_never_verifies_passed(
    routed: tuple[Domain, str], fresh_replica: Replica, action: str, sub: str
) -> None:
    """The attack a lagging replica invites: the licence is revoked on the primary, the replica
    still holds it valid. QR and PDF verification both say FAILED with the primary's reason."""
    domain, url = routed
    issued = issue(domain, food_body(domain))
    fresh_replica.sync()
    fresh_replica.pause()
    changed = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/{action}",
        json={"reason": "副本滞后测试 / replica lag test"},
        headers=domain.auth(0),
    )
    assert changed.status_code == 200, changed.text
    assert _status_on_replica(fresh_replica, url, issued["identifier"]) == "valid"  # stale there
    answer = verify_qr(domain, issued)
    assert (answer["indication"], answer["sub_indication"]) == ("FAILED", sub), answer
    assert answer["licence"]["status"] == ("revoked" if action == "revoke" else "suspended")
    pdf = _verify_pdf(domain, issued)
    assert (pdf["indication"], pdf["sub_indication"]) == ("FAILED", sub), pdf


def test_a_licence_resumed_a_moment_ago_verifies_passed(
    routed: tuple[Domain, str], fresh_replica: Replica
) -> None:
    """The other direction: suspended on the replica, resumed on the primary."""
    domain, url = routed
    issued = issue(domain, food_body(domain))
    path = f"/api/v1/licences/{issued['identifier']}"
    reason = {"reason": "副本滞后测试 / replica lag test"}
    assert domain.client.post(f"{path}/suspend", json=reason, headers=domain.auth(0)).is_success
    fresh_replica.sync()
    fresh_replica.pause()
    assert domain.client.post(f"{path}/resume", json=reason, headers=domain.auth(0)).is_success
    assert _status_on_replica(fresh_replica, url, issued["identifier"]) == "suspended"
    answer = verify_qr(domain, issued)
    assert (answer["indication"], answer["sub_indication"]) == ("PASSED", None), answer


def test_search_reads_the_replica(routed: tuple[Domain, str], fresh_replica: Replica) -> None:
    """A department's search is a page a replication lag old: a licence issued while replay is
    paused is not listed until the replica replays it (the record itself, by identifier, is
    read on the primary at once)."""
    domain, _url = routed
    fresh_replica.pause()
    body = food_body(domain)
    issued = issue(domain, body)
    query = {"holder_id": body["holder"]["id"]}
    listed = domain.client.get("/api/v1/licences", params=query, headers=domain.auth(0))
    assert listed.status_code == 200, listed.text
    identifiers = {item["identifier"] for item in listed.json()["items"]}
    assert issued["identifier"] not in identifiers
    record = domain.client.get(f"/api/v1/licences/{issued['identifier']}", headers=domain.auth(0))
    assert record.status_code == 200
    fresh_replica.resume()
    fresh_replica.sync()
    listed = domain.client.get("/api/v1/licences", params=query, headers=domain.auth(0))
    assert issued["identifier"] in {item["identifier"] for item in listed.json()["items"]}


def test_a_replica_that_is_down_leaves_the_primary_answering(routed: tuple[Domain, str]) -> None:
    """No server on the replica's port: the route answers from the primary (and rests the
    replica), never an error."""
    _domain, url = routed
    primary = create_db_engine(url)
    nobody = free_port()
    dead = create_replica_engine(f"postgresql+psycopg://postgres@127.0.0.1:{nobody}/test")
    route = ReadRoute(primary, dead)
    engines: list[int | None] = []  # the port of each engine asked, in order

    def check(engine: Any) -> Report:
        engines.append(engine.url.port)
        with reading(engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        return _passed()

    assert route.answer(check).indication is Indication.PASSED
    assert engines == [nobody, primary.url.port]
    assert route.answer(check).indication is Indication.PASSED
    assert engines[2:] == [primary.url.port]  # resting: not tried again at once
    primary.dispose()


def test_a_replica_engine_never_writes(fresh_replica: Replica) -> None:
    """Even pointed at the primary by mistake, the replica engine's sessions are read-only."""
    engine = create_replica_engine(fresh_replica.primary_url)
    assert engine is not None
    with pytest.raises(Exception, match="read-only"), engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE replica_write_probe (x int)"))
    engine.dispose()


def _passed() -> Report:
    from datetime import UTC, datetime

    return Report(Indication.PASSED, None, "ok", (), datetime.now(UTC), "test")


def test_a_certificate_revoked_a_moment_ago_sends_a_pdf_check_to_the_primary(
    routed: tuple[Domain, str], fresh_replica: Replica
) -> None:
    """A PDF's verdict depends on this domain's certificate revocations: while the replica's
    set differs from the primary's, the check is run again on the primary; once replayed, the
    replica's answer stands."""
    _domain, url = routed
    primary = create_db_engine(url)
    lagging = create_replica_engine(fresh_replica.url(url))
    route = ReadRoute(primary, lagging)
    engines: list[int | None] = []  # the port of each engine asked, in order

    def check(engine: Any) -> Report:
        engines.append(engine.url.port)
        return _passed()

    serial = _one(url, "SELECT serial FROM certificate WHERE status = 'good' ORDER BY serial")
    route.answer(check, revocations=True)
    assert engines == [fresh_replica.port]  # nothing differs: the replica's answer stands
    fresh_replica.pause()
    try:
        _one(
            url,
            "UPDATE certificate SET status = 'hold', revoked_at = now(), "
            "revocation_reason = 'certificateHold' WHERE serial = %s",
            serial,
        )
        route.answer(check, revocations=True)
        assert engines[1:] == [fresh_replica.port, primary.url.port]
        route.answer(check)  # a QR check does not depend on certificates
        assert engines[3:] == [fresh_replica.port]
    finally:
        _one(
            url,
            "UPDATE certificate SET status = 'good', revoked_at = NULL, revocation_reason = NULL "
            "WHERE serial = %s",
            serial,
        )
        fresh_replica.resume()
        primary.dispose()
        assert lagging is not None
        lagging.dispose()
