"""Short-lived presentation codes under a controlled clock, holder links, the verification log."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.clock import FixedClock
from licences.payload import PayloadType, decode
from tests.domain import Domain, demo_domain

TTL = 240


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    return demo_domain(tmp_path_factory, "present", clock=clock, presentation_ttl_seconds=TTL)


def mint(domain: Domain, identifier: str, headers: dict[str, str]) -> dict[str, Any]:
    response = domain.client.post(f"/api/v1/licences/{identifier}/presentations", headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()  # type: ignore[no-any-return]


def verify(domain: Domain, text: str) -> dict[str, Any]:
    response = domain.client.post("/api/v1/verify", json={"qr": text})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def holder_link(domain: Domain, identifier: str, index: int = 0) -> str:
    response = domain.client.post(
        f"/api/v1/licences/{identifier}/holder-links", headers=domain.auth(index)
    )
    assert response.status_code == 201, response.text
    url = response.json()["url"]
    assert url.startswith("https://licence.example.gov.cn/h/present/hl_")
    return url.rsplit("/", 1)[1]  # type: ignore[no-any-return]


def test_presentation_passes_then_expires(domain: Domain, clock: FixedClock) -> None:
    issued = domain.issue()
    shown = mint(domain, issued["identifier"], domain.auth())
    assert shown["qr"].startswith("HTTPS://LICENCE.EXAMPLE.GOV.CN/V/")
    assert shown["qr_svg"].startswith("data:image/svg+xml")
    assert shown["expires_in"] == TTL
    claims = decode(shown["qr"].rsplit("/", 1)[1]).claims
    assert claims.type is PayloadType.PRESENTATION
    assert claims.expires_at is not None
    assert claims.expires_at - claims.issued_at == timedelta(seconds=TTL)
    from licences.qr import qr_matrix

    assert qr_matrix(shown["qr"]).version <= 12  # on a phone screen, at error correction M

    report = verify(domain, shown["qr"])
    assert report["indication"] == "PASSED", report
    assert report["extra"]["method"] == "presentation"
    assert report["extra"]["presentation"] == {
        "presented_at": shown["presented_at"],
        "expires_at": shown["expires_at"],
    }
    assert report["licence"]["identifier"] == issued["identifier"]

    clock.advance(timedelta(seconds=TTL))  # the last second of its life
    assert verify(domain, shown["qr"])["indication"] == "PASSED"

    clock.advance(timedelta(seconds=1))  # a screenshot replayed later
    replay = verify(domain, shown["qr"])
    assert (replay["indication"], replay["sub_indication"]) == ("FAILED", "EXPIRED")
    assert "出示码已过期" in replay["message"]
    assert replay["licence"] is None  # nothing about the licence is shown for a stale code

    page = domain.client.get("/" + shown["qr"].split("/", 3)[3])
    assert 'data-indication="FAILED"' in page.text
    assert "出示码已过期" in page.text


def test_presentation_dated_in_the_future_is_not_confirmed(
    domain: Domain, clock: FixedClock
) -> None:
    issued = domain.issue()
    shown = mint(domain, issued["identifier"], domain.auth())
    clock.advance(timedelta(minutes=-3))
    try:
        report = verify(domain, shown["qr"])
    finally:
        clock.advance(timedelta(minutes=3))
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "NOT_YET_VALID")


def test_a_forged_presentation_with_a_later_expiry_fails_on_its_signature(
    domain: Domain,
) -> None:
    import base64

    import cbor2

    issued = domain.issue()
    code = mint(domain, issued["identifier"], domain.auth())["qr"].rsplit("/", 1)[1]
    tag = cbor2.loads(base64.b32decode(code + "=" * (-len(code) % 8)))
    protected, _, payload, signature = tag.value
    claims = dict(cbor2.loads(payload))
    claims[7] += 86400
    forged = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, cbor2.dumps(claims), signature]))
    report = verify(domain, base64.b32encode(forged).decode().rstrip("="))
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "SIG_CRYPTO_FAILURE")


def test_minting_is_for_the_issuer_or_the_holder_link_only(domain: Domain) -> None:
    issued = domain.issue()
    identifier = issued["identifier"]
    url = f"/api/v1/licences/{identifier}/presentations"
    assert domain.client.post(url).status_code == 401
    assert domain.client.post(url, headers=domain.auth(1)).status_code == 403
    secret = holder_link(domain, identifier)
    shown = mint(domain, identifier, {"Authorization": f"Bearer {secret}"})
    assert verify(domain, shown["qr"])["indication"] == "PASSED"
    wrong = {"Authorization": f"Bearer {secret[:-2]}xx"}
    assert domain.client.post(url, headers=wrong).status_code == 401
    other = domain.issue()
    elsewhere = f"/api/v1/licences/{other['identifier']}/presentations"
    assert (
        domain.client.post(elsewhere, headers={"Authorization": f"Bearer {secret}"}).status_code
        == 401
    )
    # Another department cannot hand out links to this licence either.
    assert (
        domain.client.post(
            f"/api/v1/licences/{identifier}/holder-links", headers=domain.auth(1)
        ).status_code
        == 403
    )


def test_revoked_licence_cannot_be_presented(domain: Domain) -> None:
    issued = domain.issue()
    secret = holder_link(domain, issued["identifier"])
    domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/revoke",
        json={"reason": "测试"},
        headers=domain.auth(),
    )
    response = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/presentations", headers=domain.auth()
    )
    assert response.status_code == 409
    page = domain.client.get(f"/h/present/{secret}")
    assert page.status_code == 200
    assert "不能出示" in page.text and 'id="qr"' not in page.text


def test_holder_page_shows_a_fresh_code_and_the_history(domain: Domain, clock: FixedClock) -> None:
    issued = domain.issue(1)  # a person's licence: name and ID are masked
    secret = holder_link(domain, issued["identifier"], 1)
    scanned = mint(domain, issued["identifier"], domain.auth(1))
    verify(domain, scanned["qr"])
    domain.client.get("/" + issued["links"]["verify"].split("/", 3)[3])  # a phone scan
    page = domain.client.get(f"/h/present/{secret}")
    assert page.status_code == 200
    html = page.text
    assert page.headers["cache-control"] == "no-store"
    assert 'src="data:image/svg+xml' in html
    assert '<script src="/static/present.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert not re.search(r"(src|href)=\"https?://", html), "no external assets"
    assert "onclick" not in html and "style=" not in html
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "核验接口（二维码）" in html and "手机扫码打开核验页" in html
    holder = domain.department(1)["sample_request"]["holder"]
    assert holder["id"] not in html and holder["name"] not in html
    assert holder["id"][-4:] in html

    first = re.search(r'data-expires-in="(\d+)"', html)
    assert first is not None and int(first.group(1)) == TTL
    clock.advance(timedelta(seconds=30))
    fresh = domain.client.get(f"/h/present/{secret}/qr")
    assert fresh.status_code == 200
    assert fresh.json()["expires_in"] == TTL
    assert fresh.json()["qr"] != scanned["qr"]
    assert verify(domain, fresh.json()["qr"])["indication"] == "PASSED"

    # an unknown link is "not found", like a revoked or expired one (tests/test_holder_links.py)
    assert domain.client.get("/h/present/hl_nope_nope").status_code == 404
    assert domain.client.get("/h/present/hl_nope_nope/qr").status_code == 404


def test_verification_log_for_the_issuing_department(domain: Domain, clock: FixedClock) -> None:
    issued = domain.issue()
    identifier = issued["identifier"]
    path = "/" + issued["links"]["verify"].split("/", 3)[3]
    domain.client.get(path)  # qr-page
    verify(domain, issued["links"]["verify"])  # api-qr
    domain.client.post("/verify", data={"qr": issued["links"]["verify"]})  # page-scan
    domain.verify_pdf(domain.pdf(issued))  # api-upload
    shown = mint(domain, identifier, domain.auth())
    clock.advance(timedelta(seconds=TTL + 1))
    verify(domain, shown["qr"])  # an expired presentation is logged too

    url = f"/api/v1/licences/{identifier}/verifications"
    response = domain.client.get(url, headers=domain.auth())
    assert response.status_code == 200, response.text
    entries = response.json()["verifications"]
    assert [(e["channel"], e["method"], e["indication"]) for e in entries] == [
        ("api-qr", "presentation", "FAILED"),
        ("api-upload", "pdf", "PASSED"),
        ("page-scan", "qr-payload", "PASSED"),
        ("api-qr", "qr-payload", "PASSED"),
        ("qr-page", "qr-payload", "PASSED"),
    ]
    assert entries[0]["sub_indication"] == "EXPIRED"
    assert entries[0]["channel_label"].startswith("核验接口")
    assert datetime.fromisoformat(entries[0]["at"]) == clock.now()
    assert domain.client.get(url, headers=domain.auth(1)).status_code == 403
    assert domain.client.get(url).status_code == 401
    assert (
        len(domain.client.get(url + "?limit=2", headers=domain.auth()).json()["verifications"]) == 2
    )


def test_forged_codes_do_not_write_into_a_licence_log(domain: Domain) -> None:
    """Only a payload whose signature held may name the licence in the log."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    from licences.payload import sign

    issued = domain.issue()
    claims = decode(issued["links"]["verify"].rsplit("/", 1)[1]).claims
    attacker = ec.generate_private_key(ec.SECP256R1())
    forged = sign(
        claims,
        domain.services.qr_keys.published()[0].kid,
        lambda d: attacker.sign(d, ec.ECDSA(Prehashed(hashes.SHA256()))),
    )
    assert verify(domain, forged)["indication"] == "FAILED"
    entries = domain.client.get(
        f"/api/v1/licences/{issued['identifier']}/verifications", headers=domain.auth()
    ).json()["verifications"]
    assert entries == []


def test_qr_keys_are_published(domain: Domain) -> None:
    body = domain.client.get("/pki/qr-keys").json()
    [key] = body["qr_keys"]
    assert key["alg"] == "ES256"
    assert key["kid"] == domain.services.qr_keys.published()[0].kid.hex()
    assert key["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
