"""Demo domains for the repository tests, on SQLite and on PostgreSQL, and fresh test data.

On PostgreSQL each module gets a schema of its own (``search_path`` in the URL), so it never
sees or drops another module's tables, even in the database the other PostgreSQL tests use.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from core.clock import china_today
from licences.identifiers import (
    USCC_ALPHABET,
    make_resident_id,
    make_uscc,
    organisation_code_check,
)
from tests.conftest import fresh_schema, make_settings
from tests.domain import Domain, build_domain

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def build(request: pytest.FixtureRequest, factory: pytest.TempPathFactory, name: str) -> Domain:
    """The demo domain for ``request.param`` ("sqlite" or "postgres")."""
    data_dir = factory.mktemp(f"{name}-{request.param}") / "data"
    if request.param == "sqlite":
        return build_domain(make_settings(data_dir))
    base_url: str = request.getfixturevalue("postgres_url")
    schema = f"t_{name}"
    url = fresh_schema(base_url, schema)
    return build_domain(make_settings(data_dir, database_url=url))


def new_company() -> str:
    """A fresh, valid unified social credit code (organisation code check included)."""
    org = "".join(secrets.choice(USCC_ALPHABET) for _ in range(8))
    return make_uscc("91350100" + org + organisation_code_check(org))


def new_person() -> str:
    """A fresh, valid resident ID number: a birth date in 1950–1999 (days 1–28, so every month
    has it) and a sequence number, ~1.7×10^7 numbers. The old draw of 10^4 met the demo
    holder 350102198503120034, registered under another name, about once in 10^4 calls."""
    born = f"{1950 + secrets.randbelow(50)}{1 + secrets.randbelow(12):02d}{1 + secrets.randbelow(28):02d}"
    return make_resident_id(f"350102{born}{secrets.randbelow(1000):03d}")


def food_body(domain: Domain, **overrides: Any) -> dict[str, Any]:
    """A valid issuance body for department 0 (food business licence) to a new company."""
    body = dict(domain.department(0)["sample_request"])
    body["holder"] = {"id_type": "001", "id": new_company(), "name": "测试餐饮有限公司"}
    body["valid_from"] = china_today(domain.services.clock.now()).isoformat()
    body.update(overrides)
    return body


def physician_body(domain: Domain, **overrides: Any) -> dict[str, Any]:
    """A valid issuance body for department 1 (physician certificate) to a new person."""
    body = dict(domain.department(1)["sample_request"])
    body["holder"] = {"id_type": "111", "id": new_person(), "name": "张测试"}
    body["valid_from"] = china_today(domain.services.clock.now()).isoformat()
    body.update(overrides)
    return body


def issue(domain: Domain, body: dict[str, Any], index: int = 0, **headers: str) -> dict[str, Any]:
    response = domain.client.post(
        "/api/v1/licences", json=body, headers={**domain.auth(index), **headers}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def verify_qr(domain: Domain, issued: dict[str, Any]) -> dict[str, Any]:
    response = domain.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
