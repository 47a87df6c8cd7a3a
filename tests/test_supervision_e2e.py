"""Supervision and push end to end, as the issue's users meet it.

A forger tries a real licence's number with codes signed by a key of no trust domain, from one
address; the municipal supervision office signs in and finds the alert on its dashboard beside
the month's figures — and the forger's answers were the same before and after the alert. The
issuing department, subscribed to its licences' events, receives the revocation as a signed JWS
it verifies with nothing but the trust list it pinned; a forged delivery is refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from fastapi.testclient import TestClient

from core.clock import SystemClock
from supervision.delivery import DeliveryPolicy, DeliveryWorker
from supervision.endpoints import EndpointRule
from tests.alert_support import forged
from tests.domain import Domain, demo_domain
from tests.event_receiver import Receiver
from tests.supervision_fixtures import demo_office
from trust.jose import JwsError, verify_compact
from verify.offline import load_qr_keys

FORGERIES = 10  # the service's default for one source (ELICENCE_ALERT_SOURCE_FAILURES)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "supervision-e2e", events_allow_http_loopback=True)


def test_a_burst_of_forgeries_is_on_the_supervisors_dashboard(domain: Domain) -> None:
    issued = domain.issue()
    forger = TestClient(domain.client.app, client=("198.51.100.23", 51000))
    answers = []
    for _ in range(FORGERIES):
        response = forger.post("/api/v1/verify", json={"qr": forged(domain, issued)})
        assert response.status_code == 200, response.text
        answers.append((response.json()["indication"], response.json()["sub_indication"]))
    # Each forgery is refused alike, the tenth (which raised the alert) as the first.
    assert set(answers) == {("INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND")}, answers

    office = demo_office(domain)
    # Over https, as the session cookie is Secure.
    supervisor = TestClient(domain.client.app, base_url="https://testserver", follow_redirects=False)
    form = supervisor.get("/supervise/sign-in")
    token = CSRF.search(form.text)
    assert token is not None
    signed_in = supervisor.post(
        "/supervise/sign-in",
        data={"csrf": token.group(1), "client_id": office.client_id, "api_key": office.api_key},
    )
    assert signed_in.status_code == 303, signed_in.text
    page = supervisor.get("/supervise")
    assert page.status_code == 200
    month = re.search(r'id="month-issued">(\d+)<', page.text)
    assert month is not None and int(month.group(1)) >= 1  # this month's issuance, seen
    assert "同一来源反复核验失败" in page.text  # the source rule, by its name
    assert "198.51.100.23" not in page.text  # the address itself is never kept

    alerts = domain.client.get(
        "/api/v1/supervision/alerts", headers=office.bearer
    ).json()["items"]
    [alert] = [a for a in alerts if a["rule"] == "repeated_failures_source"]
    assert alert["occurrences"] == 1 and alert["acknowledged_at"] is None
    assert alert["id"] in page.text


def test_the_issuer_receives_a_signed_revocation_it_verifies_with_its_pinned_trust_list(
    domain: Domain, tmp_path: Path
) -> None:
    receiver = Receiver()
    try:
        created = domain.client.post(
            "/api/v1/subscriptions",
            json={"url": receiver.url, "topics": ["issued"]},
            headers=domain.auth(),
        )
        assert created.status_code == 201, created.text
        issued = domain.issue()
        revoked = domain.client.post(
            f"/api/v1/licences/{issued['identifier']}/revoke",
            json={"reason": "以欺骗手段取得"},
            headers=domain.auth(),
        )
        assert revoked.status_code == 200, revoked.text
        services = domain.services
        worker = DeliveryWorker(
            engine=services.engine,
            audit=services.audit,
            clock=SystemClock(),
            keys=services.credential_keys,
            issuer="https://licence.example.gov.cn",
            rule=EndpointRule(allow_http_loopback=True),
            policy=DeliveryPolicy(timeout_seconds=2.0),
        )
        for _ in range(20):  # fan out, then post; each step does one of them
            if len(receiver.behaviour.posts) >= 2 or not worker.step().busy:
                break
        posts = receiver.behaviour.posts
        assert [p.answered for p in posts] == [200, 200], posts

        # The receiving department: the trust list it downloaded and pinned, nothing else.
        document = domain.client.get("/pki/trust-list").json()
        pem = document["signer"]["certificate"].encode()
        pin = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()
        downloaded = tmp_path / "trust-list.json"
        downloaded.write_text(json.dumps(document), encoding="utf-8")
        trusted = load_qr_keys(downloaded, pin)  # the offline verifier's pinned loading
        assert trusted.refusal is None, trusted.refusal
        keys = dict(trusted.status.keys)  # the credential keys, only through the pin
        assert keys
        events = []
        for post in posts:
            _, payload = verify_compact(post.body, keys.get, typ="elicence-event+jwt")
            events.append(json.loads(payload))
        assert [e["kind"] for e in events] == ["licence.issued", "licence.revoked"]
        revocation = events[1]
        assert revocation["data"]["licence"]["identifier"] == issued["identifier"]
        assert revocation["data"]["status"] == {"from": "valid", "to": "revoked"}
        assert revocation["event_id"] == posts[1].event_id
        assert "以欺骗手段取得" not in posts[1].body  # the reason stays with the licence's readers

        # A delivery a third party forged — the revocation's claims under another key — fails.
        header, body, _ = posts[1].body.split(".")
        with pytest.raises(JwsError):
            verify_compact(f"{header}.{body}.{'A' * 86}", keys.get, typ="elicence-event+jwt")
    finally:
        receiver.close()
