"""A licence exported as a W3C Verifiable Credential 2.0 (``application/vc+jwt``): refused to
everyone but its issuing department and its holder, without saying whether it exists; valid
against the W3C VC 2.0 JSON Schema (vendored in tests/data/vc-2.0); verified by jwcrypto, a JOSE
library independent of ours, with the key the trust list publishes; its status entry is the one
the licence's QR payload carries; every export is audited with its key use."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import col, select

from api.edge.holder_session import COOKIE, HolderPrincipal
from core.audit import AuditEntry
from core.clock import FixedClock, china_today
from core.db import reading, transaction
from licences import payload
from licences.identifiers import LicenceIdentifier
from licences.models import Licence
from seals.clients import create_client
from tests.domain import Domain, demo_domain
from tests.tools import require_module
from trust import jose

SCHEMA_DIR = Path(__file__).parent / "data" / "vc-2.0"
CHEN = ("111", "350102198503120034")  # the demo physician 陈建华 (api/ops/demo.py)
WANG = ("111", "350103199007150024")  # another demo physician, 王丽萍
VC_TYPE = "application/vc+jwt"
CLOCK = FixedClock(datetime.now(UTC).replace(microsecond=0))
PUBLISHED_WITHIN = timedelta(seconds=61)  # a status change reaches the list within 60 s
# What the status list's four 2-bit values mean (docs/status-list.md), written out here.
MESSAGES = {
    "0x0": "有效 / valid",
    "0x1": "已吊销或注销 / revoked or cancelled",
    "0x2": "已暂停 / suspended",
    "0x3": "已变更或作废 / superseded or void",
}


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "credential", clock=CLOCK)


def department_index(domain: Domain, holder_id: str) -> int:
    """The demo department whose sample licence is issued to ``holder_id``."""
    for index, department in enumerate(domain.credentials["departments"]):
        if department["sample_request"]["holder"]["id"] == holder_id:
            return index
    raise KeyError(holder_id)


@pytest.fixture(scope="module")
def health(domain: Domain) -> int:
    return department_index(domain, CHEN[1])


@pytest.fixture(scope="module")
def market(domain: Domain, health: int) -> int:
    return 1 - health


@pytest.fixture(scope="module")
def chens(domain: Domain, health: int) -> dict[str, Any]:
    """A licence the health commission issues to 陈建华 for these tests."""
    return domain.issue(health)


def holder_client(domain: Domain, holder: tuple[str, str], subject: str) -> TestClient:
    """A browser signed in as ``holder`` (a session cookie as the sign-in flow seals it)."""
    principal = HolderPrincipal(
        id_type=holder[0],
        id_number=holder[1],
        name="持证人",
        subject=subject,
        issuer="https://idp.example.gov.cn",
    )
    client = TestClient(domain.client.app)
    client.cookies.set(
        COOKIE, domain.services.holder_sessions.seal(principal, domain.services.clock.now())
    )
    return client


def client_id_of(domain: Domain, index: int) -> str:
    """A demo department's API client, named by its key (``elk_<client id>_<secret>``)."""
    return str(domain.department(index)["api_key"].split("_")[1])


def credential_url(identifier: str) -> str:
    return f"/api/v1/licences/{identifier}/credential"


def unknown_identifier(identifier: str) -> str:
    """A well-formed identifier (its check character right) that no licence has."""
    return str(replace(LicenceIdentifier.parse(identifier), serial="ZZZZZZZZZZZZ"))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, body, _ = token.split(".")
    return json.loads(unb64(header)), json.loads(unb64(body).decode("utf-8"))


def trust_list(domain: Domain) -> dict[str, Any]:
    response = domain.client.get("/pki/trust-list")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def published_jwk(domain: Domain, kid: str) -> dict[str, Any]:
    keys = {entry["kid"]: entry["jwk"] for entry in trust_list(domain)["credential_keys"]}
    assert kid in keys, (kid, sorted(keys))
    return keys[kid]  # type: ignore[no-any-return]


