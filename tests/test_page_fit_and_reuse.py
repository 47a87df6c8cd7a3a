"""What does not fit is refused as bad input (422 naming the field, nothing written), not a
500: a department name too long for its seal, licence fields too long for the page. And the
statistics count real reuse: pulls of a department's licences by another department."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import DateTime, create_engine, literal
from sqlmodel import Session, func, select

from core.audit import AuditEntry
from core.clock import CHINA, FixedClock, china_today
from core.db import reading, transaction
from core.errors import InvalidInput
from licences.grants import GrantRequest, Grants, HolderKey
from licences.identifiers import make_uscc, organisation_code_check
from licences.models import Licence
from licences.statistics import ChinaMonth
from seals.clients import create_client
from seals.models import Department, Seal
from tests.domain import Domain, demo_domain
from tests.repo_domains import issue, new_company, new_person, physician_body
from trust.models import CertificateRecord

ITEM = "000126022000-01"  # the demo physician type: category and workplace


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    return demo_domain(tmp_path_factory, "fit", clock=clock)


def count(domain: Domain, model: Any, *where: Any) -> int:
    with reading(domain.services.engine) as session:
        return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()  # type: ignore[no-any-return]


def new_department_code() -> str:
    org = "".join(secrets.choice("0123456789") for _ in range(8))
    return make_uscc("11350100" + org + organisation_code_check(org))


LONG_NAME = "示范市" + "甲" * 35 + "管理局"  # 41 characters: a seal holds 40
REAL_NAME = "福建省福州市鼓楼区市场监督管理局"


def test_a_department_name_too_long_for_a_seal_is_refused_when_registered(
    domain: Domain,
) -> None:
    code = new_department_code()
    with pytest.raises(InvalidInput) as refused, transaction(domain.services.engine) as session:
        domain.services.seals.add_department(
            session,
            actor="test",
            code=code,
            name=LONG_NAME,
            division_code="350100",
            level="municipal",
        )
    assert refused.value.field == "name" and "40" in refused.value.message
    assert count(domain, Department, Department.code == code) == 0


def department_with_client(domain: Domain, name: str) -> tuple[str, dict[str, str]]:
    """A department registered before the name rules, with a client that manages seals."""
    code = new_department_code()
    with transaction(domain.services.engine) as session:
        session.add(Department(code=code, name=name, division_code="350100", level="municipal"))
        session.flush()
        _, key = create_client(
            session,
            domain.services.audit,
            domain.services.clock,
            department_code=code,
            name="seal-manager",
            actor="test",
            scopes=("licences:manage",),
        )
    return code, {"Authorization": f"Bearer {key}"}


def test_a_seal_for_a_department_name_too_long_is_422_and_makes_nothing(domain: Domain) -> None:
    code, headers = department_with_client(domain, LONG_NAME)  # 41 characters round the seal
    keys = Path(domain.settings.data_dir) / "keys"
    before = (count(domain, AuditEntry), sorted(p.name for p in keys.iterdir()))
    response = domain.client.post("/api/v1/seals", json={"seal_type": "02"}, headers=headers)
    body = problem(response, 422)
    assert body["field"] == "department.name"
    assert "40" in body["detail"]
    assert count(domain, Seal, Seal.department_code == code) == 0
    assert (count(domain, AuditEntry), sorted(p.name for p in keys.iterdir())) == before


def test_a_real_department_name_gets_its_seal_with_the_common_name_shortened(
    domain: Domain,
) -> None:
    # 16 characters and the 7 of 电子证照专用章 take 69 bytes: over the common name's 64.
    code, headers = department_with_client(domain, REAL_NAME)
    response = domain.client.post("/api/v1/seals", json={"seal_type": "02"}, headers=headers)
    assert response.status_code == 201, response.text
    with reading(domain.services.engine) as session:
        seal = session.exec(select(Seal).where(Seal.department_code == code)).one()
        record = session.exec(
            select(CertificateRecord).where(CertificateRecord.serial == seal.certificate_serial)
        ).one()
    certificate = x509.load_pem_x509_certificate(record.pem.encode())
    common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    organisation = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert organisation == REAL_NAME
    assert common == "福建省福州市鼓楼区市场监督…电子证照专用章"
    assert len(str(common).encode()) <= 64


def crowded_type(domain: Domain) -> str:
    """A type of department 0 with many long fields: at their longest they cannot share a page."""
    code = domain.department(0)["code"] + "901"
    properties = {
        f"item{i:02d}": {"type": "string", "title": f"项目{i}", "maxLength": 512} for i in range(11)
    }
    properties["scope"] = {"type": "string", "title": "经营项目", "maxLength": 512}
    created = domain.client.post(
        "/api/v1/catalogue/licence-types",
        json={
            "code": code,
            "name": "拥挤登记证",
            "authority_level": "municipal",
            "holder_category": "legal_person",
            "validity_years": 3,
            "field_schema": {
                "type": "object",
                "additionalProperties": False,
                "properties": properties,
            },
        },
        headers=domain.auth(),
    )
    assert created.status_code == 201, created.text
    return code


def test_fields_that_do_not_fit_the_page_are_422_naming_the_field(domain: Domain) -> None:
    code = crowded_type(domain)
    holder = {"id_type": "001", "id": new_company(), "name": "拥挤测试有限公司"}
    fields = {f"item{i:02d}": "经营" * 150 for i in range(11)} | {"scope": "项目" * 256}
    before = count(domain, AuditEntry)
    response = domain.client.post(
        "/api/v1/licences",
        json={"licence_type": code, "holder": holder, "fields": fields},
        headers=domain.auth(),
    )
    body = problem(response, 422)
    assert body["field"] == "fields.scope"  # the longest
    assert "one page" in body["detail"]
    assert count(domain, Licence, Licence.type_code == code) == 0
    assert count(domain, AuditEntry) == before  # not even the QR code's key use
    # the same fields, shorter, make a licence of that type
    short = {name: value[:20] for name, value in fields.items()}
    issue(domain, {"licence_type": code, "holder": holder, "fields": short})
    assert count(domain, Licence, Licence.type_code == code) == 1


def statistics(domain: Domain, index: int) -> dict[str, Any]:
    response = domain.client.get(f"/api/v1/statistics/{domain.department(index)['code']}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def pull(domain: Domain, identifier: str, business: str) -> httpx.Response:
    return domain.client.get(
        f"/api/v1/licences/{identifier}",
        params={"service_item": ITEM, "business_number": business},
        headers=domain.auth(0),
    )


def test_reused_counts_pulls_by_other_departments(domain: Domain) -> None:
    health, market = domain.department(1)["code"], domain.department(0)["code"]
    before = statistics(domain, 1)
    assert "reused" in before["totals"] and "other departments" in before["reused_means"]
    person = new_person()
    holder = {"id_type": "111", "id": person, "name": "张复用"}
    identifier = issue(domain, physician_body(domain, holder=holder), index=1)["identifier"]
    business = "FZ-REUSE-1"
    assert pull(domain, identifier, business).status_code == 403  # no grant yet: not reuse
    today = china_today(domain.services.clock.now())
    with transaction(domain.services.engine) as session:
        Grants(domain.services.audit, domain.services.clock).create(
            session,
            holder=HolderKey("111", person, f"holder:{person[-4:]}"),
            request=GrantRequest(identifier, market, ITEM, business, today + timedelta(days=30)),
        )
    assert pull(domain, identifier, business).status_code == 200
    assert pull(domain, identifier, business).status_code == 200
    own = domain.client.get(f"/api/v1/licences/{identifier}", headers=domain.auth(1))
    assert own.status_code == 200  # the issuer reading its own licence is not reuse

    after = statistics(domain, 1)
    assert after["totals"]["reused"] == before["totals"]["reused"] + 2
    assert after["totals"]["issued"] == before["totals"]["issued"] + 1
    month = domain.services.clock.now().astimezone(CHINA).strftime("%Y-%m")
    this_month = {m["month"]: m for m in after["months"]}[month]
    assert this_month["reused"] >= 2
    assert statistics(domain, 0)["totals"]["reused"] == 0  # market's own licences: none pulled
    page = domain.client.get(f"/statistics/{health}")
    assert '<dd id="total-reused"' in page.text
    assert f">{after['totals']['reused']}</dd>" in page.text
    assert "pulls by other departments" in page.text


@pytest.mark.parametrize(
    ("stored", "month"),
    [
        ("2027-01-31 15:59:59.999999", "2027-01"),  # 23:59:59 in China
        ("2027-01-31 16:00:00.000000", "2027-02"),  # midnight in China: February already
        ("2026-12-31 20:00:00", "2027-01"),
    ],
)
def test_statistics_months_are_months_in_china(stored: str, month: str) -> None:
    engine = create_engine("sqlite://")
    with Session(engine) as session:
        assert session.exec(select(ChinaMonth(literal(stored)))).one() == month


@pytest.mark.postgres
def test_statistics_months_are_months_in_china_on_postgresql(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    cases = [
        (datetime(2027, 1, 31, 15, 59, 59, 999999, tzinfo=UTC), "2027-01"),
        (datetime(2027, 1, 31, 16, 0, tzinfo=UTC), "2027-02"),
    ]
    with Session(engine) as session:
        for moment, month in cases:
            stamp = literal(moment, DateTime(timezone=True))
            assert session.exec(select(ChinaMonth(stamp))).one() == month
    engine.dispose()
