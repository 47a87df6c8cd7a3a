"""Shared pieces of the supervisor tests: supervision offices at several levels, departments in
other divisions, a holder's grant and a pull, each made through the product's own services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from api.edge.holder_session import COOKIE as HOLDER_COOKIE
from api.edge.holder_session import HolderPrincipal
from core.clock import china_today
from core.db import transaction
from seals.clients import SUPERVISE, create_client
from tests.domain import Domain


@dataclass(frozen=True)
class Office:
    code: str
    division: str
    client_id: str
    api_key: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def add_department(domain: Domain, code: str, name: str, division: str, level: str) -> None:
    services = domain.services
    with transaction(services.engine) as session:
        services.seals.add_department(
            session, actor="test", code=code, name=name, division_code=division, level=level
        )


def add_office(domain: Domain, code: str, division: str, level: str) -> Office:
    """A supervision office (a department row) and its supervise-only client."""
    add_department(domain, code, f"监察室{division}", division, level)
    services = domain.services
    with transaction(services.engine) as session:
        client, key = create_client(
            session,
            services.audit,
            services.clock,
            department_code=code,
            name="supervision",
            actor="test",
            scopes=(SUPERVISE,),
        )
    return Office(code, division, client.id, key)


def demo_office(domain: Domain) -> Office:
    found = domain.credentials["supervision_offices"][0]
    return Office(found["code"], found["division"], found["client_id"], found["api_key"])


def holder_client(domain: Domain, holder: dict[str, str], subject: str) -> tuple[TestClient, str]:
    """A client signed in as ``holder`` (id_type, id, name) and its CSRF token."""
    principal = HolderPrincipal(
        id_type=holder["id_type"],
        id_number=holder["id"],
        name=holder["name"],
        subject=subject,
        issuer="https://idp.example.gov.cn",
    )
    sessions = domain.services.holder_sessions
    value = sessions.seal(principal, domain.services.clock.now())
    _, csrf = sessions.open(value, domain.services.clock.now())
    client = TestClient(domain.client.app)
    client.cookies.set(HOLDER_COOKIE, value)
    return client, csrf


def grant_and_pull(domain: Domain, issued: dict[str, Any], pulls: int, number: str) -> None:
    """The holder of a department 0 licence grants it to department 1, which pulls it ``pulls``
    times under that grant."""
    sample = domain.department(0)["sample_request"]
    holder, csrf = holder_client(domain, sample["holder"], "supervision-holder")
    entry = domain.client.get(f"/api/v1/catalogue/licence-types/{sample['licence_type']}").json()
    item = sorted(entry["service_item_fields"])[0]
    until = china_today(domain.services.clock.now()) + timedelta(days=30)
    response = holder.post(
        "/api/v1/holder/grants",
        headers={"X-CSRF-Token": csrf},
        json={
            "identifier": issued["identifier"],
            "department": domain.department(1)["code"],
            "service_item": item,
            "business_number": number,
            "valid_until": until.isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    for _ in range(pulls):
        response = domain.client.get(
            f"/api/v1/licences/{issued['identifier']}",
            params={"service_item": item, "business_number": number},
            headers=domain.auth(1),
        )
        assert response.status_code == 200, response.text


def verify(domain: Domain, issued: dict[str, Any]) -> None:
    response = domain.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]})
    assert response.status_code == 200, response.text