def entries(domain: Domain, action: str, object_id: str | None = None) -> list[AuditEntry]:
    with reading(domain.services.engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == action)
        if object_id is not None:
            query = query.where(AuditEntry.object_id == object_id)
        return list(session.exec(query.order_by(col(AuditEntry.seq))))


def credential_key_uses(domain: Domain) -> list[AuditEntry]:
    return [
        e for e in entries(domain, "key.sign") if e.detail.get("purpose") == "credential-export"
    ]


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def exported(domain: Domain, identifier: str, index: int) -> str:
    response = domain.client.get(credential_url(identifier), headers=domain.auth(index))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == VC_TYPE
    assert response.headers["cache-control"] == "no-store"
    return str(response.text)


# -- what a hostile department, holder or file tries ----------------------------------------------


def test_a_department_that_did_not_issue_it_gets_404_exactly_as_for_no_licence(
    domain: Domain, chens: dict[str, Any], market: int
) -> None:
    uses_before = len(credential_key_uses(domain))
    foreign = domain.client.get(credential_url(chens["identifier"]), headers=domain.auth(market))
    missing = domain.client.get(
        credential_url(unknown_identifier(chens["identifier"])), headers=domain.auth(market)
    )
    one, other = assert_problem(foreign, 404), assert_problem(missing, 404)
    assert VC_TYPE not in foreign.headers["content-type"]
    # the same answer but for the identifier asked about: nothing tells the two apart
    assert one["detail"] == other["detail"].replace(
        unknown_identifier(chens["identifier"]), chens["identifier"]
    )
    assert {k for k in one if one[k] != other[k]} <= {"detail", "instance", "request_id"}
    assert len(credential_key_uses(domain)) == uses_before  # nothing was signed
    refused = entries(domain, "licence.credential", chens["identifier"])
    assert [
        (e.outcome, e.actor.startswith(f"department:{domain.department(market)['code']}/"))
        for e in refused
    ] == [("refused", True)]


def test_a_holders_grant_does_not_let_another_department_pull_the_credential(
    domain: Domain, chens: dict[str, Any], market: int
) -> None:
    """The record may be pulled under the grant; the credential, which names the holder in
    full, may not."""
    identifier = chens["identifier"]
    chen = holder_client(domain, CHEN, "credential-chen")
    csrf = chen.get("/api/v1/holder/session").json()["csrf_token"]
    entry = domain.client.get(f"/api/v1/catalogue/licence-types/{chens_type(domain, chens)}").json()
    item = sorted(entry["service_item_fields"])[0]
    grant = chen.post(
        "/api/v1/holder/grants",
        headers={"X-CSRF-Token": csrf},
        json={
            "identifier": identifier,
            "department": domain.department(market)["code"],
            "service_item": item,
            "business_number": "VC-2026-1",
            "valid_until": (
                china_today(domain.services.clock.now()) + timedelta(days=2)
            ).isoformat(),
        },
    )
    assert grant.status_code == 201, grant.text
    services = domain.services
    with transaction(services.engine) as session:
        _, key = create_client(
            session, services.audit, services.clock,
            department_code=domain.department(market)["code"], name="puller", actor="test",
            scopes=("licences:pull",),
        )  # fmt: skip
    puller = {"Authorization": f"Bearer {key}"}
    query = {"service_item": item, "business_number": "VC-2026-1"}
    pulled = domain.client.get(f"/api/v1/licences/{identifier}", headers=puller, params=query)
    assert pulled.status_code == 200, pulled.text  # the grant is live
    refused = domain.client.get(credential_url(identifier), headers=puller, params=query)
    assert_problem(refused, 404)


def chens_type(domain: Domain, chens: dict[str, Any]) -> str:
    return str(LicenceIdentifier.parse(chens["identifier"]).type_code)


