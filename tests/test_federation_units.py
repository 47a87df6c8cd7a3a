"""Recognising another domain without servers: two demo domains in process, the other domain's
trust list served through a transport the test controls. Refresh ordering and every refusal
(forged, re-signed by another key, older, equal-but-different, stale), the store left as it
was after each refusal, the status answer's and the OCSP answer's checks, and migrations 0009 and 0013."""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509 import ocsp as x509_ocsp
from cryptography.x509.oid import NameOID
from sqlalchemy import create_engine
from sqlmodel import SQLModel, select

import trust.federation_store  # noqa: F401  (the tables compared below)
from core.audit import AuditEntry
from core.clock import FixedClock
from core.db import reading, transaction
from core.errors import Conflict, InvalidInput, NotFound, Unavailable
from migrations.runner import alembic_config
from seals.models import SealType
from tests.conftest import fresh_schema, make_settings
from tests.domain import Domain, build_domain
from tests.repo_domains import BACKENDS
from trust.federation_jws import sign_document
from trust.federation_list import parse
from trust.federation_ocsp import OcspRefused, build_request, check_response
from trust.federation_status import StatusRefused, check_answer
from trust.federation_store import RecognisedDomain, TypeMapping
from trust.profiles import TRUST_LIST_SIGNING
from trust.trustlist import MEDIA_TYPE, b64url, canonical, fingerprint, signing_input

URL = "https://licence.example.gov.cn/pki/trust-list"  # A's public origin (make_settings)
START = datetime.now(UTC).replace(microsecond=0)


