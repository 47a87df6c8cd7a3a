"""Grants: a signed-in holder lets a department use a licence for one service item and business
number; the department pulls only that item's fields (the sealed PDF only under a grant that
covers the whole licence: tests/test_department_lanes.py); every pull is logged
and shown to the holder; a withdrawn or expired grant stops at once; every refusal is
problem+json and leaves nothing behind. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, func, select

from api.edge.holder_session import COOKIE, HolderPrincipal
from core.audit import AuditEntry
from core.clock import FixedClock
from core.db import reading, transaction
from licences.grants import LicenceGrant, latest_end
from licences.pulls import LicencePull
from licences.repository import china_today
from seals.clients import create_client
from tests.conftest import fresh_schema, make_settings
from tests.domain import Domain, build_domain
from tests.repo_domains import BACKENDS, issue, new_company, new_person, physician_body

ITEM = "000126022000-01"  # the demo physician type: category and workplace
OTHER_ITEM = "000126021000-01"  # category, scope and workplace
BUSINESS = "FZ-2025-000123"
THIRD = "11350100003600036H"  # a third department, with a pull-only client


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module", params=BACKENDS)
def domain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, clock: FixedClock
) -> Domain:
    data_dir = tmp_path_factory.mktemp(f"grants-{request.param}") / "data"
    url = None
    if request.param == "postgres":
        base: str = request.getfixturevalue("postgres_url")
        url = fresh_schema(base, "t_grants")
    built = build_domain(make_settings(data_dir, database_url=url), clock=clock)
    services = built.services
    with transaction(services.engine) as session:
        services.seals.add_department(
            session,
            actor="test",
            code=THIRD,
            name="示范市人力资源和社会保障局",
            division_code="350100",
            level="municipal",
        )
        session.flush()
        _, key = create_client(
            session,
            services.audit,
            services.clock,
            department_code=THIRD,
            name="人社办件系统",
            actor="test",
            scopes=("licences:pull",),
        )
        _, issue_only = create_client(
            session,
            services.audit,
            services.clock,
            department_code=built.department(0)["code"],
            name="issue-only",
            actor="test",
            scopes=("licences:issue",),
        )
    built.credentials["third"] = {"Authorization": f"Bearer {key}"}
    built.credentials["issue_only"] = {"Authorization": f"Bearer {issue_only}"}
    return built


class Holder:
    """A holder's browser, signed in by a session cookie sealed the way sign-in seals it."""

    def __init__(self, domain: Domain, id_number: str, name: str = "张测试") -> None:
        principal = HolderPrincipal(
            id_type="111",
            id_number=id_number,
            name=name,
            subject=f"idp-{id_number[-6:]}",
            issuer="https://idp.example.gov.cn",
        )
        sessions = domain.services.holder_sessions
        now = domain.services.clock.now()
        value = sessions.seal(principal, now)
        _, self.csrf = sessions.open(value, now)
        self.client = TestClient(domain.client.app)
        self.client.cookies.set(COOKIE, value)
        self.id_number = id_number

    def grant(self, headers: dict[str, Any] | None = None, **body: Any) -> httpx.Response:
        return self.client.post(
            "/api/v1/holder/grants",
            json=body,
            headers={"X-CSRF-Token": self.csrf} if headers is None else headers,
        )

    def withdraw(self, grant_id: str) -> httpx.Response:
        return self.client.post(
            f"/api/v1/holder/grants/{grant_id}/withdraw", headers={"X-CSRF-Token": self.csrf}
        )

    def usage(self, **params: Any) -> dict[str, Any]:
        response = self.client.get("/api/v1/holder/usage", params=params)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        return response.json()  # type: ignore[no-any-return]


def licence_for_new_person(domain: Domain) -> tuple[dict[str, Any], Holder]:
    person = new_person()
    issued = issue(domain, physician_body(domain, holder={"id_type": "111", "id": person,
                                                         "name": "张测试"}), index=1)
    return issued, Holder(domain, person)


def grant_body(domain: Domain, identifier: str, **overrides: Any) -> dict[str, Any]:
    today = china_today(domain.services.clock.now())
    return {
        "identifier": identifier,
        "department": domain.department(0)["code"],
        "service_item": ITEM,
        "business_number": BUSINESS,
        "valid_until": (today + timedelta(days=30)).isoformat(),
        **overrides,
    }


