"""The alert rules, evaluated in the transaction of the audit entry that triggers them.

Attacks first, over HTTP where a user would act: a burst of codes signed by a foreign key from
one address, forgeries of one real licence's number from many addresses, a dead licence shown
at a counter, a department sealing licences just before it suspends its seal, a department
issuing far above its own baseline or outside working hours. Each rule's threshold boundary is
checked (K-1 quiet, K fires), the verification's answer is the same with and without an alert,
a PASSED verification costs no statement more than with no rules at all, and the audit chain
still verifies. On SQLite and on PostgreSQL (a schema of its own); the clock is pinned to China
wall-clock times, so the suite gives the same answers at any hour.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, event, insert, inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col, func, select

from api.container.alerting import SOURCE_KEY, alert_thresholds, build_source_keyer
from api.settings import Settings
from core.audit import AuditEntry, verify_chain
from core.db import reading, transaction
from core.errors import InvalidInput, Unavailable
from licences.models import Licence
from migrations.runner import alembic_config
from supervision import failures
from supervision.alert_records import Severity, raise_alert
from supervision.alerts import AlertRules
from supervision.failures import FailedVerification
from supervision.rules_issuance import Baselines
from supervision.sources import SourceKeyer
from tests.alert_support import (
    FUJIAN,
    START,
    WallClock,
    alert_domain,
    alerts,
    forged,
    from_address,
    office,
)
from tests.conftest import fresh_schema
from tests.domain import Domain, make_settings

ATTACKER = "198.51.100.7"
TABLE = "failed_verification"


@dataclass
class Site:
    domain: Domain
    clock: WallClock


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Site:
    clock = WallClock(START)
    return Site(alert_domain(request, tmp_path_factory, "alert-rules", clock), clock)


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the engine runs inside the block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def verify(client: Any, code: str) -> dict[str, Any]:
    response = client.post("/api/v1/verify", json={"qr": code})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def post(domain: Domain, path: str, body: dict[str, Any] | None = None, index: int = 0) -> None:
    response = domain.client.post(path, json=body or {}, headers=domain.auth(index))
    assert response.status_code == 200, response.text


def seal_of(domain: Domain, identifier: str) -> str:
    with reading(domain.services.engine) as session:
        licence = session.get(Licence, identifier)
        assert licence is not None
        return licence.seal_code


def clone_licences(domain: Domain, index: int, times: list[Any], tag: str) -> None:
    """Licences of department ``index`` issued at ``times`` (rows only: history, not actions)."""
    code = domain.department(index)["code"]
    with transaction(domain.services.engine) as session:
        model = session.exec(select(Licence).where(Licence.issuer_code == code)).first()
        assert model is not None
        rows = []
        for number, at in enumerate(times):
            row = model.model_dump()
            row.update(
                identifier=f"{tag}-{number:05d}",
                serial=f"{tag}{number:05d}",
                verify_code=f"{tag}-CODE-{number:05d}",
                issued_at=at,
                previous=None,
                superseded_by=None,
                status_index=None,
            )
            rows.append(row)
        session.execute(insert(Licence), rows)


# Attacks ---------------------------------------------------------------------------------------


def test_forged_codes_from_one_address_raise_one_alert_with_the_count(site: Site) -> None:
    domain = site.domain
    issued = domain.issue()
    code = forged(domain, issued)
    attacker = from_address(domain, ATTACKER)
    answers = [verify(attacker, code) for _ in range(3)]  # K - 1 = 3
    assert alerts(domain, "repeated_failures_source") == []
    answers.append(verify(attacker, code))  # the K-th raises the alert ...
    assert all(answer == answers[0] for answer in answers)  # ... and answers the same
    assert (answers[0]["indication"], answers[0]["sub_indication"]) == (
        "INDETERMINATE",
        "NO_SIGNING_CERTIFICATE_FOUND",
    )
    assert answers[0].get("licence") is None  # the forged claims are not believed
    (alert,) = alerts(domain, "repeated_failures_source")
    source = domain.services.sources.source_of(ATTACKER)
    assert source is not None and alert.subject == source
    assert source.startswith("src_") and ATTACKER not in source
    assert (alert.occurrences, alert.detail["count"], alert.detail["window_minutes"]) == (1, 4, 10)
    # every failure named the same real licence: its issuer's supervisors see it
    assert alert.detail["licence"] == issued["identifier"]
    assert alert.department_code == domain.department()["code"]
    assert alert.summary.startswith("同一来源") and " / 4 failed or unknown" in alert.summary
    verify(attacker, code)
    (alert,) = alerts(domain, "repeated_failures_source")
    assert (alert.occurrences, alert.detail["count"]) == (2, 5)
    # the verification entry keeps the keyed source, never the address
    with reading(domain.services.engine) as session:
        last = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "licence.verify")
            .order_by(col(AuditEntry.seq).desc())
        ).first()
    assert last is not None and last.detail["source"] == source
    assert (
        ATTACKER not in json.dumps(last.detail) and last.detail["claimed"] == issued["identifier"]
    )
    # another address's single failure is no source alert, but the sixth failure naming the
    # licence reaches the licence rule (K = 6)
    assert alerts(domain, "repeated_failures_licence", issued["identifier"]) == []
    verify(domain.client, code)
    assert [a.subject for a in alerts(domain, "repeated_failures_source")] == [source]
    (forgeries,) = alerts(domain, "repeated_failures_licence", issued["identifier"])
    assert forgeries.detail["count"] == 6


def test_tampered_and_unreadable_files_from_one_address_count_for_the_source(site: Site) -> None:
    domain = site.domain
    genuine = domain.pdf(domain.issue())
    tampered = genuine.replace(b"/Producer", b"/Producex", 1)
    assert tampered != genuine
    unreadable = b"%PDF-1.7\n% not a document\n%%EOF\n"
    uploader = from_address(domain, "198.51.100.50")
    source = domain.services.sources.source_of("198.51.100.50")
    answers = []
    for number, data in enumerate((tampered, unreadable, tampered, unreadable)):
        response = uploader.post(
            "/api/v1/verify", files={"file": ("licence.pdf", data, "application/pdf")}
        )
        assert response.status_code == 200, response.text
        answers.append((response.json()["indication"], response.json()["sub_indication"]))
        if number < 3:
            assert alerts(domain, "repeated_failures_source", source) == []
    assert answers[0] == ("FAILED", "HASH_FAILURE")
    assert answers[1][0] == "INDETERMINATE"
    (alert,) = alerts(domain, "repeated_failures_source", source)
    assert (alert.detail["count"], alert.detail["licence"], alert.department_code) == (
        4,
        None,
        None,
    )


def test_forgeries_of_one_licence_from_many_addresses_raise_the_licence_rule(site: Site) -> None:
    domain = site.domain
    issued = domain.issue()
    code = forged(domain, issued)
    for number in range(1, 6):  # K - 1 = 5, each from an address of its own
        verify(from_address(domain, f"203.0.113.{number}"), code)
    assert alerts(domain, "repeated_failures_licence", issued["identifier"]) == []
    verify(from_address(domain, "203.0.113.6"), code)
    (alert,) = alerts(domain, "repeated_failures_licence", issued["identifier"])
    assert (alert.severity, alert.department_code) == ("critical", domain.department()["code"])
    assert (alert.detail["count"], alert.occurrences) == (6, 1)
    assert alert.summary.startswith(f"证照 {issued['identifier']} 在 10 分钟内核验失败 6 次")
    sources = {domain.services.sources.source_of(f"203.0.113.{n}") for n in range(1, 7)}
    assert not [a for a in alerts(domain, "repeated_failures_source") if a.subject in sources]


def test_a_failure_exactly_the_window_old_no_longer_counts(site: Site) -> None:
    domain = site.domain
    code = forged(domain, domain.issue())
    prober = from_address(domain, "198.51.100.99")
    source = domain.services.sources.source_of("198.51.100.99")
    for _ in range(3):
        verify(prober, code)
    site.clock.advance(timedelta(minutes=10))
    verify(prober, code)  # three are now 10 minutes old: one in the window
    assert alerts(domain, "repeated_failures_source", source) == []
    for _ in range(2):
        verify(prober, code)
    assert alerts(domain, "repeated_failures_source", source) == []  # 3 in the window
    verify(prober, code)
    (alert,) = alerts(domain, "repeated_failures_source", source)
    assert alert.detail["count"] == 4


def test_a_dead_licence_shown_at_a_counter_raises_verify_not_valid(site: Site) -> None:
    domain = site.domain
    revoked, suspended = domain.issue(), domain.issue()
    post(domain, f"/api/v1/licences/{revoked['identifier']}/revoke", {"reason": "吊销测试"})
    post(domain, f"/api/v1/licences/{suspended['identifier']}/suspend", {"reason": "核查"})
    first = verify(domain.client, revoked["links"]["verify"])
    again = verify(domain.client, revoked["links"]["verify"])
    assert first == again
    assert (first["indication"], first["sub_indication"]) == ("FAILED", "REVOKED")
    held = verify(domain.client, suspended["links"]["verify"])
    assert (held["indication"], held["sub_indication"]) == ("FAILED", "SUSPENDED")
    (dead,) = alerts(domain, "verify_not_valid", revoked["identifier"])
    (paused,) = alerts(domain, "verify_not_valid", suspended["identifier"])
    assert (dead.occurrences, dead.detail["sub_indication"]) == (2, "REVOKED")
    assert (paused.occurrences, paused.detail["sub_indication"]) == (1, "SUSPENDED")
    assert dead.department_code == domain.department()["code"]
    assert dead.summary.startswith(f"证照 {revoked['identifier']} 已吊销或注销")
    # a genuine dead licence is not a forgery: nothing counts toward the licence rule
    assert alerts(domain, "repeated_failures_licence", revoked["identifier"]) == []


def test_licences_sealed_just_before_the_seal_is_suspended_are_listed(site: Site) -> None:
    domain = site.domain
    site.clock.advance(timedelta(minutes=31))  # earlier licences are out of the window
    early = domain.issue()
    seal = seal_of(domain, early["identifier"])
    site.clock.advance(timedelta(minutes=30))  # ``early`` is now exactly 30 minutes old
    late = [domain.issue()["identifier"] for _ in range(2)]
    post(domain, f"/api/v1/seals/{seal}/suspend")
    (alert,) = alerts(domain, "seal_used_before_suspension", seal)
    assert sorted(alert.detail["licences"]) == sorted(late)
    assert early["identifier"] not in alert.detail["licences"]
    assert (alert.severity, alert.department_code) == ("critical", domain.department()["code"])
    assert alert.detail["action"] == "seal.suspend" and alert.detail["more"] is False
    assert f"印章 {seal} 暂停前 30 分钟内加盖了 2 份证照" in alert.summary
    post(domain, f"/api/v1/seals/{seal}/resume")
    site.clock.advance(timedelta(minutes=31))
    post(domain, f"/api/v1/seals/{seal}/suspend")  # nothing sealed in the window: no change
    (alert,) = alerts(domain, "seal_used_before_suspension", seal)
    assert alert.occurrences == 1
    post(domain, f"/api/v1/seals/{seal}/resume")


def test_a_new_departments_burst_is_judged_by_the_floor(site: Site) -> None:
    domain = site.domain
    site.clock.advance(timedelta(minutes=61))
    now = site.clock.now()
    clone_licences(domain, 1, [now - timedelta(minutes=5)] * 2, "FLOOR")
    domain.issue(1)  # 3 in the last hour: the floor, no more
    code = domain.department(1)["code"]
    assert alerts(domain, "issuance_burst", code) == []
    domain.issue(1)
    (alert,) = alerts(domain, "issuance_burst", code)
    assert alert.detail["last_hour"] == 4 and alert.detail["hourly_mean"] < 0.1
    assert alert.department_code == code


def test_a_burst_is_measured_against_the_departments_own_baseline(site: Site) -> None:
    domain = site.domain
    site.clock.advance(timedelta(minutes=61))
    now = site.clock.now()
    start = now - timedelta(hours=1) - timedelta(days=28)
    history = [start + timedelta(minutes=30 * n, seconds=1) for n in range(1344)]  # 2 an hour
    clone_licences(domain, 0, history, "BASE")
    clone_licences(domain, 0, [now - timedelta(minutes=5)] * 3, "HOUR")
    code = domain.department(0)["code"]
    # the earlier tests' issuances (above the floor, with no history) raised one already
    fujian = office(domain, FUJIAN)
    for earlier in alerts(domain, "issuance_burst", code):
        domain.services.alert_desk.acknowledge(fujian["code"], earlier.id, "测试前已核实", "t")
    domain.issue()  # 4 in the last hour: above the floor (3), not above 2 x 2.0 an hour
    assert [a for a in alerts(domain, "issuance_burst", code) if a.acknowledged_at is None] == []
    domain.issue()
    (alert,) = [a for a in alerts(domain, "issuance_burst", code) if a.acknowledged_at is None]
    assert alert.detail["last_hour"] == 5
    assert 2.0 <= alert.detail["hourly_mean"] < 2.1  # 1,344 clones and the few issued here
    assert "近一小时发证 5 张" in alert.summary


def test_issuing_outside_working_hours_in_china(site: Site) -> None:
    domain = site.domain
    code = domain.department(1)["code"]
    fujian = office(domain, FUJIAN)
    site.clock.china(2026, 12, 2, 17, 59)
    domain.issue(1)
    assert alerts(domain, "off_hours_issuance", code) == []
    site.clock.china(2026, 12, 2, 18, 1)
    evening = domain.issue(1)
    (alert,) = alerts(domain, "off_hours_issuance", code)
    assert alert.detail["last_licence"] == evening["identifier"]
    assert alert.detail["china_time"].startswith("2026-12-02T18:01")
    assert "北京时间 2026-12-02 18:01 非工作时间发证" in alert.summary
    domain.services.alert_desk.acknowledge(fujian["code"], alert.id, "已核实加班", "supervisor:t")
    site.clock.china(2026, 12, 3, 8, 59)
    domain.issue(1)
    opened = [a for a in alerts(domain, "off_hours_issuance", code) if a.acknowledged_at is None]
    assert len(opened) == 1 and opened[0].occurrences == 1
    site.clock.china(2026, 12, 3, 9, 0)
    domain.issue(1)
    assert [a.occurrences for a in alerts(domain, "off_hours_issuance", code)] == [1, 1]
    site.clock.china(2026, 12, 5, 10, 0)  # a Saturday
    domain.issue(1)
    assert [a.occurrences for a in alerts(domain, "off_hours_issuance", code)] == [1, 2]


# Cost and integrity ----------------------------------------------------------------------------


def test_a_passed_verification_costs_no_statement_for_the_rules(site: Site) -> None:
    domain = site.domain
    services = domain.services
    code = domain.issue()["links"]["verify"]
    assert verify(domain.client, code)["indication"] == "PASSED"  # warm the caches
    with statements(services.engine) as ruled:
        assert verify(domain.client, code)["indication"] == "PASSED"
    (rules,) = [o for o in services.audit.observers if isinstance(o, AlertRules)]
    position = services.audit.observers.index(rules)
    services.audit.observers.remove(rules)
    try:
        with statements(services.engine) as bare:
            assert verify(domain.client, code)["indication"] == "PASSED"
    finally:
        services.audit.observers.insert(position, rules)
    assert len(ruled) == len(bare)
    assert not [s for s in ruled if "failed_verification" in s or "alert" in s]
    # the same counter sees the rules' statements on a failure: it would catch a query
    with statements(services.engine) as failing:
        verify(domain.client, forged(domain, domain.issue()))
    assert [s for s in failing if "failed_verification" in s]


def test_the_baseline_is_counted_once_per_department_every_ten_minutes(site: Site) -> None:
    engine, now = site.domain.services.engine, site.clock.now()
    code = site.domain.department()["code"]
    baselines = Baselines()
    with reading(engine) as session:
        with statements(engine) as first:
            mean = baselines.mean(session, code, now)
        with statements(engine) as again:
            assert baselines.mean(session, code, now + timedelta(minutes=9, seconds=59)) == mean
        with statements(engine) as later:
            baselines.mean(session, code, now + timedelta(minutes=10))
    assert (len(first), len(again), len(later)) == (1, 0, 1)
    assert "licence" in first[0] and "issuer_code" in first[0]


def test_old_failures_are_pruned_by_every_thousandth_entry(site: Site) -> None:
    services = site.domain.services
    (rules,) = [o for o in services.audit.observers if isinstance(o, AlertRules)]
    now = site.clock.now()

    def failure(seq: int) -> AuditEntry:
        return AuditEntry(
            seq=seq, at=now, actor="public", action="licence.verify", object_type="licence",
            object_id="unknown-code", outcome="FAILED", prev_hash="0" * 64, hash="0" * 64,
            detail={"sub_indication": "UNKNOWN_CODE", "source": "src_" + "9" * 24},
        )  # fmt: skip

    with transaction(services.engine) as session:
        for age in (timedelta(days=1, seconds=1), timedelta(hours=23)):
            failures.record(session, at=now - age, source="src_old", identifier=None, audit_seq=1)
        rules(session, failure(10**9 + 1))  # not a multiple of 1,000: nothing pruned
        assert _failures_from(session, "src_old") == 2
        rules(session, failure(10**9))
        assert _failures_from(session, "src_old") == 1  # the one older than a day is gone
        session.rollback()


def _failures_from(session: Any, source: str) -> int:
    query = select(func.count()).where(FailedVerification.source == source)
    return int(session.exec(query).one())


def test_an_open_alert_counts_up_in_one_statement_with_the_latest_figures(site: Site) -> None:
    services = site.domain.services
    subject = "来源" + "f" * 198  # past the 128 characters stored: still the one alert

    def fire(count: int) -> str:
        with transaction(services.engine) as session:
            return raise_alert(
                session,
                services.audit,
                rule="repeated_failures_source",
                severity=Severity.WARNING,
                subject=subject,
                summary="同一来源反复核验失败 / repeated failed verifications from one source",
                at=site.clock.now(),
                department_code=None,
                detail={"count": count, "window_minutes": 10, "licence": None},
            )

    first = fire(10)
    with statements(services.engine) as seen:
        again = fire(11)
    touching = [s for s in seen if "alert" in s.lower().split("where")[0]]
    assert again == first
    assert len(touching) == 1 and touching[0].lstrip().upper().startswith("UPDATE")
    assert not any("audit_entry" in s.lower() for s in seen)  # raised once, audited once
    (alert,) = alerts(site.domain, "repeated_failures_source", subject[:128])
    assert (alert.occurrences, alert.detail) == (
        2,
        {"count": 11, "window_minutes": 10, "licence": None},
    )


def test_the_audit_chain_verifies_after_the_alerts(site: Site) -> None:
    with reading(site.domain.services.engine) as session:
        report = verify_chain(session)
        raised = session.exec(select(func.count()).where(AuditEntry.action == "alert.raise")).one()
    assert report.intact, report
    assert raised >= 8


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def migration_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    base: str = request.getfixturevalue("postgres_url")
    return fresh_schema(base, "t_alert_migration")


def test_revision_0020_creates_the_table_the_model_describes(migration_url: str) -> None:
    command.upgrade(alembic_config(migration_url), "0020")
    engine = create_engine(migration_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes(TABLE)}
    flat = [d for item in diff for d in (item if isinstance(item, list) else [item])]
    assert [d for d in flat if TABLE in repr(d)] == []
    assert indexes == {
        "ix_failed_verification_source": ["source", "at"],
        "ix_failed_verification_identifier": ["identifier", "at"],
    }
    engine.dispose()


def test_working_hours_that_end_before_they_start_are_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", alert_work_start_hour=18, alert_work_end_hour=9)
    with pytest.raises(InvalidInput, match="ELICENCE_ALERT_WORK_START_HOUR \\(18\\)"):
        alert_thresholds(settings)
    service_default = Settings(data_dir=tmp_path / "ok")  # the service's, not the tests' hours
    assert (service_default.alert_work_start_hour, service_default.alert_work_end_hour) == (9, 18)
    assert alert_thresholds(service_default).work_end_hour == 18


def test_the_source_key_is_owner_only_and_kept_across_restarts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    first = build_source_keyer(settings).source_of("203.0.113.9")
    assert first == build_source_keyer(settings).source_of("203.0.113.9")  # a restart
    elsewhere = build_source_keyer(make_settings(tmp_path / "other")).source_of("203.0.113.9")
    assert first is not None and elsewhere is not None and first != elsewhere
    assert len(first) == len("src_") + 24 and "203.0.113.9" not in first
    path = settings.data_dir / "secrets" / SOURCE_KEY
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    with pytest.raises(Unavailable, match=f"chmod 600 {path}"):
        build_source_keyer(settings)
    with pytest.raises(ValueError, match="32 bytes"):
        SourceKeyer(b"too short")
    assert SourceKeyer(b"k" * 32).source_of(None) is None