class Feed:
    """What the other domain's URL answers: a document, raw bytes, or a network failure."""

    def __init__(self) -> None:
        self.body: bytes | None = None
        self.fail = False
        self.calls = 0

    def serve(self, document: dict[str, Any]) -> None:
        self.body, self.fail = json.dumps(document, ensure_ascii=False).encode(), False

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.fail or self.body is None:
            raise httpx.ConnectError("unreachable", request=request)
        return httpx.Response(200, content=self.body, headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def clocks() -> tuple[FixedClock, FixedClock]:
    return FixedClock(START), FixedClock(START)


@pytest.fixture(scope="module")
def a(tmp_path_factory: pytest.TempPathFactory, clocks: tuple[FixedClock, FixedClock]) -> Domain:
    settings = make_settings(
        tmp_path_factory.mktemp("fed-a") / "data",
        domain_name="甲省电子证照信任域",
        domain_organisation="甲省政务服务数据管理局",
        verify_isolation=False,
    )
    return build_domain(settings, clock=clocks[0])


@pytest.fixture(scope="module")
def b(tmp_path_factory: pytest.TempPathFactory, clocks: tuple[FixedClock, FixedClock]) -> Domain:
    settings = make_settings(
        tmp_path_factory.mktemp("fed-b") / "data",
        domain_name="乙省电子证照信任域",
        domain_organisation="乙省政务服务数据管理局",
        verify_isolation=False,
        federation_allow_private_addresses=True,  # its peer is only a name in a mock transport
    )
    return build_domain(settings, clock=clocks[1])


@pytest.fixture
def feed(b: Domain) -> Iterator[Feed]:
    feed = Feed()
    b.services.federation.transport = httpx.MockTransport(feed.handler)
    yield feed
    b.services.federation.transport = None


def trust_list(domain: Domain) -> dict[str, Any]:
    response = domain.client.get("/pki/trust-list")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def stored(domain: Domain, name: str) -> RecognisedDomain | None:
    with reading(domain.services.engine) as session:
        return session.get(RecognisedDomain, name)


def audit_outcomes(domain: Domain, action: str) -> list[str]:
    with reading(domain.services.engine) as session:
        rows = session.exec(select(AuditEntry).where(AuditEntry.action == action)).all()
        return [row.outcome for row in rows]


def next_sequence(a: Domain, clocks: tuple[FixedClock, FixedClock]) -> dict[str, Any]:
    """A's next list: within 12 h of next_update a new one is issued."""
    clocks[0].advance(timedelta(hours=13))
    clocks[1].advance(timedelta(hours=13))
    return trust_list(a)


def resign(document: dict[str, Any], key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> dict[str, Any]:
    """The list re-signed by someone else's key, as an attacker holding a certificate would."""
    from cryptography.hazmat.primitives import serialization

    body = {k: v for k, v in document.items() if k != "signature"}
    body["signer"] = {
        "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "sha256": fingerprint(cert),
    }
    header = {"alg": "ES256", "kid": fingerprint(cert), "typ": MEDIA_TYPE}
    protected = b64url(canonical(header))
    r, s = utils.decode_dss_signature(key.sign(signing_input(body, protected), ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return {**body, "signature": {"protected": protected, "signature": b64url(raw)}}


def attacker() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "冒充者 / impostor")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START - timedelta(days=1))
        .not_valid_after(START + timedelta(days=365))
        .add_extension(x509.ExtendedKeyUsage([TRUST_LIST_SIGNING]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


# -- recognising and refreshing ---------------------------------------------------------------


def test_add_refuses_a_wrong_pin_a_forgery_and_another_signer(a: Domain, b: Domain, feed: Feed) -> None:
    federation = b.services.federation
    # the operator's setting reaches the federation (and private addresses are refused by default)
    assert federation.allow_private_addresses is True and a.services.federation.allow_private_addresses is False
    document = trust_list(a)
    pinned = document["signer"]["sha256"]
    feed.serve(document)
    with pytest.raises(InvalidInput, match="fingerprint"):
        federation.add(URL, "0" * 64, actor="test")
    altered = copy.deepcopy(document)
    altered["seals"][0]["status"] = "valid" if altered["seals"][0]["status"] != "valid" else "revoked"
    feed.serve(altered)
    with pytest.raises(InvalidInput, match="signature does not verify"):
        federation.add(URL, pinned, actor="test")
    key, cert = attacker()
    feed.serve(resign(document, key, cert))
    with pytest.raises(InvalidInput, match="fingerprint"):
        federation.add(URL, pinned, actor="test")
    # pinning the impostor's own certificate does not help: it is not issued by a listed CA
    with pytest.raises(InvalidInput, match="not issued by a CA of the list"):
        federation.add(URL, fingerprint(cert), actor="test")
    assert stored(b, document["domain"]["name"]) is None
    assert audit_outcomes(b, "federation.add").count("refused") == 4


def test_own_list_and_unreachable_peer_are_refused(b: Domain, feed: Feed) -> None:
    own = trust_list(b)
    feed.serve(own)
    with pytest.raises(InvalidInput, match="own trust list"):
        b.services.federation.add(URL, own["signer"]["sha256"], actor="test")
    feed.fail = True
    with pytest.raises(Unavailable, match="cannot fetch the trust list"):
        b.services.federation.add(URL, own["signer"]["sha256"], actor="test")


def test_refresh_takes_newer_lists_and_refuses_replays(
    a: Domain, b: Domain, feed: Feed, clocks: tuple[FixedClock, FixedClock]
) -> None:
    federation = b.services.federation
    first = trust_list(a)
    name, pinned = first["domain"]["name"], first["signer"]["sha256"]
    feed.serve(first)
    assert federation.add(URL, pinned, actor="test").result == "added"
    assert [o.result for o in federation.refresh(name, actor="test")] == ["unchanged"]

    second = next_sequence(a, clocks)
    assert second["sequence"] == first["sequence"] + 1
    feed.serve(second)
    (outcome,) = federation.refresh(name, actor="test")
    assert (outcome.result, outcome.sequence) == ("refreshed", second["sequence"])
    kept = stored(b, name)
    assert kept is not None and kept.sequence == second["sequence"]

    # an older list, replayed by refresh or by add, is refused and nothing changes
    feed.serve(first)
    with pytest.raises(Conflict, match="older than the stored"):
        federation.refresh(name, actor="test")
    with pytest.raises(Conflict, match="older than the stored"):
        federation.add(URL, pinned, actor="test")
    # the same sequence with other content (a second list signed under one number) is refused
    key_domain = a.services
    with transaction(key_domain.engine) as session:
        body = {k: v for k, v in second.items() if k != "signature"}
        body["next_update"] = first["next_update"]
        twin = sign_document(
            key_domain.trust, session, body, typ=MEDIA_TYPE, purpose="test", listener=None
        )
    feed.serve(twin)
    with pytest.raises(Conflict, match="equals the stored one but the content differs"):
        federation.refresh(name, actor="test")
    after = stored(b, name)
    assert after is not None
    assert (after.sequence, after.document, after.fetched_at) == (
        kept.sequence,
        kept.document,
        kept.fetched_at,
    )
    assert audit_outcomes(b, "federation.refresh").count("refused") == 2
    # refreshing every domain reports a refusal without raising
    outcomes = federation.refresh(actor="test")
    assert [o.result for o in outcomes] == ["refused"]


def test_a_stale_list_is_refused_and_an_unrefreshable_one_marked_stale(
    a: Domain, b: Domain, feed: Feed, clocks: tuple[FixedClock, FixedClock]
) -> None:
    federation = b.services.federation
    current = trust_list(a)
    name = current["domain"]["name"]
    feed.serve(current)
    federation.refresh(name, actor="test")
    before = stored(b, name)
    assert before is not None
    clocks[1].advance(timedelta(hours=30))  # B's clock only: A's list is past its next_update
    try:
        with pytest.raises(InvalidInput, match=r"next_update .* has passed"):
            federation.refresh(name, actor="test")
        feed.fail = True
        calls = feed.calls
        (seen,) = federation.recognised()
        assert seen.stale and seen.refresh_error is not None
        assert feed.calls == calls + 1
        federation.recognised()  # the failed refresh is not retried at once
        assert feed.calls == calls + 1
    finally:
        clocks[1].advance(timedelta(hours=-30))
        federation._attempted.clear()
    after = stored(b, name)
    assert after is not None and after.document == before.document


def test_recognised_refreshes_only_lists_older_than_the_interval(
    a: Domain, b: Domain, feed: Feed, clocks: tuple[FixedClock, FixedClock]
) -> None:
    federation = b.services.federation
    feed.serve(trust_list(a))
    federation.refresh(actor="test")
    calls = feed.calls
    (seen,) = federation.recognised()
    assert feed.calls == calls and not seen.stale
    clocks[1].advance(federation.refresh_interval)
    (seen,) = federation.recognised()
    assert feed.calls == calls + 1 and seen.refresh_error is None
    assert seen.trust_list.name == "甲省电子证照信任域"


def test_mappings_need_a_local_type_and_go_with_the_domain(a: Domain, b: Domain, feed: Feed) -> None:
    federation = b.services.federation
    document = trust_list(a)
    name = document["domain"]["name"]
    foreign = a.department(0)["sample_request"]["licence_type"]
    local = b.department(0)["sample_request"]["licence_type"]
    with pytest.raises(NotFound, match="catalogue"):
        federation.map(name, foreign, "1135010000360001XN999", actor="test")
    with pytest.raises(InvalidInput):
        federation.map(name, "not-a-type", local, actor="test")
    with pytest.raises(NotFound):
        federation.map("无此信任域", foreign, local, actor="test")
    federation.map(name, foreign, local, actor="test")
    (view,) = federation.describe(name)
    assert view["mappings"] == [{"foreign_type": foreign, "local_type": local}]
    with reading(b.services.engine) as session:
        assert federation.local_type(session, name, foreign) == (local, "食品经营许可证")
    assert audit_outcomes(b, "federation.map") == ["ok"]
    # removing the domain removes its mappings in the same transaction
    federation.remove(name, actor="test")
    with reading(b.services.engine) as session:
        assert session.exec(select(TypeMapping)).all() == []
    assert stored(b, name) is None
    assert audit_outcomes(b, "federation.remove") == ["ok"]
    feed.serve(document)
    federation.add(URL, document["signer"]["sha256"], actor="test")


# -- status answers and OCSP ------------------------------------------------------------------


def status_answer(a: Domain, key: str, nonce: str) -> dict[str, Any]:
    response = a.client.get(f"/pki/licence-status/{key}", params={"nonce": nonce})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()  # type: ignore[no-any-return]


def test_status_answer_is_checked_against_the_pinned_signer(a: Domain) -> None:
    listed = parse(trust_list(a))
    issued = a.issue(0)
    nonce = secrets.token_hex(8)
    now = a.services.clock.now()
    answer = status_answer(a, issued["sha256"], nonce)
    checked = check_answer(answer, listed, issued["sha256"], nonce, now)
    assert checked.found and checked.licence is not None
    assert checked.licence["identifier"] == issued["identifier"]
    assert checked.licence["status"] == "valid"
    by_id = check_answer(status_answer(a, issued["identifier"], nonce), listed, issued["identifier"], nonce, now)
    assert by_id.licence is not None and by_id.licence["sha256"] == issued["sha256"]
    with pytest.raises(StatusRefused, match="not to this question"):
        check_answer(answer, listed, issued["sha256"], "other", now)
    tampered = copy.deepcopy(answer)
    tampered["licence"]["status"] = "revoked"
    with pytest.raises(StatusRefused, match="not signed"):
        check_answer(tampered, listed, issued["sha256"], nonce, now)
    with pytest.raises(StatusRefused, match="produced just now"):
        check_answer(answer, listed, issued["sha256"], nonce, now + timedelta(hours=1))
    # a trust list is not a status answer, though the same key signed both
    with pytest.raises(StatusRefused):
        check_answer(trust_list(a), listed, issued["sha256"], nonce, now)
    unknown = status_answer(a, "0" * 64, nonce)
    assert check_answer(unknown, listed, "0" * 64, nonce, now).found is False
    bad = a.client.get("/pki/licence-status/not-an-identifier")
    assert bad.status_code == 422


def test_ocsp_answers_are_checked(a: Domain) -> None:
    listed = parse(trust_list(a))
    seal = listed.seals[0]
    issuer = listed.issuer_of(seal.certificate)
    assert issuer is not None
    nonce = secrets.token_bytes(16)
    services = a.services
    with transaction(services.engine) as session:
        der = services.trust_services.ocsp.respond(session, build_request(seal.certificate, issuer.certificate, nonce))
    now = services.clock.now()
    answer = check_response(der, seal.certificate, issuer.certificate, nonce, now)
    assert answer.status == "good"
    with pytest.raises(OcspRefused, match="nonce"):
        check_response(der, seal.certificate, issuer.certificate, b"x" * 16, now)
    with pytest.raises(OcspRefused, match="another certificate"):
        check_response(der, listed.seals[1].certificate, issuer.certificate, nonce, now)
    with pytest.raises(OcspRefused, match="not current"):
        check_response(der, seal.certificate, issuer.certificate, nonce, now + timedelta(hours=2))
    signature = x509_ocsp.load_der_ocsp_response(der).signature
    broken = bytearray(der)
    broken[der.index(signature) + 12] ^= 0x01  # inside r: still DER, no longer a signature
    with pytest.raises(OcspRefused, match="signature does not verify"):
        check_response(bytes(broken), seal.certificate, issuer.certificate, nonce, now)


def test_a_new_seal_makes_a_new_list_with_it(a: Domain, b: Domain, feed: Feed) -> None:
    services = a.services
    before = trust_list(a)
    with transaction(services.engine) as session:
        services.seals.create_seal(
            session, actor="test", department_code=a.department(1)["code"], seal_type=SealType.BUSINESS
        )
    after = trust_list(a)
    assert after["sequence"] == before["sequence"] + 1
    assert len(after["seals"]) == len(before["seals"]) + 1


# -- migration 0009 ---------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def migration_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    base: str = request.getfixturevalue("postgres_url")
    return fresh_schema(base, "t_federation")


def test_0009_and_0013_create_tables_matching_the_models(migration_url: str) -> None:
    url = migration_url
    command.upgrade(alembic_config(url), "heads")
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    mine = {"federation_domain", "federation_type_map"}
    ours = [d for d in _flatten(diff) if _table(d) in mine]
    assert ours == []
    with engine.connect() as conn:
        names = set(engine.dialect.get_table_names(conn))
        columns = {c["name"] for c in engine.dialect.get_columns(conn, "federation_domain")}
    assert mine <= names
    assert "root_sha256" in columns  # 0013
    engine.dispose()


def _flatten(diff: list[Any]) -> Iterator[Any]:
    for item in diff:
        if isinstance(item, list):
            yield from item
        else:
            yield item


def _table(item: tuple[Any, ...]) -> str | None:
    for part in item[1:]:
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        name = getattr(part, "name", None)
        if isinstance(name, str):
            return name
        if isinstance(part, str):
            return part
    return None


# -- foreign verification in process ----------------------------------------------------------


class Unreachable(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("unreachable", request=request)


def test_a_foreign_licence_passes_and_fails_as_its_domain_says(a: Domain, b: Domain) -> None:
    federation = b.services.federation
    federation.transport = a.client._transport  # A's app answers every request to A
    try:
        federation.refresh(actor="test")
        issued = a.issue(0)
        pdf = a.pdf(issued)
        report = b.verify_pdf(pdf)
        assert report["indication"] == "PASSED", report
        assert report["domain"]["name"] == "甲省电子证照信任域"
        assert report["licence"]["identifier"] == issued["identifier"]
        assert report["seal"]["certificate_serial"] and report["seal"]["timestamp"]
        scanned = b.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]}).json()
        assert scanned["indication"] == "PASSED" and scanned["domain"]["name"] == "甲省电子证照信任域"
        # a PDF changed after sealing fails on its own bytes, before anyone is asked
        tampered = pdf.replace(b"/Producer", b"/Producex", 1)
        assert b.verify_pdf(tampered)["indication"] == "FAILED"
        # suspended at A: B sees it at the next verification
        response = a.client.post(
            f"/api/v1/licences/{issued['identifier']}/suspend", json={"reason": "核查 / inspection"}, headers=a.auth(0)
        )
        assert response.status_code == 200, response.text
        report = b.verify_pdf(pdf)
        assert (report["indication"], report["sub_indication"]) == ("FAILED", "SUSPENDED")
        # the issuing domain cannot be reached: nothing is confirmed
        federation.transport = Unreachable()
        report = b.verify_pdf(pdf)
        assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "TRY_LATER")
    finally:
        federation.transport = None


def test_a_domain_whose_list_cannot_be_refreshed_is_indeterminate(
    a: Domain, b: Domain, clocks: tuple[FixedClock, FixedClock]
) -> None:
    federation = b.services.federation
    issued = a.issue(0)
    pdf = a.pdf(issued)
    federation.transport = Unreachable()
    clocks[1].advance(timedelta(hours=30))
    try:
        report = b.verify_pdf(pdf)
        assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "TRY_LATER")
        assert "could not be refreshed" in report["message"]
        assert report["domain"]["name"] == "甲省电子证照信任域"
        scanned = b.client.post("/api/v1/verify", json={"qr": issued["links"]["verify"]}).json()
        assert (scanned["indication"], scanned["sub_indication"]) == ("INDETERMINATE", "TRY_LATER")
    finally:
        clocks[1].advance(timedelta(hours=-30))
        federation.transport = None
        federation._attempted.clear()