def pull(
    domain: Domain,
    identifier: str,
    *,
    what: str = "",
    headers: dict[str, str] | None = None,
    **params: str,
) -> httpx.Response:
    query = {"service_item": ITEM, "business_number": BUSINESS, **params}
    return domain.client.get(
        f"/api/v1/licences/{identifier}{what}",
        params={k: v for k, v in query.items() if v},
        headers=domain.auth(0) if headers is None else headers,
    )


def state(domain: Domain) -> tuple[int, int, int]:
    """Grants, pulls and audit entries: what a refusal must leave as it was."""
    with reading(domain.services.engine) as session:
        return (
            session.exec(select(func.count()).select_from(LicenceGrant)).one(),
            session.exec(select(func.count()).select_from(LicencePull)).one(),
            session.exec(select(func.count()).select_from(AuditEntry)).one(),
        )


def audit_actions(domain: Domain, object_id: str) -> list[tuple[str, str]]:
    with reading(domain.services.engine) as session:
        rows = session.exec(
            select(AuditEntry).where(AuditEntry.object_id == object_id).order_by(col(AuditEntry.seq))
        )
        return [(row.action, row.outcome) for row in rows]


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


def test_grant_pull_usage_withdraw(domain: Domain, clock: FixedClock) -> None:
    issued, holder = licence_for_new_person(domain)
    identifier = issued["identifier"]
    created = holder.grant(**grant_body(domain, identifier))
    assert created.status_code == 201, created.text
    grant = created.json()
    assert grant["status"] == "active" and grant["department"] == domain.department(0)["code"]
    assert grant["department_name"] == domain.department(0)["name"]
    assert [f["title"] for f in grant["fields"]] == ["执业类别", "执业地点"]

    # the department the holder granted pulls only what the service item needs
    clock.advance(timedelta(seconds=1))
    record = pull(domain, identifier)
    assert record.status_code == 200, record.text
    body = record.json()
    assert body["fields"] == {"category": "临床", "workplace": "示范市第一医院"}
    assert body["holder"]["name"] == "张*试"
    assert body["holder"]["id"] != holder.id_number and body["holder"]["id"].endswith(
        holder.id_number[-4:]
    )
    assert body["status"] == "valid" and body["status_reason"] is None
    assert body["links"]["pdf"].endswith(f"/pdf?service_item={ITEM}&business_number={BUSINESS}")
    # two fields and a masked holder are not the whole licence: the sealed PDF is refused
    clock.advance(timedelta(seconds=1))
    refused_pdf = is_problem(pull(domain, identifier, what="/pdf"), 403)
    assert refused_pdf["missing"] == "fields"
    document = domain.pdf(issued, 1)  # the issuing department's own download
    # the issuing department keeps its full access, without a grant, and is not logged as a pull
    own = domain.client.get(f"/api/v1/licences/{identifier}", headers=domain.auth(1)).json()
    assert own["fields"]["scope"] == "内科专业" and own["holder"]["id"] == holder.id_number

    # the holder sees who used the licence: the two pulls, then a verification, newest first
    clock.advance(timedelta(seconds=1))
    assert domain.verify_pdf(document)["indication"] == "PASSED"
    entries = holder.usage()["items"]
    assert [(e["kind"], e.get("what")) for e in entries] == [
        ("verification", None),
        ("pull", "record"),
    ]
    assert entries[1]["department"] == domain.department(0)["code"]
    assert entries[1]["department_name"] == domain.department(0)["name"]
    assert entries[1]["client_name"] == "demo" and entries[1]["client_id"]
    assert entries[1]["service_item"] == ITEM and entries[1]["business_number"] == BUSINESS
    assert entries[0]["channel"] == "api-upload" and entries[0]["indication"] == "PASSED"

    # withdrawn: the next pull is refused at once, naming what is missing
    withdrawn = holder.withdraw(grant["id"])
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    before = state(domain)
    refused = is_problem(pull(domain, identifier), 403)
    assert refused["missing"] == "live_grant" and refused["grant_status"] == "withdrawn"
    is_problem(pull(domain, identifier, what="/pdf"), 403)
    grants, pulls, audit = state(domain)
    assert (grants, pulls) == before[:2] and audit == before[2] + 2  # refusals are audited
    assert len(holder.usage()["items"]) == 2
    is_problem(holder.withdraw(grant["id"]), 409)

    assert audit_actions(domain, grant["id"]) == [("grant.create", "ok"), ("grant.withdraw", "ok")]
    pulls_audited = [a for a in audit_actions(domain, identifier) if a[0] == "licence.pull"]
    assert pulls_audited == [("licence.pull", "ok")] + [("licence.pull", "refused")] * 3
    listed = holder.client.get("/api/v1/holder/grants").json()["items"]
    assert [(g["id"], g["status"]) for g in listed] == [(grant["id"], "withdrawn")]


