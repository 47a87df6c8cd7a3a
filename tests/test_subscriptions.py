"""Departments subscribe endpoints to signed events: the attacks first.

A hostile department points its subscription at the platform's own network (loopback, private,
link-local, metadata, multicast, reserved space; IPv4, IPv6 and IPv4-mapped IPv6; a host name
that resolves there), smuggles credentials or another scheme into the URL, asks for topics its
client may not have (another office's alerts, the reminders feed), or reads, deletes or replays
another department's subscription. Each is refused with a problem naming it, and nothing is
stored. Then the behaviour: the limit per department, the listing, and the audit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel, col, select

from core.audit import AuditEntry
from core.db import reading, transaction
from core.errors import InvalidInput
from migrations.runner import upgrade
from seals.clients import create_client
from supervision.endpoints import EndpointRule
from supervision.subscriptions import MAX_PER_DEPARTMENT, Subscription, SubscriptionDesk
from tests.domain import Domain, demo_domain

PUBLIC = "https://93.184.216.34/events"  # a public address: no name to resolve


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "subscriptions", events_allow_http_loopback=True)


def subscribe(domain: Domain, url: str, topics: list[str], index: int = 0,
              headers: dict[str, str] | None = None) -> Any:
    return domain.client.post("/api/v1/subscriptions", json={"url": url, "topics": topics},
                              headers=headers or domain.auth(index))


def stored(domain: Domain) -> int:
    with reading(domain.services.engine) as session:
        return len(session.exec(select(Subscription)).all())


def audited(domain: Domain, action: str) -> list[AuditEntry]:
    with reading(domain.services.engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == action)
        return list(session.exec(query.order_by(col(AuditEntry.seq))).all())


def client_key(domain: Domain, scopes: tuple[str, ...], index: int = 0) -> dict[str, str]:
    services = domain.services
    with transaction(services.engine) as session:
        _, key = create_client(session, services.audit, services.clock,
                               department_code=domain.department(index)["code"],
                               name="events-test", actor="test", scopes=scopes)
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://93.184.216.34/events", "https"),  # plain http to the world
        ("https://127.0.0.1/events", "loopback"),
        ("https://127.1.2.3:8443/events", "loopback"),
        ("https://10.0.0.8/events", "private"),
        ("https://172.16.5.4/events", "private"),
        ("https://192.168.1.1/events", "private"),
        ("https://100.64.0.1/events", "private"),  # shared address space (CGNAT)
        ("https://169.254.169.254/latest/meta-data", "link-local"),  # a cloud metadata service
        ("https://224.0.0.251/events", "multicast"),
        ("https://240.0.0.1/events", "reserved"),
        ("https://0.0.0.0/events", "unspecified"),
        ("https://[::1]/events", "loopback"),
        ("https://[fe80::1]/events", "link-local"),
        ("https://[fd00::1]/events", "private"),
        ("https://[ff02::1]/events", "multicast"),
        ("https://[::ffff:127.0.0.1]/events", "loopback"),  # IPv4-mapped IPv6
        ("https://[::ffff:10.0.0.1]/events", "private"),
        ("https://user:secret@93.184.216.34/events", "user name or password"),
        ("https://93.184.216.34@127.0.0.1/events", "user name or password"),
        ("ftp://93.184.216.34/events", "https"),
        ("file:///etc/passwd", "https"),
        ("javascript:alert(1)", "https"),
        ("https://93.184.216.34:99999/events", "invalid port"),
        ("https:///events", "no host"),
        ("https://93.184.216.34/events#frag", "fragment"),
        ("https://93.184.216.34/e vents", "whitespace"),
        ("https://93.184.216.34/" + "a" * 2030, "longer than 2048"),
        # the loopback allowance admits http://127.0.0.1:<port> and nothing wider
        ("http://127.0.0.2:8080/events", "http://127.0.0.1:<port>"),
        ("http://localhost:8080/events", "http://127.0.0.1:<port>"),
        ("http://127.0.0.1/events", "http://127.0.0.1:<port>"),
        ("http://[::1]:8080/events", "http://127.0.0.1:<port>"),
    ],
)
def test_an_endpoint_on_the_platforms_own_network_or_malformed_is_refused(
    domain: Domain, url: str, named: str
) -> None:
    before = stored(domain)
    response = subscribe(domain, url, ["issued"])
    assert response.status_code == 422, (url, response.text)
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["field"] == "url"
    assert named in problem["detail"], problem["detail"]
    assert stored(domain) == before


def test_a_host_name_is_refused_when_any_address_it_resolves_to_is_not_public(
    domain: Domain,
) -> None:
    names = {
        "intranet.example.gov.cn": ["10.1.2.3"],
        "mixed.example.gov.cn": ["93.184.216.34", "127.0.0.1"],
        "v6.example.gov.cn": ["::ffff:169.254.169.254"],
        "nowhere.example.gov.cn": [],
        "hooks.example.gov.cn": ["93.184.216.34"],
    }
    desk = SubscriptionDesk(
        engine=domain.services.engine, audit=domain.services.audit, clock=domain.services.clock,
        rule=EndpointRule(resolve=lambda host, _port: names[host]),
    )

    def make(host: str) -> None:
        desk.create(department_code=domain.department(0)["code"], client_id="c", actor="test",
                    scopes=frozenset({"events:subscribe"}), url=f"https://{host}/hook",
                    topics=["issued"])

    for host, why in [("intranet", "10.1.2.3"), ("mixed", "127.0.0.1"),
                      ("v6", "169.254.169.254"), ("nowhere", "does not resolve")]:
        with pytest.raises(InvalidInput, match=why):
            make(f"{host}.example.gov.cn")
    make("hooks.example.gov.cn")  # a public one is accepted


def test_plain_http_to_loopback_needs_the_test_setting() -> None:
    with pytest.raises(InvalidInput, match="https"):
        EndpointRule().check_url("http://127.0.0.1:8080/events")
    with pytest.raises(InvalidInput, match="loopback"):
        EndpointRule().check_url("https://127.0.0.1:8443/events")
    assert EndpointRule(allow_http_loopback=True).check_url("http://127.0.0.1:8080/e")


@pytest.mark.parametrize(
    ("topics", "status", "member"),
    [
        (["alerts"], 403, "supervise"),  # a department is no supervision office
        (["reminders"], 403, "events:reminders"),  # nor the platform's message service
        (["issued", "alerts"], 403, "supervise"),
        (["everything"], 422, "unknown topic"),
        (["type:1135010000360001XN999"], 422, "not in the catalogue"),
        (["type:123"], 422, "21 characters"),
        ([], 422, "at least one topic"),
    ],
)
def test_a_topic_the_client_may_not_have_is_refused(
    domain: Domain, topics: list[str], status: int, member: str
) -> None:
    before = stored(domain)
    response = subscribe(domain, PUBLIC, topics)
    assert response.status_code == status, response.text
    assert member in response.json()["detail"]
    if status == 403:
        assert response.json()["scope"] == member
    assert stored(domain) == before


def test_a_client_without_the_subscribe_scope_is_refused_everywhere(domain: Domain) -> None:
    issue_only = client_key(domain, ("licences:issue",))
    mine = subscribe(domain, PUBLIC, ["issued"]).json()["id"]
    calls = [
        ("POST", "/api/v1/subscriptions", {"url": PUBLIC, "topics": ["issued"]}),
        ("GET", "/api/v1/subscriptions", None),
        ("DELETE", f"/api/v1/subscriptions/{mine}", None),
        ("GET", f"/api/v1/subscriptions/{mine}/deliveries", None),
        ("POST", f"/api/v1/subscriptions/{mine}/deliveries/evt_x/replay", None),
    ]
    for method, path, body in calls:
        response = domain.client.request(method, path, json=body, headers=issue_only)
        assert response.status_code == 403, (method, path, response.text)
        assert "events:subscribe" in response.json()["detail"]
    assert [s["id"] for s in domain.client.get(
        "/api/v1/subscriptions", headers=domain.auth()).json()["items"]].count(mine) == 1
    assert domain.client.delete(f"/api/v1/subscriptions/{mine}",
                                headers=domain.auth()).status_code == 204


def test_another_departments_subscription_is_not_found(domain: Domain) -> None:
    mine = subscribe(domain, PUBLIC, ["issued"]).json()["id"]
    other = domain.auth(1)
    for method, path in [
        ("GET", f"/api/v1/subscriptions/{mine}/deliveries"),
        ("GET", f"/api/v1/subscriptions/{mine}/deliveries?state=dead"),
        ("POST", f"/api/v1/subscriptions/{mine}/deliveries/evt_0/replay"),
        ("DELETE", f"/api/v1/subscriptions/{mine}"),
    ]:
        response = domain.client.request(method, path, headers=other)
        assert response.status_code == 404, (method, path, response.text)
        assert "no such subscription" in response.json()["detail"]
    listed = domain.client.get("/api/v1/subscriptions", headers=other).json()["items"]
    assert mine not in [s["id"] for s in listed]
    still = domain.client.get("/api/v1/subscriptions", headers=domain.auth()).json()["items"]
    assert mine in [s["id"] for s in still]  # nothing the other department did removed it
    assert domain.client.delete(f"/api/v1/subscriptions/{mine}",
                                headers=domain.auth()).status_code == 204


def test_a_supervision_office_subscribes_to_alerts_and_nothing_else(domain: Domain) -> None:
    office = client_key(domain, ("supervise",), index=1)
    response = subscribe(domain, PUBLIC, ["alerts"], headers=office)
    assert response.status_code == 201, response.text
    refused = subscribe(domain, PUBLIC, ["issued"], headers=office)
    assert refused.status_code == 403 and refused.json()["scope"] == "events:subscribe"
    messages = client_key(domain, ("events:reminders",), index=1)
    assert subscribe(domain, PUBLIC, ["reminders"], headers=messages).status_code == 201
    for headers, sid in ((office, response.json()["id"]),):
        assert domain.client.delete(f"/api/v1/subscriptions/{sid}", headers=headers).status_code == 204


def test_a_department_holds_at_most_ten_subscriptions(domain: Domain) -> None:
    headers = domain.auth(1)
    for item in domain.client.get("/api/v1/subscriptions", headers=headers).json()["items"]:
        domain.client.delete(f"/api/v1/subscriptions/{item['id']}", headers=headers)
    made = [subscribe(domain, f"https://93.184.216.34/hook/{i}", ["issued"], 1).json()["id"]
            for i in range(MAX_PER_DEPARTMENT)]
    over = subscribe(domain, PUBLIC, ["issued"], 1)
    assert over.status_code == 409 and over.json()["limit"] == MAX_PER_DEPARTMENT
    assert "at most 10" in over.json()["detail"]
    assert domain.client.delete(f"/api/v1/subscriptions/{made[0]}", headers=headers).status_code == 204
    assert subscribe(domain, PUBLIC, ["issued"], 1).status_code == 201
    for item in domain.client.get("/api/v1/subscriptions", headers=headers).json()["items"]:
        domain.client.delete(f"/api/v1/subscriptions/{item['id']}", headers=headers)


def test_a_subscription_is_listed_and_its_making_and_ending_are_audited(domain: Domain) -> None:
    food = domain.department(0)["sample_request"]["licence_type"]
    response = subscribe(domain, "http://127.0.0.1:9/events",
                         ["issued", "pulled", f"type:{food.lower()}", "issued"])
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["id"].startswith("sub_") and made["status"] == "active"
    assert made["topics"] == ["issued", "pulled", f"type:{food}"]  # canonical, once each
    listed = domain.client.get("/api/v1/subscriptions", headers=domain.auth()).json()["items"]
    assert made["id"] in [s["id"] for s in listed]
    assert domain.client.get(f"/api/v1/subscriptions/{made['id']}/deliveries?state=lost",
                             headers=domain.auth()).status_code == 422
    assert domain.client.delete(f"/api/v1/subscriptions/{made['id']}",
                                headers=domain.auth()).status_code == 204
    assert domain.client.delete(f"/api/v1/subscriptions/{made['id']}",
                                headers=domain.auth()).status_code == 404
    [created] = [e for e in audited(domain, "subscription.create") if e.object_id == made["id"]]
    [deleted] = [e for e in audited(domain, "subscription.delete") if e.object_id == made["id"]]
    code = domain.department(0)["code"]
    assert created.actor.startswith(f"department:{code}/client:")
    assert created.detail == {"url": "http://127.0.0.1:9/events",
                              "topics": ["issued", "pulled", f"type:{food}"]}
    assert deleted.detail == {"cancelled": 0}


def test_the_models_match_revision_0019(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        cursor = conn.execute(text("SELECT name, outbox_id FROM event_delivery_cursor")).all()
    engine.dispose()
    mine = [d for d in diff if any(t in repr(d) for t in ("event_subscription", "event_delivery"))]
    assert mine == [], mine
    assert [tuple(row) for row in cursor] == [("fanout", 0)]


def test_the_audit_trail_keeps_the_url_without_its_query(domain: Domain) -> None:
    """A receiver may authenticate us by a secret in its URL's query: the owner sees it, the
    audit trail (read by supervisors) does not."""
    url = "https://93.184.216.34/hook?token=s3cr3t-of-the-receiver"
    made = subscribe(domain, url, ["issued"]).json()
    assert made["url"] == url
    [entry] = [e for e in audited(domain, "subscription.create") if e.object_id == made["id"]]
    assert entry.detail["url"] == "https://93.184.216.34/hook?…"
    assert "s3cr3t" not in json.dumps(entry.detail, ensure_ascii=False)
    assert domain.client.delete(f"/api/v1/subscriptions/{made['id']}", headers=domain.auth()).status_code == 204
