"""The HTTP edge: credentials, validation errors as problem+json, the verification page."""

from __future__ import annotations

import re

import pytest

from tests.domain import Domain, demo_domain


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "edges")


def test_demo_credentials_have_the_documented_shape(domain: Domain) -> None:
    creds = domain.credentials
    assert creds["base_url"] == "https://licence.example.gov.cn"
    assert len(creds["departments"]) == 2
    for dept in creds["departments"]:
        assert set(dept) == {"code", "name", "api_key", "sample_request"}
        assert set(dept["sample_request"]) >= {
            "licence_type",
            "holder",
            "fields",
            "valid_from",
            "valid_until",
        }


def test_issue_without_credentials_is_401_problem(domain: Domain) -> None:
    body = domain.department()["sample_request"]
    response = domain.client.post("/api/v1/licences", json=body)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = domain.client.post(
        "/api/v1/licences", json=body, headers={"Authorization": "Bearer elk_00_nope"}
    )
    assert wrong.status_code == 401


def test_department_cannot_issue_another_departments_type(domain: Domain) -> None:
    body = domain.department(0)["sample_request"]
    response = domain.client.post("/api/v1/licences", json=body, headers=domain.auth(1))
    assert response.status_code == 403


def test_department_cannot_read_another_departments_licence(domain: Domain) -> None:
    issued = domain.issue(0)
    assert (
        domain.client.get(
            f"/api/v1/licences/{issued['identifier']}", headers=domain.auth(1)
        ).status_code
        == 403
    )
    assert (
        domain.client.get(
            f"/api/v1/licences/{issued['identifier']}/pdf", headers=domain.auth(1)
        ).status_code
        == 403
    )
    mine = domain.client.get(f"/api/v1/licences/{issued['identifier']}", headers=domain.auth(0))
    assert mine.status_code == 200
    assert mine.json()["holder"]["id"] == domain.department(0)["sample_request"]["holder"]["id"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["holder"].update(id="91350100M000100Y44"), "holder.id"),
        (lambda b: b["holder"].update(id_type="111"), "holder.id_type"),
        (lambda b: b.update(licence_type="1135010000360001XN999"), "licence_type"),
        (lambda b: b["fields"].pop("premises"), "fields"),
        (lambda b: b["fields"].update(unknown="x"), "fields"),
        (lambda b: b.update(valid_from="2030-01-01", valid_until="2029-01-01"), "valid_until"),
    ],
)
def test_bad_issuance_is_refused_with_the_field_named_and_nothing_stored(
    domain: Domain, mutate, field: str
) -> None:  # type: ignore[no-untyped-def]
    import copy

    from sqlmodel import func, select

    from core.db import reading
    from licences.models import Licence

    with reading(domain.services.engine) as session:
        before = session.exec(select(func.count()).select_from(Licence)).one()
    body = copy.deepcopy(domain.department()["sample_request"])
    mutate(body)
    response = domain.client.post("/api/v1/licences", json=body, headers=domain.auth())
    assert response.status_code in (404, 422), response.text
    problem = response.json()
    assert problem["field"].startswith(field), problem
    assert problem["detail"]
    with reading(domain.services.engine) as session:
        assert session.exec(select(func.count()).select_from(Licence)).one() == before


def test_idempotency_key_replays_and_refuses_a_different_body(domain: Domain) -> None:
    body = domain.department()["sample_request"]
    headers = {**domain.auth(), "Idempotency-Key": "order-2026-0001"}
    first = domain.client.post("/api/v1/licences", json=body, headers=headers)
    second = domain.client.post("/api/v1/licences", json=body, headers=headers)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["identifier"] == first.json()["identifier"]
    other = {**body, "fields": {**body["fields"], "premises": "另一个地址"}}
    third = domain.client.post("/api/v1/licences", json=other, headers=headers)
    assert third.status_code == 409


def test_verification_page_shows_repository_data_masked(domain: Domain) -> None:
    issued = domain.issue(1)  # a person's licence
    path = "/" + issued["links"]["verify"].split("/", 3)[3]
    page = domain.client.get(path)
    assert page.status_code == 200
    html = page.text
    assert 'data-indication="PASSED"' in html
    assert "有效" in html and "Valid" in html
    holder = domain.department(1)["sample_request"]["holder"]
    assert holder["name"] not in html and holder["id"] not in html
    assert holder["name"][0] + "*" in html
    assert holder["id"][-4:] in html
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert not re.search(r"(src|href)=\"https?://", html), "no external assets"
    as_json = domain.client.get(path.replace("/V/", "/v/"), headers={"Accept": "application/json"})
    assert as_json.json()["indication"] == "PASSED"


def test_unknown_code_page_is_failed(domain: Domain) -> None:
    page = domain.client.get("/v/AAAAAAAAAAAAAAAAAAAAAAAA")
    assert page.status_code == 200
    assert 'data-indication="FAILED"' in page.text


def test_verify_api_accepts_qr_text(domain: Domain) -> None:
    issued = domain.issue()
    response = domain.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]})
    assert response.status_code == 200
    assert response.json()["indication"] == "PASSED"
    assert response.json()["licence"]["identifier"] == issued["identifier"]


def test_verify_api_refuses_other_content(domain: Domain) -> None:
    response = domain.client.post(
        "/api/v1/verify", content=b"x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_oversized_upload_is_413(domain: Domain) -> None:
    limit = domain.services.settings.max_upload_bytes
    response = domain.client.post(
        "/api/v1/verify", files={"file": ("big.pdf", b"%PDF-" + b"0" * limit, "application/pdf")}
    )
    assert response.status_code == 413


def test_pki_endpoints_serve_der(domain: Domain) -> None:
    from cryptography import x509

    cert = x509.load_der_x509_certificate(domain.client.get("/pki/ca/root.crt").content)
    crl = x509.load_der_x509_crl(domain.client.get("/pki/crl/seal-ca.crl").content)
    assert cert.subject == cert.issuer
    assert crl.next_update_utc is not None
    assert domain.client.get("/pki/ca/nope.crt").status_code == 404


def test_health_and_readiness(domain: Domain) -> None:
    # without ELICENCE_REDIS_URL the service says it runs as one node
    assert domain.client.get("/healthz").json() == {
        "status": "ok",
        "shared_state": {"kind": "memory", "nodes": "one"},
    }
    ready = domain.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "keystore": "ok"}


def test_unexpected_error_is_a_plain_500_problem_with_the_request_id(domain: Domain) -> None:
    from fastapi.testclient import TestClient

    app = domain.client.app

    @app.get("/boom-for-test", include_in_schema=False)  # type: ignore[attr-defined]
    def boom() -> None:
        raise RuntimeError("SELECT secret FROM holder WHERE id = '350102198503120034'")

    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/boom-for-test", headers={"X-Request-Id": "req-boom-1"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["request_id"] == "req-boom-1"
    assert "SELECT" not in response.text and "Traceback" not in response.text
    assert "350102198503120034" not in response.text


def test_cors_is_closed_unless_configured(domain: Domain) -> None:
    response = domain.client.options(
        "/api/v1/licences",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in response.headers