def test_a_pull_must_match_department_item_and_business_number(domain: Domain) -> None:
    issued, holder = licence_for_new_person(domain)
    identifier = issued["identifier"]
    assert holder.grant(**grant_body(domain, identifier)).status_code == 201
    before = state(domain)
    cases = [
        ({"service_item": OTHER_ITEM}, None, "service_item"),
        ({"business_number": "FZ-2025-999999"}, None, "business_number"),
        ({"service_item": ""}, None, "service_item"),
        ({"business_number": ""}, None, "business_number"),
        ({}, domain.credentials["third"], "grant"),
    ]
    for params, headers, missing in cases:
        for what in ("", "/pdf"):
            body = is_problem(pull(domain, identifier, what=what, headers=headers, **params), 403)
            assert body["missing"] == missing, (params, body)
    # a credential of the granted department without licences:pull is refused before any lookup
    body = is_problem(pull(domain, identifier, headers=domain.credentials["issue_only"]), 403)
    assert "licences:pull" in body["detail"]
    grants, pulls, audit = state(domain)
    assert (grants, pulls) == before[:2] and audit == before[2] + 2 * len(cases)
    # a malformed parameter is a 422 naming it; an unknown licence a 404: neither is audited
    assert is_problem(pull(domain, identifier, business_number="办件 1"), 422)["field"] == (
        "business_number"
    )
    unknown = identifier[:-14] + "ZZZZZZZZZZZZ" + identifier[-2:]
    assert pull(domain, unknown).status_code in (404, 422)
    assert state(domain)[2] == audit
    assert pull(domain, identifier).status_code == 200


def test_grants_are_refused_unless_everything_checks_out(domain: Domain) -> None:
    issued, holder = licence_for_new_person(domain)
    identifier = issued["identifier"]
    other, _ = licence_for_new_person(domain)  # someone else's licence
    today = china_today(domain.services.clock.now())
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({"identifier": other["identifier"]}, 404, "identifier"),
        ({"department": new_company()}, 404, "department"),
        ({"department": "91350100M000100Y4X"}, 422, "department"),
        ({"department": domain.department(1)["code"]}, 422, "department"),
        ({"service_item": "000999999999-01"}, 422, "service_item"),
        ({"business_number": "办件 1"}, 422, "business_number"),
        ({"business_number": "A" * 65}, 422, "business_number"),
        ({"valid_until": (today - timedelta(days=1)).isoformat()}, 422, "valid_until"),
        ({"valid_until": (today + timedelta(days=367)).isoformat()}, 422, "valid_until"),
        ({"unexpected": "x"}, 422, "unexpected"),
    ]
    before = state(domain)
    for overrides, status, field in cases:
        body = is_problem(holder.grant(**{**grant_body(domain, identifier), **overrides}), status)
        assert body.get("field") == field, (overrides, body)
    # without the session's CSRF token, with another's, or with a department's key: refused
    body = grant_body(domain, identifier)
    is_problem(holder.grant(headers={}, **body), 403)
    is_problem(holder.grant(headers={"X-CSRF-Token": "x" + holder.csrf}, **body), 403)
    is_problem(holder.grant(headers={"X-CSRF-Token": "é".encode("latin-1")}, **body), 403)
    is_problem(domain.client.post("/api/v1/holder/grants", json=body), 401)
    is_problem(domain.client.post("/api/v1/holder/grants", json=body, headers=domain.auth(0)), 403)
    forged = TestClient(domain.client.app)
    forged.cookies.set(COOKIE, "e30.AAAA")
    is_problem(forged.get("/api/v1/holder/grants"), 401)
    assert state(domain) == before

    # a licence that is not current cannot be granted
    suspended = domain.client.post(
        f"/api/v1/licences/{identifier}/suspend", json={"reason": "核查"}, headers=domain.auth(1)
    )
    assert suspended.status_code == 200, suspended.text
    before = state(domain)
    assert is_problem(holder.grant(**body), 409)["current_status"] == "suspended"
    assert state(domain) == before


