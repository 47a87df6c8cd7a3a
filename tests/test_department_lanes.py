"""Departments stay in their lane: nothing one department writes changes what another
department's licences, stamped copies or verification pages show.

* A holder's registered name is corrected only by the operator or by a client holding
  ``holders:correct:<holder category>``; a sealed licence keeps showing the name it was issued
  under, wherever it is shown (record, verification page and JSON, pulls, stamped copies).
* A catalogue type without an issuer list is issued by its defining authority alone.
* A pull under a grant that does not cover every field of the licence and its holder never
  releases the sealed PDF: it is refused (403, ``missing: fields``) and the refusal audited.
"""

from __future__ import annotations

import copy
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, func, select

from api.edge.holder_session import COOKIE, HolderPrincipal
from core.audit import AuditEntry
from core.clock import FixedClock
from core.db import reading, transaction
from licences.models import Holder
from licences.pulls import LicencePull
from licences.repository import china_today
from seals.clients import create_client
from tests.domain import Domain, demo_domain
from tests.repo_domains import new_company, new_person
from tests.tools import require

PHYSICIAN_ITEM = "000126022000-01"  # the demo physician type: category and workplace only
FOOD_ITEM = "000130003000-01"  # the demo food type: premises and business form only
REGISTRY = "11350100003600044D"  # a third department: the resident registry (公安)
PROBLEM_403 = "https://elicence.example/problems/403"
# Names whose masked forms differ, so a masked answer still tells them apart.
FIRST, CORRECTED = "林志远", "林志强"
FIRST_MASKED, CORRECTED_MASKED = "林*远", "林*强"


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    built = demo_domain(tmp_path_factory, "lanes", clock=clock)
    with transaction(built.services.engine) as session:
        built.services.seals.add_department(
            session,
            actor="test",
            code=REGISTRY,
            name="示范市公安局",
            division_code="350100",
            level="municipal",
        )
    return built


def scoped_client(domain: Domain, department: str, *scopes: str) -> dict[str, str]:
    services = domain.services
    with transaction(services.engine) as session:
        _, key = create_client(
            session,
            services.audit,
            services.clock,
            department_code=department,
            name="scoped",
            actor="test",
            scopes=scopes,
        )
    return {"Authorization": f"Bearer {key}"}


class HolderBrowser:
    """A holder signed in by a session cookie sealed the way sign-in seals it."""

    def __init__(self, domain: Domain, id_type: str, id_number: str, name: str) -> None:
        principal = HolderPrincipal(
            id_type=id_type,
            id_number=id_number,
            name=name,
            subject=f"idp-{id_number[-6:]}",
            issuer="https://idp.example.gov.cn",
        )
        sessions = domain.services.holder_sessions
        now = domain.services.clock.now()
        value = sessions.seal(principal, now)
        _, csrf = sessions.open(value, now)
        self.client = TestClient(domain.client.app, headers={"X-CSRF-Token": csrf})
        self.client.cookies.set(COOKIE, value)

    def grant(self, domain: Domain, identifier: str, department: str, item: str) -> str:
        today = china_today(domain.services.clock.now())
        response = self.client.post(
            "/api/v1/holder/grants",
            json={
                "identifier": identifier,
                "department": department,
                "service_item": item,
                "business_number": "LANE-0001",
                "valid_until": (today + timedelta(days=10)).isoformat(),
            },
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def issue(domain: Domain, index: int, body: dict[str, Any]) -> dict[str, Any]:
    response = domain.client.post("/api/v1/licences", json=body, headers=domain.auth(index))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def physician(domain: Domain, person: str, name: str = FIRST) -> dict[str, Any]:
    """A physician certificate by the health commission (department 1)."""
    body = dict(domain.department(1)["sample_request"])
    body.pop("valid_from", None)
    body["holder"] = {"id_type": "111", "id": person, "name": name}
    return issue(domain, 1, body)


def define_type(domain: Domain, suffix: str, **changes: Any) -> str:
    """A type defined by the market regulator (department 0), with no issuer list."""
    code = domain.department(0)["code"] + suffix
    body: dict[str, Any] = {
        "code": code,
        "name": "从业人员健康登记",
        "authority_level": "municipal",
        "holder_category": "natural_person",
        "validity_years": 1,
        "service_items": [],
        "field_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["post"],
            "properties": {"post": {"type": "string", "title": "岗位", "maxLength": 32}},
        },
        **changes,
    }
    response = domain.client.post(
        "/api/v1/catalogue/licence-types", json=body, headers=domain.auth(0)
    )
    assert response.status_code == 201, response.text
    assert response.json()["issuer_codes"] == []
    return code