def test_no_or_forged_credentials_are_refused(
    domain: Domain, chens: dict[str, Any], health: int
) -> None:
    url = credential_url(chens["identifier"])
    assert_problem(domain.client.get(url), 401)
    forged_key = {"Authorization": "Bearer elk_0123456789abcdef_" + "A" * 43}
    assert_problem(domain.client.get(url, headers=forged_key), 401)
    # an access token of the right shape, signed by a key that is not the domain's token key
    stranger = ec.generate_private_key(ec.SECP256R1())
    client_id = client_id_of(domain, health)
    header = b64(
        json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": "soft:token-signing:v1"}).encode()
    )
    now = int(domain.services.clock.now().timestamp())
    claims = b64(json.dumps({
        "iss": domain.settings.public_base_url, "sub": client_id, "aud": "elicence-api",
        "client_id": client_id, "department": domain.department(health)["code"],
        "scope": "licences:issue licences:manage", "iat": now, "exp": now + 300, "jti": "x",
    }).encode())  # fmt: skip
    r, s = decode_dss_signature(
        stranger.sign(f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    )
    forged_jwt = f"{header}.{claims}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    assert_problem(domain.client.get(url, headers={"Authorization": f"Bearer {forged_jwt}"}), 401)
    # a holder's session is not a department's credential
    chen = holder_client(domain, CHEN, "credential-chen")
    assert_problem(chen.get(url), 401)
    # a malformed identifier is refused before anything is looked up
    body = assert_problem(
        domain.client.get(credential_url("1.2.156.3005.2.X"), headers=domain.auth(health)), 422
    )
    assert body.get("field") == "identifier"


def test_a_holder_gets_only_their_own(domain: Domain, chens: dict[str, Any]) -> None:
    url = f"/me/licences/{chens['identifier']}/credential"
    wang = holder_client(domain, WANG, "credential-wang")
    theirs = wang.get(url)
    unknown = wang.get(f"/me/licences/{unknown_identifier(chens['identifier'])}/credential")
    assert theirs.status_code == unknown.status_code == 404, theirs.text
    assert theirs.headers["content-type"].startswith("text/html")
    echoed = (f"no licence {chens['identifier']}", f"next={url}")  # the path asked for
    shown = theirs.text
    for echo in echoed:
        shown = shown.replace(echo, "")
    for text in (chens["identifier"], CHEN[1], "陈建华"):
        assert text not in shown
    assert theirs.text.replace(chens["identifier"], "ID") == unknown.text.replace(
        unknown_identifier(chens["identifier"]), "ID"
    )
    # nobody signed in: the sign-in page; a department's credential is nobody's session
    for response in (
        TestClient(domain.client.app).get(url),
        domain.client.get(url, headers=domain.auth(0)),
    ):
        assert response.status_code == 401 and response.headers["content-type"].startswith(
            "text/html"
        )
    assert not [
        e for e in entries(domain, "licence.credential", chens["identifier"]) if e.outcome == "ok"
    ]


def test_a_changed_claim_fails_in_jwcrypto_and_in_ours(
    domain: Domain, chens: dict[str, Any], health: int
) -> None:
    jwcrypto_jwk = require_module("jwcrypto.jwk")
    jwcrypto_jws = require_module("jwcrypto.jws")
    token = exported(domain, chens["identifier"], health)
    header, credential = parts(token)
    key = jwcrypto_jwk.JWK(**published_jwk(domain, header["kid"]))
    protected, _, signature = token.split(".")
    changes: tuple[Callable[[dict[str, Any]], object], ...] = (
        lambda c: c["credentialSubject"].update(idNumber=WANG[1]),
        lambda c: c["credentialSubject"]["licence"]["fields"].update(scope="全科"),
        lambda c: c.update(validUntil="2099-12-31T23:59:59+08:00"),
        lambda c: c.pop("credentialStatus"),
    )
    for change in changes:
        changed = json.loads(json.dumps(credential))
        change(changed)
        body = b64(json.dumps(changed, ensure_ascii=False, separators=(",", ":")).encode())
        forged = f"{protected}.{body}.{signature}"
        with pytest.raises(jwcrypto_jws.InvalidJWSSignature):
            jwcrypto_jws.JWS().deserialize(forged, key=key, alg="ES256")
        with pytest.raises(jose.JwsError, match="does not verify"):
            jose.verify_compact(forged, domain.services.credential_keys.public_key, typ="vc+jwt")
    # the same token unchanged verifies in both (so the failures above are the change's)
    checked = jwcrypto_jws.JWS()
    checked.deserialize(token, key=key, alg="ES256")
    assert json.loads(checked.payload.decode("utf-8")) == credential
    ours = jose.verify_compact(token, domain.services.credential_keys.public_key, typ="vc+jwt")
    assert json.loads(ours[1]) == credential


def test_another_keys_signature_under_the_domains_kid_fails(
    domain: Domain, chens: dict[str, Any], health: int
) -> None:
    jwcrypto_jwk = require_module("jwcrypto.jwk")
    jwcrypto_jws = require_module("jwcrypto.jws")
    token = exported(domain, chens["identifier"], health)
    header, credential = parts(token)
    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = jose.sign_compact(
        {"typ": "vc+jwt", "cty": "vc"},
        json.dumps(credential).encode(),
        header["kid"],
        lambda digest: stranger.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))),
    )
    key = jwcrypto_jwk.JWK(**published_jwk(domain, header["kid"]))
    with pytest.raises(jwcrypto_jws.InvalidJWSSignature):
        jwcrypto_jws.JWS().deserialize(forged, key=key, alg="ES256")
    with pytest.raises(jose.JwsError):
        jose.verify_compact(forged, domain.services.credential_keys.public_key, typ="vc+jwt")


