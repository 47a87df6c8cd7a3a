"""Holder sign-in through OpenID Connect, end to end over HTTP: the development identity provider
on its own loopback port, an elicence server configured against it, a browser-like httpx client
that picks a demo holder on the provider's page. Then the holder's pages and API, and every way a
sign-in or a session must be refused."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlmodel import select

from api.app import create_app
from api.container import build_services
from api.dev_idp.provider import DEMO_NOTICE
from api.edge.holder_session import COOKIE, HolderPrincipal, HolderSessions
from api.ops.bootstrap import initialise
from api.pages.oidc import SignInFailed
from core.audit import AuditEntry
from core.bilingual import bilingual
from core.db import reading
from licences.repository import document
from tests.holder_login import (
    CANYIN,
    CHEN,
    WANG,
    HolderSite,
    ServerThread,
    authorize_page,
    csrf_token,
    free_port,
    sign_in,
    site_settings,
    start_site,
    subject_of,
)


@pytest.fixture(scope="module")
def holder_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
    with start_site(tmp_path_factory.mktemp("oidc") / "data") as site:
        yield site


def audit(site: HolderSite, action: str) -> list[AuditEntry]:
    with reading(site.services.engine) as session:
        return list(
            session.exec(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            )
        )


def callback_url(client: httpx.Client, idp_holder: str) -> str:
    """Runs the flow up to the provider's redirect back, which is returned, not followed."""
    _, form = authorize_page(client)
    answer = client.post(
        form.action,
        data={**form.hidden, "holder": subject_of(idp_holder)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert "/me/callback?" in location
    return location


def my_identifiers(client: httpx.Client) -> list[str]:
    response = client.get("/api/v1/holder/licences")
    assert response.status_code == 200, response.text
    return [item["identifier"] for item in response.json()["licences"]]


def test_sign_in_shows_my_licences_and_only_mine(holder_site: HolderSite) -> None:
    site = holder_site
    before = len(audit(site, "holder.sign_in"))
    with closing(sign_in(site.base_url, CHEN)) as client:
        page = client.get("/me")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "<script>" not in page.text  # no inline script anywhere on the page
        assert 'id="holder-name" title="已登录 / signed in">陈*华<' in page.text  # masked header
        for link in ('href="/me"', 'href="/me/grants"', 'href="/me/usage"'):
            assert link in page.text
        token = csrf_token(client)
        assert f'name="csrf" value="{token}"' in page.text  # the sign-out form
        assert "医师执业证书" in page.text
        body = client.get("/api/v1/holder/licences").json()["licences"]
        assert body and {(b["holder_id_type"], b["holder_id"]) for b in body} == {("111", CHEN)}
        assert body[0]["holder_name"] == "陈建华"  # their own data, unmasked
        session = client.get("/api/v1/holder/session").json()
        assert session["subject"] == subject_of(CHEN) and session["issuer"] == site.idp_url
        cookie = next(c for c in client.cookies.jar if c.name == COOKIE)
        assert cookie.has_nonstandard_attr("HttpOnly")
    entries = audit(site, "holder.sign_in")[before:]
    assert [(e.actor, e.outcome) for e in entries] == [(f"holder:{subject_of(CHEN)}", "ok")]
    assert CHEN not in json.dumps(entries[0].detail)  # the audit names the subject, not the ID


def test_an_organisation_signs_in_too(holder_site: HolderSite) -> None:
    with closing(sign_in(holder_site.base_url, CANYIN)) as client:
        body = client.get("/api/v1/holder/licences").json()["licences"]
        assert {b["type_name"] for b in body} == {"食品经营许可证"}
        assert "示范餐饮管理有限公司" in client.get("/me").text  # organisations are not masked


def test_pdf_is_mine_only(holder_site: HolderSite) -> None:
    site = holder_site
    with (
        closing(sign_in(site.base_url, CHEN)) as chen,
        closing(sign_in(site.base_url, WANG)) as wang,
    ):
        mine = my_identifiers(chen)[0]
        hers = my_identifiers(wang)[0]
        with reading(site.services.engine) as session:
            stored = document(session, mine)
        for path in (f"/me/licences/{mine}/pdf", f"/api/v1/holder/licences/{mine}/pdf"):
            response = chen.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == "application/pdf"
            assert response.content == stored
        for path in (
            f"/me/licences/{hers}/pdf",
            f"/api/v1/holder/licences/{hers}/pdf",
            f"/api/v1/holder/licences/{hers}",
            f"/me/licences/{hers}",
        ):
            response = chen.get(path)
            assert response.status_code == 404, (path, response.status_code)
            assert response.content != stored
        assert chen.get("/api/v1/holder/licences/not-an-identifier").status_code == 422
        # a department's credential never acts for a holder
        department = httpx.get(f"{site.base_url}/api/v1/holder/licences", headers=site.auth(0))
        assert department.status_code == 403
        assert httpx.get(f"{site.base_url}/api/v1/holder/licences").status_code == 401


def test_presentation_qr_for_my_valid_licence(holder_site: HolderSite) -> None:
    site = holder_site
    with closing(sign_in(site.base_url, CHEN)) as client:
        mine = my_identifiers(client)[0]
        page = client.get(f"/me/licences/{mine}/present")
        assert page.status_code == 200
        assert f'data-refresh-url="/me/licences/{mine}/present/qr"' in page.text
        assert '<script src="/static/present.js" defer></script>' in page.text
        fresh = client.get(f"/me/licences/{mine}/present/qr")
        assert fresh.status_code == 200 and fresh.json()["identifier"] == mine
        minted = client.post(f"/api/v1/holder/licences/{mine}/presentations")
        assert minted.status_code == 201, minted.text
        report = client.post("/api/v1/verify", json={"qr": minted.json()["qr"]}).json()
        assert report["indication"] == "PASSED"
        assert report["extra"]["method"] == "presentation"
        assert report["licence"]["identifier"] == mine
        # without the CSRF token a write is refused, with the session cookie or not
        del client.headers["X-CSRF-Token"]
        refused = client.post(f"/api/v1/holder/licences/{mine}/presentations")
        assert refused.status_code == 403
        wrong = client.post(
            f"/api/v1/holder/licences/{mine}/presentations", headers={"X-CSRF-Token": "x" * 22}
        )
        assert wrong.status_code == 403
    presented = [e for e in audit(site, "licence.present") if e.object_id == mine]
    assert presented and presented[-1].actor == f"holder:{subject_of(CHEN)}"


def _reseal(value: str, **changes: str) -> str:
    body, _, mac = value.partition(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(changes)
    raw = json.dumps(claims, ensure_ascii=False, sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + mac


def _with_cookie(site: HolderSite, value: str) -> httpx.Client:
    return httpx.Client(base_url=site.base_url, cookies={COOKIE: value}, timeout=30)


def test_tampered_forged_and_expired_sessions_are_refused(holder_site: HolderSite) -> None:
    site = holder_site
    with closing(sign_in(site.base_url, CHEN)) as client:
        genuine = client.cookies[COOKIE]
    with closing(_with_cookie(site, genuine)) as replayed:
        assert replayed.get("/api/v1/holder/licences").status_code == 200  # the control
    body, _, mac = genuine.partition(".")
    forged_mac = mac[:-2] + ("AA" if not mac.endswith("AA") else "BB")
    other_key = HolderSessions(b"another-key-entirely", secure=False)
    principal = HolderPrincipal("111", CHEN, "陈建华", subject_of(CHEN), site.idp_url)
    now = site.services.clock.now()
    for value in (
        _reseal(genuine, id_number=WANG),  # someone else's ID, old MAC
        f"{body}.{forged_mac}",
        other_key.seal(principal, now),
        "garbage",
        site.services.holder_sessions.sign(
            "oidc-login", {"state": "x"}, now + timedelta(minutes=5)
        ),
    ):
        with closing(_with_cookie(site, value)) as attacker:
            response = attacker.get("/api/v1/holder/licences")
            assert response.status_code == 401, value
            assert response.headers["content-type"].startswith("application/problem+json")
            page = attacker.get("/me")
            assert page.status_code == 401 and 'id="signin-link"' in page.text
    expired = site.services.holder_sessions.seal(principal, now - timedelta(minutes=31))
    with closing(_with_cookie(site, expired)) as late:
        response = late.get("/api/v1/holder/licences")
        assert response.status_code == 401
        assert "登录已过期" in response.json()["detail"]
        assert "登录已过期" in late.get("/me").text
    fresh = site.services.holder_sessions.seal(principal, now)
    with closing(_with_cookie(site, fresh)) as ok:
        assert ok.get("/api/v1/holder/licences").status_code == 200


def test_wrong_state_is_refused_and_the_genuine_answer_still_works(
    holder_site: HolderSite,
) -> None:
    site = holder_site
    before = len(audit(site, "holder.sign_in"))
    with closing(httpx.Client(base_url=site.base_url, timeout=60)) as client:
        url = callback_url(client, WANG)
        query = parse_qs(urlsplit(url).query)
        assert query["iss"] == [site.idp_url]
        forged = f"{site.base_url}/me/callback?" + urlencode(
            {"code": query["code"][0], "state": "attacker-chosen-state"}
        )
        refused = client.get(forged)
        assert refused.status_code == 400
        assert 'data-reason="state"' in refused.text
        assert "登录请求已失效" in refused.text
        assert COOKIE not in client.cookies
        mixed_up = url.replace(
            urlencode({"iss": site.idp_url}), urlencode({"iss": "https://evil.example"})
        )
        assert mixed_up != url
        other_issuer = client.get(mixed_up)
        assert other_issuer.status_code == 400 and 'data-reason="issuer"' in other_issuer.text
        done = client.get(url, follow_redirects=True)
        assert done.status_code == 200 and done.url.path == "/me"
        assert my_identifiers(client)
    outcomes = [(e.outcome, e.detail.get("reason")) for e in audit(site, "holder.sign_in")[before:]]
    assert outcomes == [("failed", "state"), ("failed", "issuer"), ("ok", None)]


def test_a_code_is_good_once(holder_site: HolderSite) -> None:
    site = holder_site
    with closing(httpx.Client(base_url=site.base_url, timeout=60)) as client:
        url = callback_url(client, CHEN)
        pending = dict(client.cookies)  # the transaction cookie, as an attacker might copy it
        assert client.get(url, follow_redirects=True).url.path == "/me"
        # replayed in the same browser: the sign-in it belonged to is over
        again = client.get(url)
        assert again.status_code == 400 and 'data-reason="state"' in again.text
    # replayed with the whole request copied: its state was taken once (api.pages.oidc
    # claim_state), so the service refuses before the used code reaches the provider
    with closing(httpx.Client(base_url=site.base_url, cookies=pending, timeout=60)) as thief:
        stolen = thief.get(url)
        assert stolen.status_code == 400 and 'data-reason="state"' in stolen.text
        assert COOKIE not in thief.cookies
        assert thief.get("/api/v1/holder/licences").status_code == 401


def test_cancelled_sign_in(holder_site: HolderSite) -> None:
    with closing(
        httpx.Client(base_url=holder_site.base_url, timeout=60, follow_redirects=True)
    ) as client:
        _, form = authorize_page(client)
        answer = client.post(form.action, data={**form.hidden, "deny": "1"})
        assert answer.status_code == 401 and 'data-reason="denied"' in answer.text
        assert answer.url.path == "/me/callback"


@contextmanager
def impostor_key(site: HolderSite) -> Iterator[None]:
    """The provider signs with another key under the published key's id."""
    published = site.idp.signing_key
    other = ECKey.generate_key("P-256", {"alg": "ES256", "use": "sig", "kid": published.kid})
    site.idp.jwks_keys, site.idp.signing_key = (published,), other
    try:
        yield
    finally:
        site.idp.jwks_keys, site.idp.signing_key = None, published


def test_id_token_with_a_bad_signature_is_refused(holder_site: HolderSite) -> None:
    site = holder_site
    with impostor_key(site), closing(httpx.Client(base_url=site.base_url, timeout=60)) as client:
        answer = client.get(callback_url(client, CHEN), follow_redirects=True)
        assert answer.status_code == 401 and 'data-reason="id_token"' in answer.text
        assert COOKIE not in client.cookies
    failed = audit(site, "holder.sign_in")[-1]
    assert (failed.outcome, failed.detail["reason"]) == ("failed", "id_token")


def test_id_token_claims_are_checked(holder_site: HolderSite) -> None:
    site = holder_site
    oidc = site.services.oidc
    assert oidc is not None
    metadata = oidc.metadata()
    now = int(time.time())
    good: dict[str, Any] = {
        "iss": site.idp_url,
        "aud": oidc.config.client_id,
        "sub": subject_of(CHEN),
        "iat": now,
        "exp": now + 300,
        "nonce": "n-1",
        "name": "陈建华",
        "id_type": "111",
        "id_number": CHEN,
    }
    key = site.idp.signing_key

    def token(claims: dict[str, Any], **header: str) -> dict[str, str]:
        head = {"alg": "ES256", "kid": key.kid, **header}
        return {"id_token": jwt.encode(head, claims, key), "access_token": "a"}

    assert oidc.check_id_token(metadata, token(good), "n-1")["sub"] == subject_of(CHEN)
    for claims, nonce in (
        (good | {"iss": "https://evil.example"}, "n-1"),
        (good | {"aud": "another-client"}, "n-1"),
        (good | {"exp": now - 3600, "iat": now - 3900}, "n-1"),
        (good, "another-nonce"),
        ({k: v for k, v in good.items() if k != "nonce"}, "n-1"),
        ({k: v for k, v in good.items() if k != "exp"}, "n-1"),
    ):
        with pytest.raises(SignInFailed) as refused:
            oidc.check_id_token(metadata, token(claims), nonce)
        assert (refused.value.status, refused.value.reason) == (401, "id_token")
    unsigned = (
        ".".join(
            base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
            for part in ({"alg": "none"}, good)
        )
        + "."
    )
    with pytest.raises(SignInFailed):
        oidc.check_id_token(metadata, {"id_token": unsigned}, "n-1")


def test_identity_claims_must_hold_a_valid_id(holder_site: HolderSite) -> None:
    site = holder_site
    holder = next(h for h in site.idp.holders if h["id"] == CHEN)
    broken = dict(holder, id="350102198503120035", subject="demo-broken-id")  # check digit wrong
    site.idp.holders = (*site.idp.holders, broken)
    try:
        with closing(
            httpx.Client(base_url=site.base_url, timeout=60, follow_redirects=True)
        ) as client:
            _, form = authorize_page(client)
            assert "demo-broken-id" in form.subjects
            answer = client.post(form.action, data={**form.hidden, "holder": "demo-broken-id"})
            assert COOKIE not in client.cookies
    finally:
        site.idp.holders = site.idp.holders[:-1]
    assert answer.status_code == 403 and 'data-reason="identity"' in answer.text
    failed = audit(site, "holder.sign_in")[-1]
    assert failed.object_id == "holder:demo-broken-id" and failed.outcome == "failed"


def test_sign_out_needs_the_csrf_token_and_ends_the_session(holder_site: HolderSite) -> None:
    site = holder_site
    with closing(sign_in(site.base_url, WANG)) as client:
        token = client.headers.pop("X-CSRF-Token")
        refused = client.post("/me/logout", data={"csrf": "wrong"})
        assert refused.status_code == 403
        assert client.get("/api/v1/holder/licences").status_code == 200
        page = client.get("/me").text
        assert re.search(r'name="csrf" value="([^"]+)"', page).group(1) == token  # type: ignore[union-attr]
        done = client.post("/me/logout", data={"csrf": token})
        assert done.status_code == 200 and "已退出登录" in done.text
        assert COOKIE not in client.cookies
        assert client.get("/api/v1/holder/licences").status_code == 401
    assert audit(site, "holder.sign_out")[-1].actor == f"holder:{subject_of(WANG)}"


def test_provider_down_and_the_development_provider_only_in_demo_mode(tmp_path: Path) -> None:
    """No 500 when the platform is unreachable; /dev-idp is a 404 unless demo mode is on, and in
    demo mode it is mounted in the service and signs a holder in out of the box."""
    from fastapi.testclient import TestClient

    data_dir = tmp_path / "data"
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    services = build_services(site_settings(data_dir, "http://127.0.0.1:1", closed))
    initialise(services, with_demo=False)
    client = TestClient(create_app(services=services))
    down = client.get("/me/login", follow_redirects=False)
    assert down.status_code == 503 and 'data-reason="provider"' in down.text
    assert "统一身份认证平台暂不可用" in down.text
    assert client.get("/dev-idp/.well-known/openid-configuration").status_code == 404
    assert client.get("/dev-idp/authorize").status_code == 404

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    demo = build_services(site_settings(data_dir, base, None, demo_mode=True))
    with ServerThread(create_app(services=demo), port):
        metadata = httpx.get(f"{base}/dev-idp/.well-known/openid-configuration").json()
        assert metadata["issuer"] == f"{base}/dev-idp"
        assert metadata["code_challenge_methods_supported"] == ["S256"]
        with closing(httpx.Client(base_url=base, timeout=60, follow_redirects=True)) as browser:
            page, _ = authorize_page(browser)
            assert str(bilingual(DEMO_NOTICE)) in page.text  # its English half lang="en"
        with closing(sign_in(base, CHEN)) as holder:
            assert holder.get("/api/v1/holder/licences").json() == {"licences": []}
    off = build_services(site_settings(data_dir, base, None))
    assert TestClient(create_app(services=off)).get("/me/login").status_code == 503