def verification(domain: Domain, issued: dict[str, Any]) -> dict[str, Any]:
    path = "/" + issued["links"]["verify"].split("/", 3)[3]
    response = domain.client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def verification_page(domain: Domain, url: str) -> str:
    response = domain.client.get("/" + url.split("/", 3)[3])
    assert response.status_code == 200, response.text
    return response.text


def record(domain: Domain, identifier: str, index: int = 1) -> dict[str, Any]:
    response = domain.client.get(f"/api/v1/licences/{identifier}", headers=domain.auth(index))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def rename(domain: Domain, person: str, name: str, headers: dict[str, str]) -> httpx.Response:
    return domain.client.patch(
        f"/api/v1/holders/111/{person}", json={"name": name}, headers=headers
    )


def audit_rows(domain: Domain, action: str, object_id: str) -> list[AuditEntry]:
    with reading(domain.services.engine) as session:
        return list(
            session.exec(
                select(AuditEntry)
                .where(AuditEntry.action == action, AuditEntry.object_id == object_id)
                .order_by(col(AuditEntry.seq))
            )
        )


def holder_row(domain: Domain, person: str) -> Holder:
    with reading(domain.services.engine) as session:
        return session.exec(select(Holder).where(Holder.id_number == person)).one()


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "copy.pdf"
    path.write_bytes(data)
    return subprocess.run(
        [require("pdftotext"), str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


# --- holders ------------------------------------------------------------------------------------


def test_a_department_cannot_rename_another_departments_holder(domain: Domain) -> None:
    person = new_person()
    theirs = physician(domain, person)  # the health commission's licence
    # The market regulator defines a type of its own with no issuer list and issues one to her
    # under her registered name, which makes it "a department that issued to this holder".
    code = define_type(domain, "301")
    issue(
        domain,
        0,
        {
            "licence_type": code,
            "holder": {"id_type": "111", "id": person, "name": FIRST},
            "fields": {"post": "餐饮服务"},
        },
    )
    refused = rename(domain, person, CORRECTED, domain.auth(0))
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == PROBLEM_403
    assert problem["missing_scope"] == "holders:correct:natural_person"
    assert "holders:correct:natural_person" in problem["detail"]

    # nothing changed: the registered name, the other department's licence, the audit's renames
    assert holder_row(domain, person).name == FIRST
    assert record(domain, theirs["identifier"])["holder"]["name"] == FIRST
    assert verification(domain, theirs)["licence"]["holder_name"] == FIRST_MASKED
    row_id = f"holder:{holder_row(domain, person).id}"
    attempts = audit_rows(domain, "holder.rename", row_id)
    assert [(a.outcome, a.detail.get("missing_scope")) for a in attempts] == [
        ("refused", "holders:correct:natural_person")
    ]
    # the health commission's own client, without the scope, is refused the same way
    assert rename(domain, person, CORRECTED, domain.auth(1)).status_code == 403
    assert holder_row(domain, person).name == FIRST


def corrected_licence(domain: Domain) -> tuple[str, dict[str, Any], HolderBrowser]:
    """A person's physician certificate, granted to the market regulator, then the person's
    registered name corrected by the resident registry."""
    person = new_person()
    theirs = physician(domain, person)
    holder = HolderBrowser(domain, "111", person, FIRST)
    holder.grant(domain, theirs["identifier"], domain.department(0)["code"], PHYSICIAN_ITEM)
    registry = scoped_client(domain, REGISTRY, "holders:correct:natural_person")
    corrected = rename(domain, person, CORRECTED, registry)
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["name"] == CORRECTED
    return person, theirs, holder


def stamped_copy(holder: HolderBrowser, identifier: str) -> dict[str, Any]:
    made = holder.client.post(
        f"/api/v1/holder/licences/{identifier}/stamped-copies", json={"purpose": "执业注册变更"}
    )
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def test_a_correction_leaves_every_sealed_licence_as_issued(domain: Domain) -> None:
    person, theirs, holder = corrected_licence(domain)
    assert holder_row(domain, person).name == CORRECTED
    renames = audit_rows(domain, "holder.rename", f"holder:{holder_row(domain, person).id}")
    assert [(r.outcome, r.detail["from"], r.detail["to"]) for r in renames] == [
        ("ok", FIRST_MASKED, CORRECTED_MASKED)
    ]

    # the sealed licence shows the name it was issued under, wherever it is shown
    assert record(domain, theirs["identifier"])["holder"]["name"] == FIRST
    assert verification(domain, theirs)["licence"]["holder_name"] == FIRST_MASKED
    page = verification_page(domain, theirs["links"]["verify"])
    assert FIRST_MASKED in page and CORRECTED_MASKED not in page
    pulled = domain.client.get(
        f"/api/v1/licences/{theirs['identifier']}",
        params={"service_item": PHYSICIAN_ITEM, "business_number": "LANE-0001"},
        headers=domain.auth(0),
    )
    assert pulled.status_code == 200, pulled.text
    assert pulled.json()["holder"]["name"] == FIRST_MASKED
    mine = holder.client.get(f"/api/v1/holder/licences/{theirs['identifier']}").json()
    assert mine["holder_name"] == FIRST
    # a stamped copy made now is of the licence as issued, and verifies as such
    made = stamped_copy(holder, theirs["identifier"])
    data = holder.client.get(made["links"]["pdf"]).content
    assert domain.verify_pdf(data)["licence"]["holder_name"] == FIRST_MASKED
    copy_page = verification_page(domain, made["verify_url"])
    assert FIRST_MASKED in copy_page and CORRECTED_MASKED not in copy_page

    # the registered name is what later issuances are checked against
    body = dict(domain.department(1)["sample_request"])
    body.pop("valid_from", None)
    body["holder"] = {"id_type": "111", "id": person, "name": FIRST}
    stale = domain.client.post("/api/v1/licences", json=body, headers=domain.auth(1))
    assert stale.status_code == 409 and stale.json()["field"] == "holder.name"
    assert f"PATCH /api/v1/holders/111/{person}" in stale.json()["detail"]
    fresh = physician(domain, person, CORRECTED)
    assert record(domain, fresh["identifier"])["holder"]["name"] == CORRECTED
    # the issuing department's own amendment is a new version under the corrected name
    amended = domain.client.post(
        f"/api/v1/licences/{theirs['identifier']}/amend",
        json={"fields": {"workplace": "示范市第二医院"}},
        headers=domain.auth(1),
    )
    assert amended.status_code == 201, amended.text
    assert record(domain, amended.json()["identifier"])["holder"]["name"] == CORRECTED
    assert record(domain, theirs["identifier"])["holder"]["name"] == FIRST


def test_a_stamped_copy_prints_the_name_the_licence_was_issued_under(
    domain: Domain, tmp_path: Path
) -> None:
    _, theirs, holder = corrected_licence(domain)
    made = stamped_copy(holder, theirs["identifier"])
    text = pdf_text(holder.client.get(made["links"]["pdf"]).content, tmp_path)
    assert FIRST in text and CORRECTED not in text


def test_a_correction_scope_covers_its_holder_category_only(domain: Domain) -> None:
    company = new_company()
    body = dict(domain.department(0)["sample_request"])
    body.pop("valid_from", None)
    body["holder"] = {"id_type": "001", "id": company, "name": "示范小吃有限公司"}
    issue(domain, 0, body)
    path = f"/api/v1/holders/001/{company}"
    persons_only = scoped_client(domain, REGISTRY, "holders:correct:natural_person")
    refused = domain.client.patch(path, json={"name": "示范美食有限公司"}, headers=persons_only)
    assert refused.status_code == 403
    assert refused.json()["missing_scope"] == "holders:correct:legal_person"
    market = scoped_client(
        domain, domain.department(0)["code"], "licences:manage", "holders:correct:legal_person"
    )
    done = domain.client.patch(path, json={"name": "示范美食有限公司"}, headers=market)
    assert done.status_code == 200 and done.json()["name"] == "示范美食有限公司"


def test_the_operator_corrects_a_name_from_the_cli(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from api.cli.main import app

    person = new_person()
    theirs = physician(domain, person)
    monkeypatch.setenv(
        "ELICENCE_KEY_PASSPHRASE", domain.settings.key_passphrase.get_secret_value()
    )
    monkeypatch.setenv("ELICENCE_PUBLIC_BASE_URL", domain.settings.public_base_url)
    data_dir = str(domain.settings.data_dir)
    result = CliRunner().invoke(
        app, ["holders", "rename", "111", person, "--name", CORRECTED, "--data-dir", data_dir]
    )
    assert result.exit_code == 0, result.output
    assert f'"name": "{CORRECTED}"' in result.output
    assert holder_row(domain, person).name == CORRECTED
    renames = audit_rows(domain, "holder.rename", f"holder:{holder_row(domain, person).id}")
    assert [(r.actor, r.detail["to"]) for r in renames] == [("operator:cli", CORRECTED_MASKED)]
    assert record(domain, theirs["identifier"])["holder"]["name"] == FIRST
    # and grants a registry the scope
    created = CliRunner().invoke(
        app,
        [
            "clients",
            "create",
            "--department",
            REGISTRY,
            "--name",
            "户籍",
            "--scope",
            "holders:correct:natural_person",
            "--data-dir",
            data_dir,
        ],
    )
    assert created.exit_code == 0, created.output
    assert '"scopes": ["holders:correct:natural_person"]' in created.output


# --- issuer lists -------------------------------------------------------------------------------


def test_a_type_without_an_issuer_list_is_issued_by_its_authority_only(domain: Domain) -> None:
    code = define_type(domain, "302")
    body = {
        "licence_type": code,
        "holder": {"id_type": "111", "id": new_person(), "name": "周明"},
        "fields": {"post": "保洁"},
    }
    before = count(domain, AuditEntry)
    refused = domain.client.post("/api/v1/licences", json=body, headers=domain.auth(1))
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == PROBLEM_403
    assert domain.department(0)["code"] in refused.json()["detail"]
    assert count(domain, AuditEntry) == before
    # no other department's seal is authorised for it either
    seals = domain.client.get("/api/v1/seals", headers=domain.auth(1))
    assert seals.status_code == 200, seals.text
    assert all(code not in seal["licence_types"] for seal in seals.json())
    assert domain.client.post(
        "/api/v1/licences", json=body, headers=domain.auth(0)
    ).status_code == (201)


# --- pulls --------------------------------------------------------------------------------------


def count(domain: Domain, model: Any) -> int:
    with reading(domain.services.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_a_field_limited_grant_never_yields_the_sealed_pdf(domain: Domain) -> None:
    person = new_person()
    theirs = physician(domain, person)
    holder = HolderBrowser(domain, "111", person, FIRST)
    holder.grant(domain, theirs["identifier"], domain.department(0)["code"], PHYSICIAN_ITEM)
    params = {"service_item": PHYSICIAN_ITEM, "business_number": "LANE-0001"}
    url = f"/api/v1/licences/{theirs['identifier']}"
    pulls, audit = count(domain, LicencePull), count(domain, AuditEntry)
    refused = domain.client.get(f"{url}/pdf", params=params, headers=domain.auth(0))
    assert refused.status_code == 403, refused.headers
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == PROBLEM_403 and problem["missing"] == "fields"
    assert problem["granted_fields"] == ["category", "workplace"]
    assert set(problem["withheld"]) == {"scope", "holder.name", "holder.id"}
    assert not refused.content.startswith(b"%PDF")
    assert count(domain, LicencePull) == pulls and count(domain, AuditEntry) == audit + 1
    entry = audit_rows(domain, "licence.pull", theirs["identifier"])[-1]
    assert (entry.outcome, entry.detail["what"], entry.detail["missing"]) == (
        "refused",
        "pdf",
        "fields",
    )
    # the record under the same grant is still served, minimised
    allowed = domain.client.get(url, params=params, headers=domain.auth(0))
    assert allowed.status_code == 200 and set(allowed.json()["fields"]) == {"category", "workplace"}


def test_an_organisations_pdf_is_released_only_when_the_grant_covers_every_field(
    domain: Domain,
) -> None:
    # The food licence's item shares premises and business form only: refused.
    company = new_company()
    body = dict(domain.department(0)["sample_request"])
    body.pop("valid_from", None)
    body["holder"] = {"id_type": "001", "id": company, "name": "示范面馆有限公司"}
    food = issue(domain, 0, body)
    holder = HolderBrowser(domain, "001", company, "示范面馆有限公司")
    holder.grant(domain, food["identifier"], domain.department(1)["code"], FOOD_ITEM)
    params = {"service_item": FOOD_ITEM, "business_number": "LANE-0001"}
    refused = domain.client.get(
        f"/api/v1/licences/{food['identifier']}/pdf", params=params, headers=domain.auth(1)
    )
    assert refused.status_code == 403 and refused.json()["missing"] == "fields"
    assert set(refused.json()["withheld"]) == {"legal_representative", "scope"}

    # A type whose service item needs every field, held by an organisation (whose name and code
    # are public and never masked): the grant covers the whole licence, so the PDF is released.
    item = "000125009000-01"
    schema = copy.deepcopy(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["premises", "seats"],
            "properties": {
                "premises": {"type": "string", "title": "经营场所", "maxLength": 64},
                "seats": {"type": "integer", "title": "座位数", "minimum": 0},
            },
        }
    )
    code = define_type(
        domain,
        "303",
        holder_category="legal_person",
        service_items=[item],
        service_item_fields={item: ["premises", "seats"]},
        field_schema=schema,
    )
    whole = issue(
        domain,
        0,
        {
            "licence_type": code,
            "holder": {"id_type": "001", "id": company, "name": "示范面馆有限公司"},
            "fields": {"premises": "示范市五一路1号", "seats": 20},
        },
    )
    holder.grant(domain, whole["identifier"], domain.department(1)["code"], item)
    released = domain.client.get(
        f"/api/v1/licences/{whole['identifier']}/pdf",
        params={"service_item": item, "business_number": "LANE-0001"},
        headers=domain.auth(1),
    )
    assert released.status_code == 200, released.text
    assert released.content.startswith(b"%PDF")
    assert released.headers["x-content-sha256"] == whole["sha256"]
