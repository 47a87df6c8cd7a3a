"""Department credentials: API keys and OAuth2 client-credentials tokens, scopes, revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.edge.tokens import TokenIssuer
from core.clock import FixedClock
from core.db import transaction
from seals.clients import create_client, revoke_client
from tests.domain import Domain, demo_domain


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "auth")


def _client(domain: Domain, scopes: tuple[str, ...], index: int = 0) -> tuple[str, str]:
    services = domain.services
    with transaction(services.engine) as session:
        client, key = create_client(
            session,
            services.audit,
            services.clock,
            department_code=domain.department(index)["code"],
            name="t",
            actor="test",
            scopes=scopes,
        )
    return client.id, key


def _token(domain: Domain, client_id: str, secret: str, scope: str | None = None) -> dict:
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if scope:
        data["scope"] = scope
    response = domain.client.post("/oauth/token", data=data)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def test_token_issues_a_licence(domain: Domain) -> None:
    client_id, key = _client(domain, ("licences:issue", "licences:manage"))
    token = _token(domain, client_id, key)
    assert token["token_type"] == "Bearer" and 0 < token["expires_in"] <= 600
    assert set(token["scope"].split()) == {"licences:issue", "licences:manage"}
    response = domain.client.post(
        "/api/v1/licences",
        json=domain.department()["sample_request"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert response.status_code == 201, response.text


def test_basic_auth_at_the_token_endpoint(domain: Domain) -> None:
    client_id, key = _client(domain, ("licences:issue",))
    response = domain.client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, key)
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"grant_type": "password"}, 422),
        ({"grant_type": "client_credentials", "client_id": "x", "client_secret": "elk_x_y"}, 401),
        ({"grant_type": "client_credentials"}, 401),
    ],
)
def test_token_endpoint_refusals(domain: Domain, data: dict, status: int) -> None:
    response = domain.client.post("/oauth/token", data=data)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")


def test_scope_beyond_the_grant_is_refused(domain: Domain) -> None:
    client_id, key = _client(domain, ("licences:pull",))
    response = domain.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": key,
            "scope": "licences:issue",
        },
    )
    assert response.status_code == 422


def test_tampered_and_foreign_tokens_are_401(domain: Domain) -> None:
    client_id, key = _client(domain, ("licences:issue",))
    token = _token(domain, client_id, key)["access_token"]
    head, body, sig = token.split(".")
    forged = f"{head}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{sig}"
    for bad in (forged, token[:-4] + "AAAA", "eyJ.e30.x"):
        response = domain.client.get(
            "/api/v1/licences/x", headers={"Authorization": f"Bearer {bad}"}
        )
        assert response.status_code == 401, bad


def test_expired_token_is_401(domain: Domain) -> None:
    client_id, _ = _client(domain, ("licences:issue",))
    past = FixedClock(datetime.now(UTC) - timedelta(hours=1))
    issuer = TokenIssuer(
        store=domain.services.keystore,
        clock=past,
        issuer=domain.services.settings.public_base_url.rstrip("/"),
    )
    token, _ = issuer.mint(
        client_id=client_id,
        department_code=domain.department()["code"],
        scopes=("licences:issue",),
        listener=None,
    )
    response = domain.client.post(
        "/api/v1/licences",
        json=domain.department()["sample_request"],
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


def test_revoked_client_loses_token_and_key_at_once(domain: Domain) -> None:
    client_id, key = _client(domain, ("licences:issue",))
    token = _token(domain, client_id, key)["access_token"]
    services = domain.services
    with transaction(services.engine) as session:
        revoke_client(session, services.audit, services.clock, client_id=client_id, actor="test")
    body = domain.department()["sample_request"]
    for credential in (token, key):
        response = domain.client.post(
            "/api/v1/licences", json=body, headers={"Authorization": f"Bearer {credential}"}
        )
        assert response.status_code == 401
