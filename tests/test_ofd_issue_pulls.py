"""A department other than the issuer gets a licence's OFD exactly when it would get its PDF:
under the holder's grant, and only when the grant covers the whole licence (a sealed document
cannot be cut down). The refusal and the pull are audited and logged as for the PDF, naming the
OFD. A type defined here issues ``both``, for an organisation (whose name is never masked), with
a service item needing every field, and another needing fewer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.edge.holder_session import COOKIE, HolderPrincipal
from core.audit import AuditEntry
from core.db import reading
from licences.models import LicenceOfd
from licences.pulls import LicencePull
from licences.repository import china_today
from tests.domain import Domain, demo_domain
from tests.repo_domains import new_company

WHOLE, PART = "000125009000-01", "000125009000-02"
BUSINESS = "OFD-0001"


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "ofd-pulls")


@pytest.fixture(scope="module")
def issued(domain: Domain) -> dict[str, Any]:
    """A company's licence of a ``both`` type, granted by its holder to department 1 for
    both service items."""
    code = domain.department(0)["code"] + "304"
    body = {
        "code": code,
        "name": "餐饮服务登记",
        "authority_level": "municipal",
        "holder_category": "legal_person",
        "validity_years": 1,
        "service_items": [WHOLE, PART],
        "service_item_fields": {WHOLE: ["premises", "seats"], PART: ["premises"]},
        "document_formats": "both",
        "field_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["premises", "seats"],
            "properties": {
                "premises": {"type": "string", "title": "经营场所", "maxLength": 64},
                "seats": {"type": "integer", "title": "座位数", "minimum": 0},
            },
        },
    }
    defined = domain.client.post(
        "/api/v1/catalogue/licence-types", json=body, headers=domain.auth(0)
    )
    assert defined.status_code == 201, defined.text
    assert defined.json()["document_formats"] == "both"
    company = new_company()
    response = domain.client.post(
        "/api/v1/licences",
        json={
            "licence_type": code,
            "holder": {"id_type": "001", "id": company, "name": "示范面馆有限公司"},
            "fields": {"premises": "示范市五一路1号", "seats": 20},
        },
        headers=domain.auth(0),
    )
    assert response.status_code == 201, response.text
    licence = response.json()
    assert set(licence["documents"]) == {"pdf", "ofd"}
    holder = holder_client(domain, company, "示范面馆有限公司")
    for item in (WHOLE, PART):
        grant(domain, holder, licence["identifier"], item)
    return licence  # type: ignore[no-any-return]


def holder_client(domain: Domain, company: str, name: str) -> TestClient:
    """The company's representative, signed in by a session cookie sealed as sign-in does."""
    principal = HolderPrincipal(
        id_type="001", id_number=company, name=name, subject=f"idp-{company[-6:]}",
        issuer="https://idp.example.gov.cn",
    )  # fmt: skip
    sessions = domain.services.holder_sessions
    now = domain.services.clock.now()
    value = sessions.seal(principal, now)
    _, csrf = sessions.open(value, now)
    client = TestClient(domain.client.app, headers={"X-CSRF-Token": csrf})
    client.cookies.set(COOKIE, value)
    return client


def grant(domain: Domain, holder: TestClient, identifier: str, item: str) -> None:
    today = china_today(domain.services.clock.now())
    response = holder.post(
        "/api/v1/holder/grants",
        json={
            "identifier": identifier,
            "department": domain.department(1)["code"],
            "service_item": item,
            "business_number": BUSINESS,
            "valid_until": (today + timedelta(days=10)).isoformat(),
        },
    )
    assert response.status_code == 201, response.text


def fetch(domain: Domain, identifier: str, what: str, item: str | None, index: int = 1) -> Any:
    params = {"service_item": item, "business_number": BUSINESS} if item else {}
    return domain.client.get(
        f"/api/v1/licences/{identifier}/{what}", params=params, headers=domain.auth(index)
    )


def pull_entries(domain: Domain, identifier: str) -> list[AuditEntry]:
    with reading(domain.services.engine) as session:
        return list(
            session.exec(
                select(AuditEntry)
                .where(AuditEntry.action == "licence.pull", AuditEntry.object_id == identifier)
                .order_by(AuditEntry.seq)
            )
        )


def test_without_a_grant_the_ofd_is_refused_as_the_pdf_is(
    domain: Domain, issued: dict[str, Any]
) -> None:
    identifier = issued["identifier"]
    ofd, pdf = (fetch(domain, identifier, w, None) for w in ("document.ofd", "pdf"))
    assert ofd.status_code == pdf.status_code == 403
    assert ofd.headers["content-type"].startswith("application/problem+json")
    assert not ofd.content.startswith(b"PK")


def test_a_grant_covering_fewer_fields_is_refused_the_ofd_as_the_pdf_and_it_is_audited(
    domain: Domain, issued: dict[str, Any]
) -> None:
    identifier = issued["identifier"]
    ofd, pdf = (fetch(domain, identifier, w, PART) for w in ("document.ofd", "pdf"))
    assert ofd.status_code == pdf.status_code == 403
    assert ofd.json()["missing"] == pdf.json()["missing"] == "fields"
    assert ofd.json()["withheld"] == pdf.json()["withheld"] == ["seats"]
    assert not ofd.content.startswith(b"PK")
    last = pull_entries(domain, identifier)[-2:]
    assert [(e.outcome, e.detail["what"]) for e in last] == [("refused", "ofd"), ("refused", "pdf")]


def test_a_grant_covering_the_whole_licence_releases_the_ofd_and_logs_the_pull(
    domain: Domain, issued: dict[str, Any]
) -> None:
    identifier = issued["identifier"]
    response = fetch(domain, identifier, "document.ofd", WHOLE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/ofd"
    with reading(domain.services.engine) as session:
        stored = session.get(LicenceOfd, identifier)
        pulls = list(session.exec(select(LicencePull).where(LicencePull.identifier == identifier)))
    assert stored is not None and response.content == stored.ofd
    assert response.headers["x-content-sha256"] == stored.sha256
    assert [p.what for p in pulls][-1:] == ["ofd"]
    assert pull_entries(domain, identifier)[-1].outcome == "ok"
