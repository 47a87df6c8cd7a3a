"""The daily expiry scan: a licence still valid as stored whose last day has passed in China gets
one ``licence.expired`` event and one ``licence.expire`` audit entry, however often and by how
many processes the scan runs; nothing else does.

Attacks first: a scan run twice, two scans at once (SQLite and PostgreSQL), a clock at 23:59
Beijing on the last day (15:59 UTC, whatever the host's hour), licences renewed, revoked or
suspended then cancelled before their day, a department trying to delete the events; then the
catch-up after downtime and its limit. The clock is pinned: these tests mean the same at any
hour.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import Session, SQLModel, col, select

from core.audit import AuditEntry, verify_chain
from core.clock import CHINA, FixedClock, china_today
from core.db import create_db_engine, reading
from licences.identifiers import LicenceIdentifier
from licences.models import Licence
from supervision.expiry import ACTOR, EXPIRE, ExpiryScan
from supervision.expiry_policy import ExpiryPolicy
from supervision.outbox import OutboxEvent
from tests.conftest import fresh_schema
from tests.domain import Domain, build_domain, demo_domain, make_settings
from tests.repo_domains import food_body, issue

START = datetime.now(UTC).replace(microsecond=0)
REASON = {"reason": "测试原因 / test reason"}


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    return demo_domain(tmp_path_factory, "expiry-scan", clock=clock)


def at(clock: FixedClock, moment: datetime) -> None:
    assert moment >= clock.now(), "the module's clock only moves forward"
    clock.advance(moment.astimezone(UTC) - clock.now())


def beijing(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=CHINA)


def today(clock: FixedClock) -> date:
    return china_today(clock.now())


def issue_until(domain: Domain, last_day: date) -> str:
    """A food business licence of department 0 from today (China) to ``last_day``."""
    body = food_body(domain, valid_until=last_day.isoformat())
    return str(issue(domain, body)["identifier"])


def clones(domain: Domain, count: int, last_day: date, tag: str) -> list[str]:
    """``count`` copies of a stored licence with ``last_day``: rows as issuance writes them,
    without sealing each (the scan reads rows, never documents)."""
    with Session(domain.services.engine) as session:
        template = session.exec(select(Licence).limit(1)).one()
        made = []
        for n in range(count):
            row = template.model_dump()
            row.update(
                identifier=f"{template.identifier}-{tag}{n}",
                verify_code=f"{tag}-{n}",
                status_index=None,
                status="valid",
                previous=None,
                superseded_by=None,
                valid_until=last_day,
            )
            session.add(Licence(**row))
            made.append(row["identifier"])
        session.commit()
    return made


def events(domain: Domain, identifier: str, kind: str = "licence.expired") -> list[OutboxEvent]:
    with reading(domain.services.engine) as session:
        query = select(OutboxEvent).where(
            OutboxEvent.licence == identifier, OutboxEvent.kind == kind
        )
        return list(session.exec(query).all())


def audits(domain: Domain, identifier: str, action: str = EXPIRE) -> list[AuditEntry]:
    with reading(domain.services.engine) as session:
        query = select(AuditEntry).where(
            AuditEntry.object_id == identifier, AuditEntry.action == action
        )
        return list(session.exec(query).all())


def post(domain: Domain, identifier: str, action: str, body: dict[str, Any]) -> None:
    response = domain.client.post(
        f"/api/v1/licences/{identifier}/{action}", json=body, headers=domain.auth(0)
    )
    created = action in ("renew", "amend", "reissue")  # a new version
    assert response.status_code == (201 if created else 200), response.text


def scan(domain: Domain, clock: FixedClock) -> None:
    domain.services.expiry.scan(clock.now())


def test_a_licence_is_not_expired_on_its_last_day_in_china_only_after_midnight_there(
    domain: Domain, clock: FixedClock
) -> None:
    """Day D ends at 24:00 Beijing, 16:00 UTC: at 23:59 Beijing (15:59 UTC, the UTC date is D
    too) the licence is valid and the scan writes nothing for it; at 00:01 Beijing on D+1
    (16:01 UTC on D: the UTC date has not turned) it is expired, once."""
    last = today(clock) + timedelta(days=1)
    identifier = issue_until(domain, last)
    at(clock, beijing(last, 23, 59))
    assert clock.now().date() == last  # UTC agrees it is day D: no test of the UTC date
    scan(domain, clock)
    assert events(domain, identifier) == []
    at(clock, beijing(last + timedelta(days=1), 0, 1))
    assert clock.now().date() == last  # in UTC it is still day D: only China turned the day
    scan(domain, clock)
    [event] = events(domain, identifier)
    assert event.data == {
        "licence": {
            "identifier": identifier,
            "type_code": LicenceIdentifier.parse(identifier).type_code,
            "issuer_code": domain.department(0)["code"],
        },
        "valid_until": last.isoformat(),
        "status": {"from": "valid", "to": "expired"},
    }
    assert event.dedupe == f"expired:{identifier}"
    assert event.department_code == domain.department(0)["code"]
    [entry] = audits(domain, identifier)
    assert entry.actor == ACTOR and entry.outcome == "ok"
    assert entry.detail["to"] == "expired" and entry.detail["valid_until"] == last.isoformat()
    assert event.audit_seq == entry.seq


def test_a_scan_run_again_writes_no_second_event_nor_audit_entry(
    domain: Domain, clock: FixedClock
) -> None:
    identifier = issue_until(domain, today(clock))
    at(clock, clock.now() + timedelta(days=1))
    first = domain.services.expiry.scan(clock.now())
    again = domain.services.expiry.scan(clock.now())
    assert first.expired >= 1 and again.expired == 0
    assert len(events(domain, identifier)) == 1
    assert len(audits(domain, identifier)) == 1
    with reading(domain.services.engine) as session:
        assert verify_chain(session).intact


def test_renewed_revoked_and_suspended_then_cancelled_licences_get_no_expiry_event(
    domain: Domain, clock: FixedClock
) -> None:
    last = today(clock) + timedelta(days=2)
    renewed, revoked, cancelled, kept = (issue_until(domain, last) for _ in range(4))
    post(domain, renewed, "renew", {})
    post(domain, revoked, "revoke", REASON)
    post(domain, cancelled, "suspend", REASON)
    post(domain, cancelled, "cancel", REASON)
    at(clock, beijing(last + timedelta(days=3), 9, 0))
    scan(domain, clock)
    assert [len(events(domain, i)) for i in (renewed, revoked, cancelled)] == [0, 0, 0]
    assert [len(audits(domain, i)) for i in (renewed, revoked, cancelled)] == [0, 0, 0]
    assert len(events(domain, kept)) == 1  # the control: the scan did run over that day


def test_three_days_of_downtime_are_caught_up_and_a_month_back_is_the_limit(
    domain: Domain, clock: FixedClock
) -> None:
    """The scan reads a window of days back from today (``catch_up_days``), never the table:
    licences that ended during three days without a scan each get their event on the next;
    one that ended before the window gets none (it was announced by the scans of its day)."""
    first = today(clock)
    during = [issue_until(domain, first + timedelta(days=n)) for n in range(3)]
    outside = clones(domain, 1, first - timedelta(days=40), "OLD")
    at(clock, beijing(first + timedelta(days=4), 8, 0))
    result = domain.services.expiry.scan(clock.now())
    assert result.expired >= 3
    assert [len(events(domain, i)) for i in during] == [1, 1, 1]
    assert events(domain, outside[0]) == []


def _race(scans: list[ExpiryScan], now: datetime) -> list[BaseException]:
    errors: list[BaseException] = []
    gate = threading.Barrier(len(scans))

    def run(scan: ExpiryScan) -> None:
        try:
            gate.wait()
            scan.scan(now)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in scans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return errors


def test_two_scans_at_once_on_sqlite_write_one_event_and_one_entry_per_licence(
    domain: Domain, clock: FixedClock
) -> None:
    """Two engines (two connection pools, as two worker processes have) scan in small batches
    at the same moment."""
    made = clones(domain, 40, today(clock) - timedelta(days=1), "RACE")
    url = domain.settings.resolved_database_url()
    engines = [create_db_engine(url) for _ in range(2)]
    try:
        policy = domain.services.expiry.policy
        scans = [
            ExpiryScan(engine=e, audit=domain.services.audit, policy=policy, batch=7)
            for e in engines
        ]
        assert _race(scans, clock.now()) == []
    finally:
        for engine in engines:
            engine.dispose()
    assert {i: len(events(domain, i)) for i in made} == {i: 1 for i in made}
    assert {i: len(audits(domain, i)) for i in made} == {i: 1 for i in made}
    with reading(domain.services.engine) as session:
        assert verify_chain(session).intact


def test_a_department_cannot_delete_or_change_the_events(domain: Domain, clock: FixedClock) -> None:
    """No route writes to the outbox but the changes it reports: neither a DELETE, PUT or PATCH
    on an events path exists, and a department's attempt changes nothing."""
    identifier = issue_until(domain, today(clock))
    at(clock, clock.now() + timedelta(days=1))
    scan(domain, clock)
    [event] = events(domain, identifier)
    for route in domain.client.app.routes:  # type: ignore[attr-defined]
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None) or set()
        if any(word in path for word in ("event", "outbox", "expir", "remind")):
            assert not methods & {"DELETE", "PUT", "PATCH"}, (path, methods)
    for method in ("DELETE", "PATCH", "PUT"):
        for path in (f"/api/v1/events/{event.event_id}", f"/api/v1/outbox/{event.id}"):
            answer = domain.client.request(method, path, headers=domain.auth(0), json={})
            assert answer.status_code in (404, 405), (method, path, answer.status_code)
    # Revoking the licence afterwards adds its own event; the expiry stays as it was.
    post(domain, identifier, "revoke", REASON)
    [still] = events(domain, identifier)
    assert (still.event_id, still.data) == (event.event_id, event.data)