def test_admin_routes_recognise_refresh_map_and_remove(a: Domain, b: Domain, feed: Feed) -> None:
    from seals.clients import create_client

    services = b.services
    with transaction(services.engine) as session:
        _, key = create_client(
            session, services.audit, services.clock, department_code=b.department(0)["code"],
            name="operator", actor="test", scopes=("admin",),
        )
    admin = {"Authorization": f"Bearer {key}"}
    document = trust_list(a)
    name = document["domain"]["name"]
    services.federation.remove(name, actor="test")
    feed.serve(document)
    assert b.client.post("/api/v1/federation/domains", json={"url": URL, "fingerprint": document["signer"]["sha256"]},
                         headers=b.auth(0)).status_code == 403
    added = b.client.post("/api/v1/federation/domains", json={"url": URL, "fingerprint": document["signer"]["sha256"]},
                          headers=admin)
    assert added.status_code == 201, added.text
    assert (added.json()["result"], added.json()["name"]) == ("added", name)
    forged = copy.deepcopy(document)
    forged["sequence"] += 1
    feed.serve(forged)
    refused = b.client.post(f"/api/v1/federation/domains/{name}/refresh", headers=admin)
    assert refused.status_code == 422 and "signature" in refused.json()["detail"]
    foreign = a.department(0)["sample_request"]["licence_type"]
    local = b.department(0)["sample_request"]["licence_type"]
    mapped = b.client.put(f"/api/v1/federation/domains/{name}/mappings/{foreign}", json={"local_type": local}, headers=admin)
    assert mapped.status_code == 200, mapped.text
    (listed,) = b.client.get("/api/v1/federation/domains", headers=admin).json()
    assert listed["mappings"] == [{"foreign_type": foreign, "local_type": local}]
    assert b.client.delete(f"/api/v1/federation/domains/{name}/mappings/{foreign}", headers=admin).status_code == 204
    assert b.client.delete(f"/api/v1/federation/domains/{name}", headers=admin).status_code == 204
    assert b.client.get("/api/v1/federation/domains", headers=admin).json() == []