# -- what the issuer and the holder get ------------------------------------------------------------


def schema_validator() -> Any:
    jsonschema = require_module("jsonschema")
    schema = json.loads((SCHEMA_DIR / "verifiable-credential-schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def base_context_terms() -> tuple[set[str], set[str]]:
    """The terms the W3C base context defines for a credential, and for a status list entry."""
    context = json.loads((SCHEMA_DIR / "credentials-v2.jsonld").read_text())["@context"]
    credential = set(context) | set(context["VerifiableCredential"]["@context"])
    entry = set(context["BitstringStatusListEntry"]["@context"])
    return {t for t in credential if not t.startswith("@")}, {
        t for t in entry if not t.startswith("@")
    }


def status_index_of(issued: dict[str, Any]) -> int | None:
    """The status index the licence's signed QR payload carries (its verify URL's last part)."""
    code = issued["links"]["verify"].rsplit("/", 1)[1]
    return payload.decode(code).claims.status_index


def test_the_issuers_credential_is_a_valid_vc_with_the_licences_status_entry(
    domain: Domain, market: int
) -> None:
    issued = domain.issue(market)  # a food business licence: a fixed term, so a validUntil
    record = domain.client.get(
        f"/api/v1/licences/{issued['identifier']}", headers=domain.auth(market)
    ).json()
    token = exported(domain, issued["identifier"], market)
    header, credential = parts(token)

    errors = sorted(schema_validator().iter_errors(credential), key=str)
    assert not errors, [e.message for e in errors]
    defined, entry_terms = base_context_terms()
    assert set(credential) - {"@context"} <= defined, set(credential) - defined
    assert set(credential["credentialStatus"]) <= entry_terms, set(credential["credentialStatus"])

    assert header == {"typ": "vc+jwt", "cty": "vc", "alg": "ES256", "kid": header["kid"]}
    published_jwk(domain, header["kid"])  # the trust list names the key that signed it
    base = domain.settings.public_base_url
    department = domain.department(market)
    assert credential["@context"] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://www.w3.org/ns/credentials/undefined-terms/v2",
    ]
    assert credential["id"] == f"urn:gbt36904:{issued['identifier']}"
    assert credential["type"] == ["VerifiableCredential", "ElectronicLicenceCredential"]
    assert credential["issuer"] == {
        "id": f"{base}/api/v1/departments/{department['code']}",
        "name": department["name"],
    }
    assert credential["validFrom"] == f"{record['valid_from']}T00:00:00+08:00"
    assert record["valid_until"] is not None
    assert credential["validUntil"] == f"{record['valid_until']}T23:59:59+08:00"
    subject = credential["credentialSubject"]
    holder = department["sample_request"]["holder"]
    assert (subject["name"], subject["idType"], subject["idNumber"]) == (
        holder["name"], holder["id_type"], holder["id"],
    )  # fmt: skip
    licence = subject["licence"]
    assert licence["identifier"] == issued["identifier"]
    assert licence["typeCode"] == department["sample_request"]["licence_type"]
    assert licence["fields"] == department["sample_request"]["fields"]
    assert licence["documentSha256"] == issued["sha256"]
    assert (licence["validFrom"], licence["validUntil"]) == (
        record["valid_from"],
        record["valid_until"],
    )

    index = status_index_of(issued)
    assert isinstance(index, int)
    status_list = trust_list(domain)["status_list"]["url"]
    assert status_list == f"{base}/pki/status-list"
    assert credential["credentialStatus"] == {
        "id": f"{status_list}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "message",
        "statusListIndex": str(index),
        "statusSize": 2,
        "statusMessage": [{"status": k, "message": v} for k, v in MESSAGES.items()],
        "statusListCredential": status_list,
    }


def test_each_export_is_audited_with_its_key_use(
    domain: Domain, chens: dict[str, Any], health: int
) -> None:
    before = {e.seq for e in entries(domain, "licence.credential")}
    uses_before = {e.seq for e in credential_key_uses(domain)}
    exported(domain, chens["identifier"], health)
    chen = holder_client(domain, CHEN, "credential-chen")
    mine = chen.get(f"/me/licences/{chens['identifier']}/credential")
    assert mine.status_code == 200 and mine.headers["content-type"] == VC_TYPE, mine.text
    assert mine.headers["content-disposition"].startswith("attachment;")

    new = [e for e in entries(domain, "licence.credential") if e.seq not in before]
    client_id = client_id_of(domain, health)
    assert [(e.actor, e.object_type, e.object_id, e.outcome, e.detail["viewer"]) for e in new] == [
        (f"department:{domain.department(health)['code']}/client:{client_id}", "licence",
         chens["identifier"], "ok", "department"),
        ("holder:credential-chen", "licence", chens["identifier"], "ok", "holder"),
    ]  # fmt: skip
    uses = [e for e in credential_key_uses(domain) if e.seq not in uses_before]
    assert [e.actor for e in uses] == [new[0].actor, new[1].actor]
    assert all(e.object_id.split(":")[1] == "credential-signing" for e in uses)
    # the holder's copy is the same credential (issuer and holder see the same data)
    _, credential = parts(mine.text)
    assert credential["credentialSubject"]["idNumber"] == CHEN[1]
    assert credential["credentialSubject"]["name"] == "陈建华"
    assert credential["credentialStatus"]["statusListIndex"] == str(status_index_of(chens))
    assert "validUntil" not in credential  # the physician's licence has no end date


def test_the_holders_licence_page_links_the_credential(
    domain: Domain, chens: dict[str, Any]
) -> None:
    chen = holder_client(domain, CHEN, "credential-chen")
    page = chen.get(f"/me/licences/{chens['identifier']}")
    assert page.status_code == 200, page.text
    assert f'href="/me/licences/{chens["identifier"]}/credential"' in page.text
    assert '下载可验证凭证 / <span lang="en">Download as a Verifiable Credential</span>' in page.text


def entry_at(encoded_list: str, index: int) -> int:
    """The 2-bit entry ``index`` of a Bitstring Status List's ``encodedList``, read as the W3C
    specification says (multibase ``u`` base64url, GZIP, entry i at bits 2i and 2i+1 from the
    most significant bit of the first byte), written here apart from the product's reader."""
    assert encoded_list.startswith("u")
    raw = gzip.decompress(unb64(encoded_list[1:]))
    bit = index * 2
    return (raw[bit // 8] >> (6 - bit % 8)) & 0b11


def test_a_revoked_licence_still_exports_and_its_status_entry_says_revoked(
    domain: Domain, health: int
) -> None:
    """Followed as a verifier would: the credential's status list, verified with the same
    published key, holds 0x1 (revoked) at the credential's index, the QR code's index."""
    jwcrypto_jwk = require_module("jwcrypto.jwk")
    jwcrypto_jws = require_module("jwcrypto.jws")
    issued = domain.issue(health)
    revoked = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/revoke",
        headers=domain.auth(health),
        json={"reason": "吊销测试 / revocation test"},
    )
    assert revoked.status_code == 200, revoked.text
    token = exported(domain, issued["identifier"], health)
    header, credential = parts(token)
    status = credential["credentialStatus"]
    assert status["statusListIndex"] == str(status_index_of(issued))
    audited = entries(domain, "licence.credential", issued["identifier"])
    assert [e.detail["status_today"] for e in audited] == ["revoked"]

    CLOCK.advance(PUBLISHED_WITHIN)
    base = domain.settings.public_base_url
    assert status["statusListCredential"].startswith(f"{base}/")
    listed = domain.client.get(status["statusListCredential"].removeprefix(base))
    assert listed.status_code == 200 and listed.headers["content-type"].startswith(VC_TYPE)
    list_header, _ = parts(listed.text)
    checked = jwcrypto_jws.JWS()
    checked.deserialize(
        listed.text, key=jwcrypto_jwk.JWK(**published_jwk(domain, list_header["kid"])), alg="ES256"
    )
    status_list = json.loads(checked.payload.decode("utf-8"))
    assert status_list["id"] == status["statusListCredential"]
    assert status_list["credentialSubject"]["statusPurpose"] == status["statusPurpose"]
    value = entry_at(
        status_list["credentialSubject"]["encodedList"], int(status["statusListIndex"])
    )
    assert value == 0b01
    said = {m["status"]: m["message"] for m in status["statusMessage"]}[hex(value)]
    assert said == MESSAGES["0x1"]
    assert header["kid"] == list_header["kid"]  # one credential key signs both


def test_a_licence_without_a_status_entry_exports_only_while_valid(
    domain: Domain, health: int
) -> None:
    """A licence issued before status lists: no credentialStatus, and once it is revoked no
    credential at all (nothing in one could say so)."""
    issued = domain.issue(health)
    with transaction(domain.services.engine) as session:  # as revision 0014 left older rows
        row = session.get(Licence, issued["identifier"])
        assert row is not None
        row.status_index = None
        session.add(row)
    _, credential = parts(exported(domain, issued["identifier"], health))
    assert "credentialStatus" not in credential
    assert not list(schema_validator().iter_errors(credential))
    domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/suspend",
        headers=domain.auth(health),
        json={"reason": "暂停测试 / suspension test"},
    ).raise_for_status()
    uses_before = len(credential_key_uses(domain))
    response = domain.client.get(credential_url(issued["identifier"]), headers=domain.auth(health))
    body = assert_problem(response, 409)
    assert "暂停" in body["detail"] and "suspended" in body["detail"]
    assert len(credential_key_uses(domain)) == uses_before
    chen = holder_client(domain, CHEN, "credential-chen")
    assert chen.get(f"/me/licences/{issued['identifier']}/credential").status_code == 409


def test_validity_is_the_licences_days_in_china() -> None:
    from licences.credential import end_of_day, start_of_day

    day = date(2026, 12, 31)
    assert start_of_day(day) == "2026-12-31T00:00:00+08:00"
    assert end_of_day(day) == "2026-12-31T23:59:59+08:00"