def test_the_scan_reads_the_window_through_the_valid_until_index(domain: Domain) -> None:
    """The window is a range of the index of revision 0022, not a scan of the table; the
    migrated database and the model declare the same index."""
    with domain.services.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert [d for d in diff if "ix_licence_valid_until" in repr(d)] == []
        assert "ix_licence_valid_until" in {
            index["name"] for index in inspect(conn).get_indexes("licence")
        }
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT identifier FROM licence "
            "WHERE status = 'valid' AND valid_until >= '2030-01-01' AND valid_until <= '2030-02-01'"
        ).all()
    assert any("ix_licence_valid_until" in str(row) for row in plan), plan


@pytest.mark.postgres
def test_on_postgresql_two_scans_at_once_write_one_event_per_licence(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Rows are taken FOR UPDATE SKIP LOCKED: the two scans share the work, the outbox's
    unique key settles any overlap, and the audit chain stays whole."""
    schema = "t_expiry_scan"
    url = fresh_schema(postgres_url, schema)
    clock = FixedClock(START)
    pg = build_domain(
        make_settings(tmp_path_factory.mktemp("expiry-pg") / "data", database_url=url),
        clock=clock,
    )
    engines = [create_db_engine(url) for _ in range(2)]
    try:
        made = clones(pg, 60, today(clock) - timedelta(days=2), "PGRACE")
        policy = ExpiryPolicy()
        scans = [
            ExpiryScan(engine=e, audit=pg.services.audit, policy=policy, batch=9) for e in engines
        ]
        assert _race(scans, clock.now()) == []
        with reading(pg.services.engine) as session:
            counted = session.exec(
                select(OutboxEvent.licence).where(
                    OutboxEvent.kind == "licence.expired", col(OutboxEvent.licence).in_(made)
                )
            ).all()
            entries = session.exec(
                select(AuditEntry.object_id).where(
                    AuditEntry.action == EXPIRE, col(AuditEntry.object_id).in_(made)
                )
            ).all()
            assert verify_chain(session).intact
        assert sorted(c or "" for c in counted) == sorted(made)
        assert sorted(entries) == sorted(made)
        with pg.services.engine.connect() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = conn.exec_driver_sql(
                "EXPLAIN SELECT identifier FROM licence WHERE valid_until >= '2030-01-01' "
                "AND valid_until <= '2030-02-01'"
            ).all()
        assert any("ix_licence_valid_until" in str(row) for row in plan), plan
    finally:
        for engine in engines:
            engine.dispose()
        pg.services.close()