def test_a_holder_reaches_only_their_own_grants(domain: Domain) -> None:
    issued, holder = licence_for_new_person(domain)
    grant = holder.grant(**grant_body(domain, issued["identifier"])).json()
    _, stranger = licence_for_new_person(domain)
    before = state(domain)
    is_problem(stranger.withdraw(grant["id"]), 404)
    assert stranger.client.get("/api/v1/holder/grants").json()["items"] == []
    assert stranger.usage()["items"] == []
    assert state(domain) == before
    # the same grant twice is a conflict naming the live one
    again = is_problem(holder.grant(**grant_body(domain, issued["identifier"])), 409)
    assert again["grant_id"] == grant["id"]
    assert state(domain) == before


def test_usage_pages_by_cursor_without_repeats(domain: Domain) -> None:
    issued, holder = licence_for_new_person(domain)
    identifier = issued["identifier"]
    assert holder.grant(**grant_body(domain, identifier)).status_code == 201
    for _ in range(3):  # all at the same instant: the cursor must still order them
        assert pull(domain, identifier).status_code == 200
        qr = domain.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]})
        assert qr.status_code == 200
    everything = holder.usage(limit=100)["items"]
    assert len(everything) == 6 and everything[0]["kind"] == "pull"
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = holder.usage(limit=2, **({"cursor": cursor} if cursor else {}))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    is_problem(holder.client.get("/api/v1/holder/usage", params={"cursor": "not-a-cursor"}), 422)


def test_an_expired_grant_stops_working(domain: Domain, clock: FixedClock) -> None:
    issued, holder = licence_for_new_person(domain)
    identifier = issued["identifier"]
    today = china_today(clock.now())
    grant = holder.grant(**grant_body(domain, identifier, valid_until=today.isoformat())).json()
    assert pull(domain, identifier).status_code == 200  # its last day
    clock.advance(timedelta(days=1))
    try:
        body = is_problem(pull(domain, identifier), 403)
        assert body["missing"] == "live_grant" and body["grant_status"] == "expired"
        holder = Holder(domain, holder.id_number)  # yesterday's session has expired
        listed = holder.client.get("/api/v1/holder/grants", params={"status": "expired"}).json()
        assert [g["id"] for g in listed["items"]] == [grant["id"]]
        is_problem(holder.withdraw(grant["id"]), 409)
    finally:
        clock.advance(timedelta(days=-1))


