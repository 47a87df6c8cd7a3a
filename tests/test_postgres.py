"""The repository on the production database: issue, replay, verify, revoke and audit on PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest
from sqlmodel import func, select

from core.audit import verify_chain
from core.db import reading
from licences.models import Licence, LicenceDocument
from tests.conftest import make_settings, reset_postgres_schema
from tests.domain import Domain, build_domain

pytestmark = pytest.mark.postgres  # a demo domain on PostgreSQL


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Domain:
    reset_postgres_schema(postgres_url)
    settings = make_settings(tmp_path_factory.mktemp("pg") / "data", database_url=postgres_url)
    assert settings.resolved_database_url().startswith("postgresql")
    return build_domain(settings)


def test_issue_verify_revoke_on_postgres(domain: Domain) -> None:
    issued = domain.issue()
    pdf = domain.pdf(issued)
    assert hashlib.sha256(pdf).hexdigest() == issued["sha256"]
    assert domain.verify_pdf(pdf)["indication"] == "PASSED"
    response = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/suspend",
        json={"reason": "整改期间"},
        headers=domain.auth(),
    )
    assert response.json()["status"] == "suspended"
    assert domain.verify_pdf(pdf)["sub_indication"] == "SUSPENDED"
    domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/resume", json={}, headers=domain.auth()
    )
    assert domain.verify_pdf(pdf)["indication"] == "PASSED"


def test_idempotent_replay_on_postgres_creates_one_licence(domain: Domain) -> None:
    body = domain.department(1)["sample_request"]
    headers = {**domain.auth(1), "Idempotency-Key": "pg-replay-1"}
    with reading(domain.services.engine) as session:
        before = session.exec(select(func.count()).select_from(Licence)).one()
    ids = {
        domain.client.post("/api/v1/licences", json=body, headers=headers).json()["identifier"]
        for _ in range(3)
    }
    assert len(ids) == 1
    with reading(domain.services.engine) as session:
        assert session.exec(select(func.count()).select_from(Licence)).one() == before + 1
        assert session.exec(select(func.count()).select_from(LicenceDocument)).one() == before + 1


def test_audit_chain_intact_on_postgres(domain: Domain) -> None:
    with reading(domain.services.engine) as session:
        report = verify_chain(session)
    assert report.intact, report
    assert report.entries > 10
