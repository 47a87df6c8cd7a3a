"""What a supervision office does with alerts, over the JSON API: it sees those of the
departments under its division (and those of no department), acknowledges one with a comment.

Attacks first: a department's own credentials (even an admin client's) are refused; an office of
another division gets 404 for an alert it may not see, exactly as for an id that does not exist;
an empty, oversized or control-character comment is refused naming the field and leaves the alert
open; a second acknowledgement is 409, and of two at once exactly one wins; nothing a department
does — resuming, revoking, issuing again, withdrawing its type, rotating or revoking its client —
closes an alert. Then the listing's filters and pages, and the audit entry of an acknowledgement.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlmodel import col, select

from core.audit import AuditEntry, verify_chain
from core.db import reading, transaction
from seals.clients import create_client
from supervision.alert_desk import AlertDesk
from supervision.alerts import RULES
from supervision.expiry import ALERT_RULE as EXPIRY_RULE
from tests.alert_support import (
    FUJIAN,
    GUANGDONG,
    START,
    WallClock,
    alert_domain,
    alerts,
    forged,
    from_address,
    office,
)
from tests.domain import Domain

ALERTS = "/api/v1/supervision/alerts"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module", params=["sqlite"])
def domain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return alert_domain(request, tmp_path_factory, "alert-desk", WallClock(START))


@pytest.fixture(scope="module")
def offices(domain: Domain) -> dict[str, dict[str, str]]:
    return {"fujian": office(domain, FUJIAN), "guangdong": office(domain, GUANGDONG)}


@pytest.fixture(scope="module")
def raised(domain: Domain) -> dict[str, str]:
    """A repeated-failure alert on department 0's licence (four forged codes of it from one
    address), and one of no department (four texts that are no code at all, from another)."""
    issued = domain.issue()
    code = forged(domain, issued)
    prober = from_address(domain, "198.51.100.20")
    for _ in range(4):
        assert prober.post("/api/v1/verify", json={"qr": code}).status_code == 200
    scanner = from_address(domain, "198.51.100.21")
    for number in range(4):
        text = f"https://elsewhere.example/v/NOTACODE{number:012d}"
        assert scanner.post("/api/v1/verify", json={"qr": text}).status_code == 200
    named = domain.services.sources.source_of("198.51.100.20")
    nobody = domain.services.sources.source_of("198.51.100.21")
    (mine,) = alerts(domain, "repeated_failures_source", named)
    (anyone,) = alerts(domain, "repeated_failures_source", nobody)
    assert (mine.department_code, anyone.department_code) == (domain.department()["code"], None)
    return {"department": mine.id, "none": anyone.id, "licence": issued["identifier"]}


def bearer(office: dict[str, str]) -> dict[str, str]:
    return {"Authorization": office["Authorization"]}


def listed(domain: Domain, office: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    response = domain.client.get(ALERTS, params=query, headers=bearer(office))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()["items"]  # type: ignore[no-any-return]


def acknowledge(domain: Domain, office: dict[str, str], alert_id: str, comment: Any) -> Any:
    return domain.client.post(
        f"{ALERTS}/{alert_id}/acknowledge", json={"comment": comment}, headers=bearer(office)
    )


# Attacks ---------------------------------------------------------------------------------------


def test_a_departments_credentials_never_reach_the_alerts(
    domain: Domain, raised: dict[str, str]
) -> None:
    services = domain.services
    with transaction(services.engine) as session:
        _, admin = create_client(
            session, services.audit, services.clock, department_code=domain.department()["code"],
            name="admin", actor="test", scopes=("admin",),
        )  # fmt: skip
    for headers in (domain.auth(0), {"Authorization": f"Bearer {admin}"}):
        for response in (
            domain.client.get(ALERTS, headers=headers),
            domain.client.post(
                f"{ALERTS}/{raised['department']}/acknowledge",
                json={"comment": "关闭"},
                headers=headers,
            ),
        ):
            assert response.status_code == 403, response.text
            assert response.headers["content-type"].startswith(PROBLEM)
            assert "supervise" in response.json()["detail"]
    assert domain.client.get(ALERTS).status_code == 401
    assert all(a.acknowledged_at is None for a in alerts(domain))


def test_an_office_sees_only_its_division_and_alerts_of_no_department(
    domain: Domain, offices: dict[str, dict[str, str]], raised: dict[str, str]
) -> None:
    fujian = {a["id"] for a in listed(domain, offices["fujian"], state="all")}
    guangdong = {a["id"] for a in listed(domain, offices["guangdong"], state="all")}
    assert {raised["department"], raised["none"]} <= fujian
    assert raised["none"] in guangdong and raised["department"] not in guangdong
    # acknowledging what it may not see is answered as for an alert that does not exist
    hidden = acknowledge(domain, offices["guangdong"], raised["department"], "越权关闭")
    missing = acknowledge(domain, offices["guangdong"], "alt_0000000000000000", "不存在")
    assert (hidden.status_code, missing.status_code) == (404, 404)
    assert hidden.json()["detail"] == missing.json()["detail"]
    assert hidden.headers["content-type"].startswith(PROBLEM)
    (alert,) = [a for a in alerts(domain) if a.id == raised["department"]]
    assert alert.acknowledged_at is None


@pytest.mark.parametrize(
    ("comment", "problem"),
    [
        ("", "comment"),
        ("   ", "1 to 1024"),
        ("x" * 1025, "comment"),
        ("已处理\x07", "control characters"),
        ("已处理\u202egnp.exe", "control characters"),
        ("第一行\n第二行", "control characters"),
    ],
)
def test_a_comment_must_be_clear_text_of_1_to_1024_characters(
    domain: Domain,
    offices: dict[str, dict[str, str]],
    raised: dict[str, str],
    comment: str,
    problem: str,
) -> None:
    response = acknowledge(domain, offices["fujian"], raised["none"], comment)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert problem in response.text
    (alert,) = [a for a in alerts(domain) if a.id == raised["none"]]
    assert (alert.acknowledged_at, alert.comment) == (None, None)


def test_nothing_a_department_does_closes_an_alert(domain: Domain) -> None:
    services = domain.services
    first = domain.issue()
    path = f"/api/v1/licences/{first['identifier']}"
    auth = domain.auth(0)
    assert (
        domain.client.post(f"{path}/suspend", json={"reason": "核查"}, headers=auth).status_code
        == 200
    )
    domain.client.post("/api/v1/verify", json={"qr": first["links"]["verify"]})
    (alert,) = alerts(domain, "verify_not_valid", first["identifier"])
    # everything the department may do to the licence, its type and its credentials
    assert domain.client.post(f"{path}/resume", json={}, headers=auth).status_code == 200
    again = domain.client.post(f"{path}/reissue", json={"reason": "遗失补发"}, headers=auth)
    assert again.status_code == 201, again.text
    newer = f"/api/v1/licences/{again.json()['identifier']}"
    revoked = domain.client.post(f"{newer}/revoke", json={"reason": "吊销"}, headers=auth)
    assert revoked.status_code == 200, revoked.text
    domain.issue()
    type_code = domain.department()["sample_request"]["licence_type"]
    assert domain.client.delete(
        f"/api/v1/catalogue/licence-types/{type_code}", headers=auth
    ).status_code in (204, 403, 409)
    client_id = next(
        c.id for c in services.clients.clients() if c.department_code == domain.department()["code"]
    )
    services.clients.rotate(client_id, actor="department")
    after = [a for a in alerts(domain) if a.id == alert.id]
    assert [(a.acknowledged_at, a.occurrences) for a in after] == [(None, 1)]
    # and no route but the supervision offices' (their API and their pages) touches alerts
    paths = domain.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    offices_only = ("/api/v1/supervision/", "/supervise/")
    assert all(p.startswith(offices_only) for p in paths if "alert" in p)
    assert "/api/v1/supervision/alerts/{alert_id}/acknowledge" in paths


def test_acknowledged_once_then_409_and_of_two_at_once_one_wins(
    domain: Domain, offices: dict[str, dict[str, str]], raised: dict[str, str]
) -> None:
    fujian = offices["fujian"]
    response = acknowledge(domain, fujian, raised["department"], "已联系发证部门核查 / checked")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["comment"] == "已联系发证部门核查 / checked"
    assert body["acknowledged_by"].startswith(f"supervisor:{fujian['code']}/client:")
    assert body["rule_name"] == {
        "zh": "同一来源反复核验失败",
        "en": "repeated failed verifications from one source",
    }
    assert body["department"]["code"] == domain.department()["code"]
    assert body["subject_shown"].startswith("src_") and body["subject_shown"].endswith("…")
    again = acknowledge(domain, fujian, raised["department"], "再次处理")
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)
    assert raised["department"] not in {a["id"] for a in listed(domain, fujian)}
    assert raised["department"] in {a["id"] for a in listed(domain, fujian, state="all")}
    # a race: two supervisors acknowledge the same alert at once
    desk: AlertDesk = domain.services.alert_desk
    outcomes: list[str] = []

    def attempt(name: str) -> None:
        try:
            desk.acknowledge(fujian["code"], raised["none"], f"{name} 处理", f"supervisor:{name}")
            outcomes.append("ok")
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in ("甲", "乙")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["Conflict", "ok"]


def test_an_acknowledgement_is_audited_without_the_comment_text(
    domain: Domain, offices: dict[str, dict[str, str]], raised: dict[str, str]
) -> None:
    with reading(domain.services.engine) as session:
        entries = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "alert.acknowledge")
            .order_by(col(AuditEntry.seq))
        ).all()
        assert verify_chain(session).intact
    by_alert = {e.object_id: e for e in entries}
    entry = by_alert[raised["department"]]
    assert entry.actor.startswith(f"supervisor:{offices['fujian']['code']}/")
    assert entry.detail["rule"] == "repeated_failures_source"
    assert entry.detail["office"] == offices["fujian"]["code"]
    assert len(entry.detail["comment_sha256"]) == 64
    assert "核查" not in json.dumps(entry.detail, ensure_ascii=False)


def test_listing_filters_and_pages(
    domain: Domain, offices: dict[str, dict[str, str]], raised: dict[str, str]
) -> None:
    fujian = offices["fujian"]
    every = listed(domain, fujian, state="all")
    assert len(every) >= 3
    stamps = [(a["raised_at"], a["id"]) for a in every]
    assert stamps == sorted(stamps, reverse=True)
    only = listed(domain, fujian, state="all", rule="verify_not_valid")
    assert only and {a["rule"] for a in only} == {"verify_not_valid"}
    first = domain.client.get(ALERTS, params={"state": "all", "limit": 2}, headers=bearer(fujian))
    page = first.json()
    assert [a["id"] for a in page["items"]] == [a["id"] for a in every[:2]]
    rest = listed(domain, fujian, state="all", before=page["next_before"], limit=200)
    assert [a["id"] for a in rest] == [a["id"] for a in every[2:]]
    for rule in RULES:  # every rule the offices may see can be asked for, the scan's too
        assert domain.client.get(ALERTS, params={"rule": rule}, headers=bearer(fujian)).is_success
    assert EXPIRY_RULE in RULES
    unknown = domain.client.get(ALERTS, params={"rule": "no_such_rule"}, headers=bearer(fujian))
    assert unknown.status_code == 422 and "no_such_rule" in unknown.json()["detail"]
    for bad in ({"state": "closed"}, {"limit": 0}, {"limit": 201}):
        response = domain.client.get(ALERTS, params=bad, headers=bearer(fujian))
        assert response.status_code == 422 and response.headers["content-type"].startswith(PROBLEM)


def test_a_page_cursor_of_another_divisions_alert_is_no_cursor(
    domain: Domain, offices: dict[str, dict[str, str]], raised: dict[str, str]
) -> None:
    guangdong = bearer(offices["guangdong"])
    hidden = domain.client.get(ALERTS, params={"before": raised["department"]}, headers=guangdong)
    missing = domain.client.get(
        ALERTS, params={"before": "alt_0000000000000000"}, headers=guangdong
    )
    assert (hidden.status_code, missing.status_code) == (422, 422)
    assert hidden.json()["detail"] == missing.json()["detail"]
    seen = domain.client.get(ALERTS, params={"before": raised["none"]}, headers=guangdong)
    assert seen.status_code == 200
