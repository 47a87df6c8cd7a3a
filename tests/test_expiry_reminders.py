"""Reminders (到期提醒), overdue notices (逾期未换证告知) and the expiring-without-renewal alert,
made by the expiry scan; the holder's page says the same from today's China date.

Attacks first: a reminder must reach the holder through the message service and so carries the
holder's ID type and number — and nothing else personal (no name, no licence fields), checked on
the event's JSON; a reminder, a notice or an alert is written once however often the scan runs;
a renewed licence gets no overdue notice; a bad window setting stops the service with its name.
The clock is pinned: these tests mean the same at any hour.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from core.audit import AuditEntry
from core.clock import CHINA, FixedClock, china_today
from core.db import reading
from core.errors import InvalidInput
from licences.identifiers import LicenceIdentifier
from licences.models import Licence
from supervision.alert_records import Alert
from supervision.expiry import ALERT_RULE, REMIND, SCAN, ExpiryScan
from supervision.expiry_policy import ExpiryPolicy, expiry_notice
from supervision.outbox import OutboxEvent
from tests.domain import Domain, demo_domain
from tests.holder_login import CANYIN, HolderSite, sign_in, start_site
from tests.repo_domains import food_body, issue, new_company

START = datetime.now(UTC).replace(microsecond=0)
HOLDER = {"id_type": "001", "id": new_company(), "name": "赵氏提醒餐饮有限公司"}


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    return demo_domain(tmp_path_factory, "expiry-reminders", clock=clock)


def today(clock: FixedClock) -> date:
    return china_today(clock.now())


def issue_until(domain: Domain, last_day: date, holder: dict[str, str] | None = None) -> str:
    """A food business licence of department 0 to ``holder`` (a new company by default)."""
    body = food_body(domain, valid_until=last_day.isoformat())
    if holder is not None:
        body.update(holder=holder)
    return str(issue(domain, body)["identifier"])


def field_values(domain: Domain) -> list[str]:
    fields = domain.department(0)["sample_request"]["fields"]
    return [str(v) for v in fields.values() if len(str(v)) > 1]


def of_kind(domain: Domain, identifier: str, kind: str) -> list[OutboxEvent]:
    """The events of ``kind`` about the licence, found by the licence named in their data:
    a holder's notice has no routing key (no ``licence`` column) that a subscription could
    match."""
    with reading(domain.services.engine) as session:
        found = session.exec(select(OutboxEvent).where(OutboxEvent.kind == kind)).all()
    return [e for e in found if e.data["licence"]["identifier"] == identifier]


def scan_entries(domain: Domain) -> int:
    with reading(domain.services.engine) as session:
        return len(session.exec(select(AuditEntry).where(AuditEntry.action == SCAN)).all())


def scanner(domain: Domain, **policy: Any) -> ExpiryScan:
    services = domain.services
    return ExpiryScan(engine=services.engine, audit=services.audit, policy=ExpiryPolicy(**policy))


def test_a_reminder_names_the_holder_by_id_only_never_by_name_or_fields(
    domain: Domain, clock: FixedClock
) -> None:
    last = today(clock) + timedelta(days=10)
    identifier = issue_until(domain, last, HOLDER)
    domain.services.expiry.scan(clock.now())
    [event] = of_kind(domain, identifier, "licence.expiring")
    arcs = LicenceIdentifier.parse(identifier)
    assert event.data == {
        "licence": {
            "identifier": identifier,
            "type_code": arcs.type_code,
            "issuer_code": arcs.issuer_code,
        },
        "holder": {"id_type": "001", "id_number": HOLDER["id"]},
        "valid_until": last.isoformat(),
        "days_left": 10,
        "topic": "reminders",
    }
    raw = json.dumps(event.data, ensure_ascii=False)
    assert HOLDER["name"] not in raw and "赵" not in raw
    assert field_values(domain) and not any(value in raw for value in field_values(domain))
    assert event.dedupe == f"expiring:{identifier}:30"
    # No routing key a department's subscription (issued, type:<code>, pulled) could match.
    assert (event.licence, event.department_code, event.type_code) == (None, None, None)
    with reading(domain.services.engine) as session:
        [entry] = session.exec(
            select(AuditEntry).where(
                AuditEntry.object_id == identifier, AuditEntry.action == REMIND
            )
        ).all()
    assert entry.detail["event"] == "licence.expiring"
    assert HOLDER["id"] not in json.dumps(entry.detail)  # the audit says what, not to whom
    assert event.audit_seq == entry.seq


def test_a_reminder_is_written_once_per_licence_and_period(
    domain: Domain, clock: FixedClock
) -> None:
    """Every daily scan sees the licence in its window; only the first writes. A type with a
    period of its own (per-type setting) is reminded on its own period, once too."""
    last = today(clock) + timedelta(days=20)
    identifier = issue_until(domain, last)
    type_code = LicenceIdentifier.parse(identifier).type_code
    for _ in range(3):
        domain.services.expiry.scan(clock.now())
    assert len(of_kind(domain, identifier, "licence.expiring")) == 1
    short = scanner(domain, reminder_days_by_type={type_code: 7})
    short.scan(clock.now())  # 20 days left: outside the type's 7-day window
    assert [e.dedupe for e in of_kind(domain, identifier, "licence.expiring")] == [
        f"expiring:{identifier}:30"
    ]
    later = datetime.combine(last - timedelta(days=7), time(10), tzinfo=CHINA)
    short.scan(later.astimezone(UTC))
    short.scan(later.astimezone(UTC))
    dedupes = sorted(e.dedupe or "" for e in of_kind(domain, identifier, "licence.expiring"))
    assert dedupes == [f"expiring:{identifier}:30", f"expiring:{identifier}:7"]


def test_an_overdue_notice_once_for_an_unrenewed_licence_and_none_for_a_renewed_one(
    domain: Domain, clock: FixedClock
) -> None:
    last = today(clock)
    kept, renewed = issue_until(domain, last, HOLDER), issue_until(domain, last)
    response = domain.client.post(
        f"/api/v1/licences/{renewed}/renew", json={}, headers=domain.auth(0)
    )
    assert response.status_code == 201, response.text
    overdue = scanner(domain, overdue_days=15)
    before = datetime.combine(last + timedelta(days=14), time(12), tzinfo=CHINA)
    overdue.scan(before.astimezone(UTC))
    assert of_kind(domain, kept, "licence.overdue") == []  # expired 14 days: not yet
    after = datetime.combine(last + timedelta(days=15), time(0, 1), tzinfo=CHINA)
    overdue.scan(after.astimezone(UTC))
    overdue.scan(after.astimezone(UTC))
    [notice] = of_kind(domain, kept, "licence.overdue")
    assert notice.data["holder"] == {"id_type": "001", "id_number": HOLDER["id"]}
    assert notice.data["days_overdue"] == 15 and notice.data["topic"] == "reminders"
    assert HOLDER["name"] not in json.dumps(notice.data, ensure_ascii=False)
    assert (notice.licence, notice.department_code, notice.type_code) == (None, None, None)
    assert of_kind(domain, renewed, "licence.overdue") == []


def test_the_alert_fires_once_a_day_per_department_above_the_threshold(
    domain: Domain, clock: FixedClock
) -> None:
    """Department 1 gets three more licences expiring within the window than department 0
    has; the threshold lies between them. Run twice the same day: one alert, counted once."""
    first, last = today(clock), today(clock) + timedelta(days=30)

    def expiring(code: str) -> int:
        with reading(domain.services.engine) as session:
            rows = session.exec(select(Licence).where(Licence.issuer_code == code)).all()
        return sum(
            1
            for r in rows
            if r.status == "valid" and r.valid_until and first <= r.valid_until <= last
        )

    theirs = expiring(domain.department(0)["code"])
    with Session(domain.services.engine) as session:
        template = session.exec(
            select(Licence).where(Licence.issuer_code == domain.department(1)["code"]).limit(1)
        ).one()
        for n in range(theirs + 3 - expiring(domain.department(1)["code"])):
            row = template.model_dump()
            row.update(
                identifier=f"{template.identifier}-ALERT{n}",
                verify_code=f"ALERT-{n}",
                status_index=None,
                status="valid",
                previous=None,
                superseded_by=None,
                valid_until=first + timedelta(days=3),
            )
            session.add(Licence(**row))
        session.commit()
    ours = expiring(domain.department(1)["code"])
    assert ours == theirs + 3
    alerting = scanner(domain, alert_threshold=theirs + 1)
    once = alerting.scan(clock.now())
    runs = scan_entries(domain)
    again = alerting.scan(clock.now())
    assert (once.alerts, again.alerts) == (1, 0)
    assert scan_entries(domain) == runs  # a periodic run with nothing to do leaves no trace
    subject = f"{domain.department(1)['code']}:{first.isoformat()}"
    with reading(domain.services.engine) as session:
        alerts = session.exec(select(Alert).where(Alert.rule == ALERT_RULE)).all()
    assert [(a.subject, a.occurrences, a.department_code) for a in alerts] == [
        (subject, 1, domain.department(1)["code"])
    ]
    assert alerts[0].detail["count"] == ours
    assert "未办理延续" in alerts[0].summary and "without renewal" in alerts[0].summary


def test_a_bad_window_is_refused_by_name() -> None:
    for bad in ({"reminder_days": 0}, {"alert_days": 400}, {"reminder_days_by_type": {"X": -1}}):
        with pytest.raises(InvalidInput) as refused:
            ExpiryPolicy(**bad)
        assert "expiry_" in str(refused.value)


def test_the_notice_is_computed_from_the_china_date() -> None:
    last = date(2027, 3, 1)
    notice = expiry_notice(
        stored_status="valid", valid_until=last, today=date(2027, 1, 30), reminder_days=30
    )
    assert notice is not None and notice.days_left == 30
    assert notice.text.startswith("将于 30 天后到期（2027-03-01），请及时办理延续 / expires in 30")
    beyond = expiry_notice(
        stored_status="valid", valid_until=last, today=date(2027, 1, 29), reminder_days=30
    )
    assert beyond is None
    revoked = expiry_notice(
        stored_status="revoked", valid_until=last, today=date(2027, 3, 2), reminder_days=30
    )
    assert revoked is None  # a revoked licence is shown by its status, not told to renew


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
    with start_site(tmp_path_factory.mktemp("expiry-site") / "data") as built:
        yield built


def test_the_holder_page_shows_the_notice_at_the_window_edge(site: HolderSite) -> None:
    """The licence list and each licence page, with the page's clock pinned at 23:59 and then
    00:01 Beijing: the window's edge moves with the China date, whatever the UTC hour."""
    day = china_today(datetime.now(UTC))

    def licence(until: date) -> str:
        body = dict(site.credentials["departments"][0]["sample_request"])
        body.update(valid_from=day.isoformat(), valid_until=until.isoformat())
        response = site.client.post("/api/v1/licences", json=body, headers=site.auth(0))
        assert response.status_code == 201, response.text
        assert body["holder"]["id"] == CANYIN
        return str(response.json()["identifier"])

    edge, beyond, ending = (
        licence(day + timedelta(days=30)),
        licence(day + timedelta(days=31)),
        licence(day),
    )
    # The page's clock (and so the session's) is pinned before signing in: a session begun at
    # 23:59 is still fresh at 00:01.
    pinned = FixedClock(datetime.combine(day, time(23, 59), tzinfo=CHINA).astimezone(UTC))
    site.services.clock = pinned
    with closing(sign_in(site.base_url, CANYIN)) as client:
        page = client.get("/me").text
        assert f"将于 30 天后到期（{(day + timedelta(days=30)).isoformat()}）" in page
        assert f"（{(day + timedelta(days=31)).isoformat()}）" not in page
        one = client.get(f"/me/licences/{beyond}").text
        assert 'id="expiry-notice"' not in one
        last_day = client.get(f"/me/licences/{ending}").text
        assert "今日为有效期最后一天" in last_day and "today is its last valid day" in last_day
        pinned.advance(timedelta(minutes=2))  # 00:01 Beijing on the next day
        one = client.get(f"/me/licences/{beyond}").text
        assert (
            f"将于 30 天后到期（{(day + timedelta(days=31)).isoformat()}），请及时办理延续" in one
        )
        assert "apply for renewal" in one
        edge_page = client.get(f"/me/licences/{edge}").text
        assert "将于 29 天后到期" in edge_page
        gone = client.get(f"/me/licences/{ending}").text
        assert "已过期，请办理延续或重新申领 / expired; apply for renewal" in gone
        api = client.get(f"/api/v1/holder/licences/{ending}").json()
        assert api["expiry_notice"]["kind"] == "expired"


def test_the_cli_runs_one_scan_prints_one_line_and_is_audited(
    domain: Domain, tmp_path: Path
) -> None:
    env = {"ELICENCE_KEY_PASSPHRASE": "test-passphrase-" + domain.settings.data_dir.name}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from api.cli.main import main; main()",
            "expiry",
            "scan",
            "--data-dir",
            str(domain.settings.data_dir),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith("as_of=") and " expired=" in line and " alerts=" in line
    with reading(domain.services.engine) as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.action == "expiry.scan")).all()
    assert [e.actor for e in entries][-1] == "operator:cli"
    bad = subprocess.run(
        [
            sys.executable,
            "-c",
            "from api.cli.main import main; main()",
            "expiry",
            "scan",
            "--data-dir",
            str(domain.settings.data_dir),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "ELICENCE_EXPIRY_REMINDER_DAYS": "0"},
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
        timeout=300,
    )
    assert bad.returncode != 0 and bad.stdout == ""
    [message] = bad.stderr.strip().splitlines()
    assert message.startswith("elicence:") and "expiry_reminder_days" in message
