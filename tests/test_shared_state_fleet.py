"""Two workers of one service sharing a Redis (two apps on one data directory, as two
``elicence serve`` processes would be): what a thief tries with a copied cookie or a copied
sign-in answer, a client's rate limit, the development provider's codes, and Redis going away
under load. The attack comes first in each test; each would pass the attacker if the shared
check were removed."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from api.app import create_app
from api.dev_idp.provider import DevIdentityProvider, RegisteredClient, TokenError
from api.edge.holder_session import COOKIE as HOLDER_COOKIE
from api.edge.holder_session import HolderPrincipal
from api.edge.supervisor_session import COOKIE as SUPERVISOR_COOKIE
from api.ops import demo
from core.shared_state import MAX_RETRY_SECONDS, RedisState
from tests.domain import Domain, demo_domain
from tests.holder_login import CHEN, authorize_page, site_settings, start_site, subject_of
from tests.redis_server import RedisServer, closed_port_url, redis_server
from tests.supervision_fixtures import demo_office

pytestmark = pytest.mark.slow  # a redis-server of its own, paused and stopped
SIGNED_OUT_EN = "this session was signed out"


@dataclass
class Fleet:
    a: Domain  # worker A: the domain's own app
    b: TestClient  # worker B: another app on the same data directory and Redis
    server: RedisServer


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, server: RedisServer) -> Fleet:
    a = demo_domain(tmp_path_factory, "fleet", redis_url=server.url, client_rate_limit="12/minute")
    b = TestClient(create_app(settings=a.settings), base_url="https://testserver")
    return Fleet(a, b, server)


def holder_cookie(domain: Domain) -> str:
    principal = HolderPrincipal(
        id_type="111",
        id_number=CHEN,
        name="陈建华",
        subject=subject_of(CHEN),
        issuer="https://idp.example.gov.cn",
    )
    return domain.services.holder_sessions.seal(principal, domain.services.clock.now())


def with_cookie(name: str, value: str) -> dict[str, str]:
    return {"Cookie": f"{name}={value}"}


def sign_out_holder(client: TestClient, cookie: str) -> httpx.Response:
    headers = with_cookie(HOLDER_COOKIE, cookie)
    session = client.get("/api/v1/holder/session", headers=headers)
    assert session.status_code == 200, session.text
    return client.post("/me/logout", data={"csrf": session.json()["csrf_token"]}, headers=headers)


def test_a_signed_out_holder_cookie_is_refused_by_every_worker(fleet: Fleet) -> None:
    a, b = fleet.a.client, fleet.b
    copied = holder_cookie(fleet.a)  # the thief copies the cookie while the holder is in
    headers = with_cookie(HOLDER_COOKIE, copied)
    assert b.get("/api/v1/holder/session", headers=headers).status_code == 200
    out = sign_out_holder(a, copied)
    assert out.status_code == 200 and "已退出" in out.text
    for worker in (a, b):
        replay = worker.get("/api/v1/holder/licences", headers=headers)
        assert replay.status_code == 401, replay.text
        assert SIGNED_OUT_EN in replay.json()["detail"]
    # another session of the same holder is untouched
    other = holder_cookie(fleet.a)
    assert (
        b.get("/api/v1/holder/licences", headers=with_cookie(HOLDER_COOKIE, other)).status_code
        == 200
    )
    assert any(k.startswith("elicence:revoked-session:") for k in fleet.server.keys())


def test_a_signed_out_supervisor_cookie_is_refused_by_every_worker(fleet: Fleet) -> None:
    office = demo_office(fleet.a)
    browser = TestClient(fleet.a.client.app, base_url="https://testserver", follow_redirects=False)
    form = browser.get("/supervise/sign-in")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    signed = browser.post(
        "/supervise/sign-in",
        data={"csrf": token, "client_id": office.client_id, "api_key": office.api_key},
    )
    assert signed.status_code == 303, signed.text
    copied = browser.cookies[SUPERVISOR_COOKIE]
    headers = with_cookie(SUPERVISOR_COOKIE, copied)
    desk = fleet.b.get("/supervise", headers=headers, follow_redirects=False)
    assert desk.status_code == 200  # worker B opens worker A's session
    csrf = desk.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    out = browser.post("/supervise/sign-out", data={"csrf": csrf})
    assert out.status_code == 303
    for worker in (fleet.a.client, fleet.b):
        replay = worker.get("/supervise", headers=headers, follow_redirects=False)
        assert replay.status_code != 200, (
            "a signed-out supervisor's copied cookie still opens the desk"
        )
        assert "/supervise/sign-in" in replay.headers.get("location", replay.text)


def test_a_client_gets_its_allowance_once_across_two_workers(fleet: Fleet) -> None:
    auth = fleet.a.auth()
    statuses = [
        (fleet.a.client, fleet.b)[i % 2].get("/api/v1/licences/none-such", headers=auth).status_code
        for i in range(20)
    ]
    assert statuses.count(429) == 8, statuses  # 12/minute for the fleet, not 12 per worker
    assert all(s != 429 for s in statuses[:12])


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_the_development_provider_serves_one_sign_in_on_two_workers(server: RedisServer) -> None:
    redirect = "https://licence.example.gov.cn/me/callback"
    client = RegisteredClient("demo", "secret", (redirect,))
    prefix = f"elicence-test:{secrets.token_hex(4)}:"

    def worker() -> DevIdentityProvider:
        return DevIdentityProvider(
            issuer="https://licence.example.gov.cn/dev-idp",
            clients=(client,),
            holders=tuple(demo.holders()),
            store=RedisState(server.url, prefix=prefix),
        )

    one, two = worker(), worker()
    assert one.jwks() == two.jwks()  # one key, stored once, whoever made it first
    verifier, challenge = _pkce()
    params = {
        "client_id": "demo",
        "redirect_uri": redirect,
        "code_challenge": challenge,
        "nonce": "n-1",
    }
    code = one.issue_code(params, subject_of(CHEN))
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect,
        "code_verifier": verifier,
        "client_id": "demo",
        "client_secret": "secret",
    }
    tokens = two.exchange(form, "")  # issued by one worker, redeemed at the other
    claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(one.jwks())).claims  # type: ignore[arg-type]
    assert claims["sub"] == subject_of(CHEN) and claims["nonce"] == "n-1"
    bearer = f"Bearer {tokens['access_token']}"
    assert one.userinfo(bearer)["id_number"] == CHEN
    with pytest.raises(TokenError) as replayed:
        one.exchange(form, "")  # the code again, at the first worker
    assert replayed.value.error == "invalid_grant"
    with pytest.raises(TokenError):
        two.userinfo(bearer)  # the replay withdrew what the code got, on every worker
    assert not any(code in k or tokens["access_token"] in k for k in server.keys())


def test_a_sign_in_answer_is_taken_once_in_the_fleet(
    tmp_path_factory: pytest.TempPathFactory, server: RedisServer
) -> None:
    data = tmp_path_factory.mktemp("oidc-fleet") / "data"
    with start_site(data, redis_url=server.url) as site:
        other = create_app(
            settings=site_settings(data, site.base_url, site.idp_url, redis_url=server.url)
        )
        with closing(httpx.Client(base_url=site.base_url, timeout=60)) as browser:
            _, form = authorize_page(browser)
            answer = browser.post(
                form.action,
                data={**form.hidden, "holder": subject_of(CHEN)},
                follow_redirects=False,
            )
            location = answer.headers["location"]
            pending = browser.cookies["elicence_oidc"]  # the thief copies it
            done = browser.get(location, follow_redirects=True)
            assert done.url.path == "/me"
        parts = urlsplit(location)
        thief = TestClient(other, base_url=site.base_url)
        stolen = thief.get(
            f"{parts.path}?{parts.query}",
            headers=with_cookie("elicence_oidc", pending),
            follow_redirects=False,
        )
        # Refused by worker B before the provider is asked (which would say "code", 401).
        assert stolen.status_code == 400 and 'data-reason="state"' in stolen.text
        assert HOLDER_COOKIE not in stolen.cookies


def _qr(domain: Domain) -> dict[str, Any]:
    issued = domain.issue()
    return {"qr": issued["links"]["verify"], "identifier": issued["identifier"]}


def test_redis_refusing_connections(
    tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Public verification keeps answering, limited by the worker's own window; sign-out and
    every holder request fail closed with a 503 naming Redis; one warning for the outage."""
    domain = demo_domain(
        tmp_path_factory, "redis-refused", redis_url=closed_port_url(), public_rate_limit="5/minute"
    )
    caplog.set_level(logging.WARNING)
    qr = _qr(domain)
    answers = [domain.client.post("/api/v1/verify", json={"qr": qr["qr"]}) for _ in range(7)]
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 2
    assert answers[0].json()["indication"] == "PASSED"
    cookie = holder_cookie(domain)
    for attempt in range(3):
        session = domain.client.get(
            "/api/v1/holder/licences", headers=with_cookie(HOLDER_COOKIE, cookie)
        )
        assert session.status_code == 503, (attempt, session.text)
        assert session.headers["content-type"].startswith("application/problem+json")
        assert "Redis" in session.json()["detail"]
    health = domain.client.get("/healthz").json()
    assert health["shared_state"] == {"kind": "redis", "nodes": "shared", "redis": "unavailable"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("unreachable" in m for m in warnings) == 1, warnings
    assert not any("unavailable" in m and "request" in m for m in warnings), warnings


def test_redis_hanging_mid_test_then_back(
    tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with redis_server() as own:
        domain = demo_domain(tmp_path_factory, "redis-paused", redis_url=own.url)
        qr = _qr(domain)
        cookie = holder_cookie(domain)
        headers = with_cookie(HOLDER_COOKIE, cookie)
        assert domain.client.get("/api/v1/holder/licences", headers=headers).status_code == 200
        own.pause()  # Redis hangs: connections accepted, nothing answered
        try:
            started = time.monotonic()
            assert domain.client.get("/api/v1/holder/licences", headers=headers).status_code == 503
            assert time.monotonic() - started < 3  # one short timeout, not a hung worker
            during = [domain.client.post("/api/v1/verify", json={"qr": qr["qr"]}) for _ in range(5)]
            assert [r.status_code for r in during] == [200] * 5  # verification keeps answering
            assert all(r.json()["indication"] == "PASSED" for r in during)
            out = domain.client.post("/me/logout", data={"csrf": "x"}, headers=headers)
            assert out.status_code == 503  # a sign-out that cannot be recorded is not claimed
        finally:
            own.resume()
        # back: the next try after the backoff (at most MAX_RETRY_SECONDS) finds it
        deadline = time.monotonic() + MAX_RETRY_SECONDS + 5
        while domain.client.get("/api/v1/holder/licences", headers=headers).status_code == 503:
            assert time.monotonic() < deadline, "Redis is back but the worker does not use it"
            time.sleep(0.25)
        assert sign_out_holder(domain.client, cookie).status_code == 200
        replay = domain.client.get("/api/v1/holder/licences", headers=headers)
        assert replay.status_code == 401 and SIGNED_OUT_EN in replay.json()["detail"]
        # nothing was lost: the verifications answered during the outage are on the record
        log = domain.client.get(
            f"/api/v1/licences/{qr['identifier']}/verifications", headers=domain.auth()
        )
        assert log.status_code == 200, log.text
        assert len(log.json()["verifications"]) >= 5
    warnings = [r.getMessage() for r in caplog.records if r.name == "elicence.shared_state"]
    assert sum("unreachable" in m for m in warnings) == 1, warnings
    assert sum("reachable again" in m for m in warnings) == 1, warnings


def test_one_node_says_so_and_still_refuses_a_signed_out_cookie(
    tmp_path_factory: pytest.TempPathFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Without Redis (the demo): the in-process store closes the same hole on the one node."""
    caplog.set_level(logging.INFO, logger="elicence.shared_state")
    domain = demo_domain(tmp_path_factory, "one-node")
    assert any("running as one node" in r.getMessage() for r in caplog.records)
    assert domain.client.get("/healthz").json()["shared_state"] == {
        "kind": "memory",
        "nodes": "one",
    }
    copied = holder_cookie(domain)
    assert sign_out_holder(domain.client, copied).status_code == 200
    replay = domain.client.get(
        "/api/v1/holder/licences", headers=with_cookie(HOLDER_COOKIE, copied)
    )
    assert replay.status_code == 401 and SIGNED_OUT_EN in replay.json()["detail"]


def test_sign_in_fails_closed_without_redis(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The provider's answer cannot be taken once in the fleet while Redis is away: no session
    is made (a replay elsewhere could not be told apart), and the answer names Redis."""
    data = tmp_path_factory.mktemp("oidc-no-redis") / "data"
    with start_site(data, redis_url=closed_port_url()) as site:
        with closing(httpx.Client(base_url=site.base_url, timeout=60)) as browser:
            _, form = authorize_page(browser)
            answer = browser.post(
                form.action,
                data={**form.hidden, "holder": subject_of(CHEN)},
                follow_redirects=False,
            )
            done = browser.get(answer.headers["location"], follow_redirects=False)
            assert done.status_code == 503, done.text
            assert "Redis" in done.json()["detail"]
            assert HOLDER_COOKIE not in browser.cookies
