"""Walks every route of the OpenAPI document: with no credentials, with credentials lacking the
scope, and with another department's credentials. A new route without a check fails here."""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.schemas_catalogue import LicenceTypeUpdate
from core.db import reading, transaction
from seals.clients import create_client
from seals.models import Seal
from tests.conftest import make_settings
from tests.domain import Domain, build_domain

# Routes anyone may call: verification, published PKI material, the public catalogue, counts.
PUBLIC = {
    ("POST", "/oauth/token"),
    ("GET", "/api/v1/catalogue/licence-types"),
    ("GET", "/api/v1/catalogue/licence-types/{code}"),
    ("GET", "/api/v1/catalogue/licence-types/{code}/versions"),
    ("POST", "/api/v1/verify"),
    ("GET", "/v/{code}"),
    ("GET", "/verify"),
    ("POST", "/verify"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/api/v1/statistics/{department_code}"),
    ("GET", "/statistics/{department_code}"),
    ("GET", "/api/v1/departments/{code}"),
}
PUBLIC_PREFIXES = ("/pki/",)
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return build_domain(make_settings(tmp_path_factory.mktemp("authz") / "data"))


@pytest.fixture(scope="module")
def objects(domain: Domain) -> dict[str, str]:
    issued = domain.issue(0)
    with reading(domain.services.engine) as session:
        seal = session.get(Seal, _seal_code(domain))
        assert seal is not None
    sample = domain.department(0)["sample_request"]
    return {
        "identifier": issued["identifier"],
        "seal": seal.code,
        "type": sample["licence_type"],
        "id_type": sample["holder"]["id_type"],
        "holder_id": sample["holder"]["id"],
        "department_code": domain.department(0)["code"],
    }


def _seal_code(domain: Domain) -> str:
    from sqlmodel import select

    with reading(domain.services.engine) as session:
        seal = session.exec(select(Seal).where(Seal.department_code == domain.department(0)["code"])).first()
        assert seal is not None
        return seal.code


def routes(domain: Domain) -> list[tuple[str, str]]:
    found = []
    for path, item in domain.client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        for method in METHODS:
            if method in item:
                found.append((method.upper(), path))
    return found


def is_public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC or path.startswith(PUBLIC_PREFIXES)


def fill(path: str, objects: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "code":
            return objects["seal"] if "/seals/" in path else objects["type"]
        return objects.get(name, "X")

    return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", value, path)


def body_for(domain: Domain, method: str, path: str, objects: dict[str, str]) -> Any:
    if method in ("GET", "DELETE"):
        return None
    if path.endswith("/amend"):
        return {"fields": {}, "reason": "x"}
    if "/seals/" in path and path.endswith("/revoke"):
        return {"reason": "keyCompromise"}
    if path.startswith("/api/v1/holders/"):
        return {"name": "另一名称"}
    if path == "/api/v1/catalogue/licence-types/{code}" and method == "PUT":
        current = domain.client.get(fill(path, objects)).json()
        return {k: v for k, v in current.items() if k in LicenceTypeUpdate.model_fields}
    return {"reason": "x"}


def test_every_non_public_route_needs_credentials(domain: Domain, objects: dict[str, str]) -> None:
    checked = 0
    for method, path in routes(domain):
        if is_public(method, path):
            continue
        checked += 1
        response = domain.client.request(method, fill(path, objects), json=body_for(domain, method, path, objects))
        assert response.status_code == 401, (method, path, response.status_code, response.text[:200])
        assert response.headers["content-type"].startswith("application/problem+json")
    assert checked >= 20


def test_every_write_route_checks_its_scope(domain: Domain, objects: dict[str, str]) -> None:
    services = domain.services
    with transaction(services.engine) as session:
        _, key = create_client(session, services.audit, services.clock, department_code=objects["department_code"],
                               name="pull-only", actor="test", scopes=("licences:pull",))
    headers = {"Authorization": f"Bearer {key}"}
    checked = 0
    for method, path in routes(domain):
        if is_public(method, path) or method == "GET":
            continue
        checked += 1
        response = domain.client.request(method, fill(path, objects), json=body_for(domain, method, path, objects),
                                         headers=headers)
        assert response.status_code == 403, (method, path, response.status_code, response.text[:200])
    assert checked >= 15


def test_another_departments_objects_are_out_of_reach(domain: Domain, objects: dict[str, str]) -> None:
    other = domain.auth(1)
    checked = 0
    for method, path in routes(domain):
        if is_public(method, path) or "{" not in path:
            continue
        checked += 1
        response = domain.client.request(method, fill(path, objects), json=body_for(domain, method, path, objects),
                                         headers=other)
        assert response.status_code in (403, 404), (method, path, response.status_code, response.text[:200])
    assert checked >= 15
    # and nothing they tried changed the licence
    mine = domain.client.get(f"/api/v1/licences/{objects['identifier']}", headers=domain.auth(0)).json()
    assert mine["status"] == "valid"


def test_public_list_names_only_real_routes(domain: Domain) -> None:
    present = set(routes(domain))
    stale = {r for r in PUBLIC if r not in present and r != ("GET", "/api/v1/departments/{code}")}
    assert stale == set()