def test_pages_list_give_and_withdraw_with_the_form_token(domain: Domain) -> None:
    issued, holder = licence_for_new_person(domain)
    identifier = issued["identifier"]
    signed_out = TestClient(domain.client.app).get("/me/grants")
    assert signed_out.status_code == 401 and 'href="/me/login"' in signed_out.text
    page = holder.client.get("/me/grants")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert f'name="csrf" value="{holder.csrf}"' in page.text
    assert f'value="{identifier} {ITEM}"' in page.text and "<script>" not in page.text

    form = {
        "target": f"{identifier} {ITEM}",
        "department": domain.department(0)["code"],
        "business_number": BUSINESS,
        "valid_until": (china_today(domain.services.clock.now()) + timedelta(days=7)).isoformat(),
    }
    before = state(domain)
    assert holder.client.post("/me/grants", data=form).status_code == 403  # no token
    bad = holder.client.post("/me/grants", data={**form, "csrf": holder.csrf,
                                                 "business_number": "办件 1"})
    assert bad.status_code == 422 and "business_number" in bad.text
    assert state(domain) == before
    done = holder.client.post("/me/grants", data={**form, "csrf": holder.csrf},
                              follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/me/grants?done=created"
    grant_id = holder.client.get("/api/v1/holder/grants").json()["items"][0]["id"]
    listing = holder.client.get("/me/grants?done=created").text
    assert "已授权" in listing and f'action="/me/grants/{grant_id}/withdraw"' in listing

    assert pull(domain, identifier).status_code == 200
    usage = holder.client.get("/me/usage")
    assert usage.status_code == 200 and domain.department(0)["name"] in usage.text
    assert BUSINESS in usage.text

    assert holder.client.post(f"/me/grants/{grant_id}/withdraw").status_code == 403
    withdrawn = holder.client.post(
        f"/me/grants/{grant_id}/withdraw", data={"csrf": holder.csrf}, follow_redirects=False
    )
    assert withdrawn.status_code == 303
    assert pull(domain, identifier).status_code == 403
    assert re.search(r'data-status="withdrawn"', holder.client.get("/me/grants").text)


def test_catalogue_declares_fields_per_service_item(domain: Domain) -> None:
    physician = domain.client.get(
        f"/api/v1/catalogue/licence-types/{domain.department(1)['sample_request']['licence_type']}"
    ).json()
    assert physician["service_item_fields"][ITEM] == ["category", "workplace"]
    code = domain.department(0)["code"] + "301"
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"premises": {"type": "string", "title": "场所", "maxLength": 64}},
    }
    definition = {
        "code": code,
        "name": "测试许可",
        "authority_level": "municipal",
        "holder_category": "legal_person",
        "validity_years": 3,
        "service_items": ["000125006000-09"],
        "field_schema": schema,
    }
    url = "/api/v1/catalogue/licence-types"
    for declared in ({"000125006000-08": ["premises"]}, {"000125006000-09": ["seats"]},
                     {"000125006000-09": []}):
        refused = domain.client.post(
            url, json={**definition, "service_item_fields": declared}, headers=domain.auth(0)
        )
        assert is_problem(refused, 422)["field"].startswith("service_item_fields"), declared
    created = domain.client.post(
        url,
        json={**definition, "service_item_fields": {"000125006000-09": ["premises"]}},
        headers=domain.auth(0),
    )
    assert created.status_code == 201, created.text
    assert created.json()["service_item_fields"] == {"000125006000-09": ["premises"]}
    update = {k: v for k, v in definition.items() if k != "code"}
    changed = domain.client.put(f"{url}/{code}", json=update, headers=domain.auth(0))
    assert changed.json()["version"] == 2 and changed.json()["service_item_fields"] == {}
    versions = domain.client.get(f"{url}/{code}/versions").json()
    assert versions[0]["definition"]["service_item_fields"] == {"000125006000-09": ["premises"]}


def test_a_grant_lasts_at_most_a_year() -> None:
    assert latest_end(date(2024, 2, 29)) == date(2025, 2, 28)
    assert latest_end(date(2025, 3, 1)) == date(2026, 3, 1)


def cli(domain: Domain, *args: str) -> tuple[int, str, str]:
    """``elicence`` in this process, against the domain's data directory and database."""
    import contextlib
    import io
    import sys

    from api.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    settings = domain.settings
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        patch.setattr(sys, "argv", ["elicence", *args, "--data-dir", str(settings.data_dir)])
        assert settings.key_passphrase is not None
        patch.setenv("ELICENCE_KEY_PASSPHRASE", settings.key_passphrase.get_secret_value())
        patch.setenv("ELICENCE_PUBLIC_BASE_URL", settings.public_base_url)
        if settings.database_url:
            patch.setenv("ELICENCE_DATABASE_URL", settings.database_url)
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def test_the_operator_declares_a_service_items_fields(domain: Domain) -> None:
    code = domain.department(1)["sample_request"]["licence_type"]
    url = f"/api/v1/catalogue/licence-types/{code}"
    before = domain.client.get(url).json()
    item = "000126099000-01"
    refused = cli(domain, "catalogue", "service-item", code, item, "--field", "salary")
    assert refused[0] != 0 and "salary" in refused[2] and "Traceback" not in refused[2]
    assert domain.client.get(url).json()["version"] == before["version"]

    done = cli(domain, "catalogue", "service-item", code, item, "--field", "category")
    assert done[0] == 0, done[2]
    after = domain.client.get(url).json()
    assert after["version"] == before["version"] + 1
    assert item in after["service_items"] and after["service_item_fields"][item] == ["category"]
    removed = cli(domain, "catalogue", "service-item", code, item, "--remove")
    assert removed[0] == 0, removed[2]
    assert item not in domain.client.get(url).json()["service_item_fields"]
