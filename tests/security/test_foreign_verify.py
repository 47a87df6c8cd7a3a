"""A licence of another, recognised domain (``verify/foreign.py``), decided over synthesised
examination facts and a fake network: attributed by its chain to exactly one domain, which alone
is asked (OCSP and signed status); a QR code whose record digest differs from the issuing
domain's record fails; a peer that cannot be asked is only the neutral detail in the report."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from sqlmodel import Session

from core.clock import FixedClock
from core.errors import Unavailable
from licences.identifiers import LicenceIdentifier
from licences.payload import Claims, PayloadType, sign
from tests.security.federation_support import (
    Network,
    Pki,
    der,
    domain,
    licence_member,
    ocsp_response,
    status_body,
)
from tests.security.support import NOW, memory_engine
from trust.federation import AUTO, Recognised
from trust.federation_http import Peers
from trust.federation_jws import STATUS_TYPE
from trust.trustlist import fingerprint
from verify import foreign
from verify.foreign import NEUTRAL, ForeignVerifier, applies, owners
from verify.report import Check, CheckResult, Indication, Report, SubIndication
from verify.signature import SignatureFacts, TimestampFacts, TrustAnchors
from verify.structure import Inspection

DATA = b"%PDF-1.7 foreign licence"
DIGEST = hashlib.sha256(DATA).hexdigest()
SEALED = NOW - timedelta(days=30)
TRY_LATER = "暂时无法向签发信任域确认，请稍后再试 / the issuing domain cannot be asked just now; " \
    "try later"
GENUINE_B = "证照真实有效，由互认信任域 b 签发 / the licence is genuine and valid, issued in the " \
    "recognised domain b"
NO_CHAIN = "印章证书不属于本信任域 / the seal is not from a recognised trust domain"
NOT_STORED = "证照库中没有这份文件 / this file is not in the licence repository"
REVOKED = "证照已被吊销或注销 / the licence has been revoked"
QR_DIFFERS = "二维码内容与证照库记录不一致 / the QR content does not match the repository's record"
ISSUER = "1135010000360001XN"


def public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


def recognised(pki: Pki, name: str | None = None, **changes: Any) -> Recognised:
    good = Recognised(name=name or pki.name, url=pki.url, fingerprint=pki.pin,
                      root_sha256=fingerprint(pki.root), trust_list=pki.parsed(),
                      fetched_at=NOW, stale=False)
    return replace(good, **changes)


@dataclass
class FakeFederation:
    domains: list[Recognised]
    network: Network
    after_refresh: list[Recognised] | None = None
    refreshed: list[tuple[str, str]] = field(default_factory=list)
    mapping: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def recognised(self) -> list[Recognised]:
        return self.domains

    @property
    def peers(self) -> Peers:
        return Peers(resolve=public, transport=self.network.transport())

    def refresh(self, name: str, *, actor: str) -> list[Any]:
        self.refreshed.append((name, actor))
        if self.after_refresh is None:
            raise Unavailable("cannot fetch")
        self.domains = self.after_refresh
        return []

    def local_type(self, session: Any, name: str, foreign_type: str) -> tuple[str, str] | None:
        assert isinstance(session, Session) and session.bind is not None
        return self.mapping.get((name, foreign_type))


@dataclass
class FakeInspector:
    facts: SignatureFacts | Inspection
    seen: list[tuple[TrustAnchors, Any]] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)

    def examine(self, data: bytes, anchors: TrustAnchors, moment: Any = None) -> Any:
        self.seen.append((anchors, moment))
        self.data.append(data)
        return self.facts


def facts(pki: Pki | None = None, **changes: Any) -> SignatureFacts:
    b = pki or domain("b")
    good = SignatureFacts(
        moment=NOW, signatures=1, docmdp=1, intact=True, valid=True, trusted=True,
        signer_der=der(b.seal), signer_serial=b.seal.serial_number, signer_subject="CN=b Seal",
        chain=(der(b.seal), der(b.ca), der(b.root)), coverage="ENTIRE_FILE",
        modification="NONE", docmdp_ok=True, signing_time=SEALED - timedelta(minutes=1),
        claimed_time=SEALED,
        timestamp=TimestampFacts(intact=True, valid=True, trusted=True, time=SEALED,
                                 signer_serial=b.tsa.serial_number, signer_subject="CN=b TSA",
                                 signer_der=der(b.tsa)),
    )
    return replace(good, **changes)


def local(sub: SubIndication = SubIndication.NO_CHAIN_FOUND,
          indication: Indication = Indication.INDETERMINATE) -> Report:
    return Report(indication=indication, sub_indication=sub, message="local", checks=(),
                  validated_at=NOW, channel="upload")


OWN = domain("z")  # this domain


def own_anchors(session: Any) -> TrustAnchors:
    assert isinstance(session, Session) and session.bind is not None
    return TrustAnchors((der(OWN.root),), (der(OWN.ca),))


@dataclass
class World:
    network: Network
    federation: FakeFederation
    inspector: FakeInspector
    verifier: ForeignVerifier

    def pdf(self, report: Report | None = None) -> Report | None:
        return self.verifier.verify_pdf(DATA, report or local(), "upload")

    def hosts(self) -> set[str]:
        return {request.url.host for request in self.network.requests}


def world(found: SignatureFacts | Inspection | None = None, domains: list[Recognised] | None = None,
          inspector: bool = True) -> World:
    network = Network().add(domain("b")).add(domain("a"))
    federation = FakeFederation(
        domains if domains is not None else [recognised(domain("a")), recognised(domain("b"))],
        network,
    )
    examiner = FakeInspector(found or facts())
    verifier = ForeignVerifier(
        engine=memory_engine(), clock=FixedClock(NOW), federation=federation,  # type: ignore[arg-type]
        local_anchors=own_anchors,
        inspector=examiner if inspector else None,  # type: ignore[arg-type]
    )
    return World(network, federation, examiner, verifier)


def rows(report: Report) -> list[tuple[str, str, str]]:
    return [(c.name, c.result.value, c.detail) for c in report.checks]


def summary(report: Report | None) -> tuple[Indication, SubIndication | None, str]:
    assert report is not None
    return report.indication, report.sub_indication, report.message


# -- PDF ---------------------------------------------------------------------------------------


def test_a_genuine_foreign_licence_passes_with_its_domains_signed_details() -> None:
    w = world()
    w.federation.mapping[("b", "T" * 21)] = ("L" * 21, "本地许可证")
    report = w.pdf()
    assert summary(report) == (Indication.PASSED, None, GENUINE_B)
    assert report is not None
    b = domain("b")
    assert rows(report) == [
        ("format", "passed", "PDF parsed"),
        ("seal_count", "passed", "exactly one seal"),
        ("certification", "passed", "certification seal, DocMDP P=1 (no changes allowed)"),
        ("domain", "passed", f"b, trust list 1, signer {b.pin[:16]}…"),
        ("integrity", "passed", "seal signature intact and valid"),
        ("modifications", "passed", "the seal covers the whole file"),
        ("timestamp", "passed", f"sealed at {SEALED.isoformat()} (RFC 3161, CN=b TSA)"),
        ("chain", "passed", f"chains to the root of b, sealed at {SEALED.isoformat()}"),
        ("seal_listed", "passed", "seal S1 of 测试局 (valid in the list)"),
        ("ocsp", "passed", "2 certificate(s) good at b's OCSP responder"),
        ("status", "passed", f"有效 / valid (signed answer of {NOW.isoformat()})"),
    ]
    assert report.domain is not None
    assert (report.domain.name, report.domain.organisation, report.domain.fingerprint,
            report.domain.sequence) == ("b", "b 数据局", b.pin, 1)
    assert report.recognised_as is not None
    assert (report.recognised_as.type_code, report.recognised_as.type_name) == (
        "L" * 21, "本地许可证")
    assert report.licence is not None and report.licence.holder_name == "张*"
    assert report.seal is not None
    assert (report.seal.signing_time, report.seal.timestamp) == (
        (SEALED - timedelta(minutes=1)).isoformat(), SEALED.isoformat())
    assert report.seal.certificate_serial == format(b.seal.serial_number, "x")
    assert (report.validated_at, report.channel, report.extra) == (NOW, "upload", {})
    # b alone was asked: its OCSP responder twice (seal, CA) and its status service by digest
    assert w.hosts() == {"b.example"}
    paths = [r.url.path for r in w.network.requests]
    # each certificate is asked of the responder its issuing CA names in the list
    assert paths == ["/pki/ocsp/issuing", "/pki/ocsp/root", f"/pki/licence-status/{DIGEST}"]
    assert w.federation.refreshed == []  # the seal is in the list: nothing fetched again
    assert w.inspector.data == [DATA]
    anchors, moment = w.inspector.seen[0]
    a = domain("a")
    assert anchors == TrustAnchors((der(OWN.root), der(a.root), der(b.root)),
                                   (der(OWN.ca), der(a.ca), der(b.ca)))
    assert moment == NOW


def test_an_unmapped_type_is_not_recognised_as_a_local_one() -> None:
    report = world().pdf()
    assert report is not None and report.recognised_as is None and report.domain is not None


@pytest.mark.parametrize(
    ("indication", "sub"),
    [
        (Indication.PASSED, None),
        (Indication.FAILED, SubIndication.NO_CHAIN_FOUND),
        (Indication.INDETERMINATE, SubIndication.TRY_LATER),
        (Indication.INDETERMINATE, SubIndication.NO_SIGNING_CERTIFICATE_FOUND),
    ],
)
def test_only_a_local_no_chain_or_no_poe_is_handed_over(
    indication: Indication, sub: SubIndication
) -> None:
    w = world()
    assert w.pdf(local(sub, indication)) is None
    assert w.inspector.seen == []
    assert summary(w.pdf(local(SubIndication.NO_POE)))[0] is Indication.PASSED


def test_applies_names_the_handed_over_answers() -> None:
    for sub in (SubIndication.NO_CHAIN_FOUND, SubIndication.NO_POE,
                SubIndication.NO_SIGNING_CERTIFICATE_FOUND):
        assert applies(local(sub)) is True
        assert applies(local(sub, Indication.FAILED)) is False
    assert applies(local(SubIndication.TRY_LATER)) is False


@pytest.mark.parametrize(
    "change",
    [{"signer_der": None}, {"error": "ValueError"}, {"signatures": 2}, {"signatures": 0},
     {"docmdp": 2}, {"docmdp": None}],
)
def test_what_the_local_verifier_already_judged_keeps_its_answer(change: dict[str, Any]) -> None:
    w = world(facts(**change))
    assert w.pdf() is None
    assert w.network.requests == []


def test_our_own_seal_keeps_the_local_answer() -> None:
    w = world(facts(OWN))
    assert w.pdf(local(SubIndication.NO_POE)) is None
    root_issued = facts(OWN, signer_der=der(OWN.ca))
    assert world(root_issued).pdf() is None


def test_a_refused_inspection_is_reported_as_it_found() -> None:
    refused = Inspection(False, "structure", "too many objects", Indication.FAILED,
                         SubIndication.LIMIT_EXCEEDED)
    report = world(refused).pdf()
    assert summary(report) == (Indication.FAILED, SubIndication.LIMIT_EXCEEDED, "too many objects")
    assert report is not None and rows(report) == [("structure", "failed", "too many objects")]
    assert (report.validated_at, report.channel, report.domain) == (NOW, "upload", None)
    plain = Inspection(False, "format", "not a PDF", Indication.FAILED, None)
    assert summary(world(plain).pdf()) == (Indication.FAILED, SubIndication.MALFORMED, "not a PDF")


def test_without_an_inspector_limits_are_a_limit_exceeded(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(foreign, "examine", explode)
    report = world(inspector=False).pdf()
    assert summary(report) == (Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED,
                               "资源超限 / limit exceeded")
    assert report is not None and rows(report) == [("limits", "failed", "资源超限 / limit exceeded")]
    def examined(data: bytes, anchors: TrustAnchors, moment: Any) -> SignatureFacts:
        assert (data, moment) == (DATA, NOW)
        assert anchors.roots[0] == der(OWN.root)
        return facts()

    monkeypatch.setattr(foreign, "examine", examined)
    assert summary(world(inspector=False).pdf())[0] is Indication.PASSED


def test_a_seal_of_no_recognised_domain_or_of_two_is_no_chain() -> None:
    c = domain("c")
    report = world(facts(c)).pdf()
    assert summary(report) == (Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND, NO_CHAIN)
    assert report is not None and report.domain is None
    assert rows(report)[-1] == (
        "domain", "failed", "the seal certificate chains to the own root of 0 of the 2 "
        "recognised domain(s), not of exactly one")
    b = domain("b")
    twice = world(domains=[recognised(b), recognised(b, "b2")])
    report = twice.pdf()
    assert summary(report)[1] is SubIndication.NO_CHAIN_FOUND
    assert report is not None and rows(report)[-1][2].startswith(
        "the seal certificate chains to the own root of 2 of the 2 recognised")
    assert twice.network.requests == []


def test_owners_compare_the_recorded_root() -> None:
    a, b = domain("a"), domain("b")
    good = recognised(b)
    moved = recognised(b, "b2", root_sha256=fingerprint(a.root))
    assert owners([good, moved, recognised(a)], b.seal) == [good]
    assert owners([good], domain("c").seal) == []


def test_a_stale_domain_is_try_later_without_asking_it(caplog: pytest.LogCaptureFixture) -> None:
    b = domain("b")
    w = world(domains=[recognised(b, stale=True, refresh_error="x")])
    with caplog.at_level(logging.WARNING, logger="verify.foreign"):
        report = w.pdf()
    assert [r.getMessage() for r in caplog.records] == ["trust list of b is stale: x"]
    assert summary(report) == (
        Indication.INDETERMINATE, SubIndication.TRY_LATER,
        "信任域 b 的信任列表已过期且无法更新 / the trust list of b is past its next_update and "
        "could not be refreshed; try later")
    assert report is not None and rows(report)[-1] == (
        "domain", "failed",
        f"b: list 1 past {(NOW + timedelta(days=7)).isoformat()}, and no newer list could be "
        "fetched")
    assert w.network.requests == []


@pytest.mark.parametrize(
    "change",
    [{"trusted": False, "trust_problem": "NO_CERTIFICATE_CHAIN_FOUND"}, {"chain": ()},
     {"chain": (der(domain("b").seal), der(domain("b").ca), der(domain("a").root))}],
)
def test_a_path_not_ending_at_the_domains_root_is_no_chain(change: dict[str, Any]) -> None:
    report = world(facts(**change)).pdf()
    assert summary(report) == (Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND, NO_CHAIN)
    problem = change.get("trust_problem")
    assert report is not None and rows(report)[-1] == (
        "chain", "failed", f"no valid path to a root of b ({problem})")


def test_chain_detail_without_a_timestamp() -> None:
    report = world(facts(timestamp=None)).pdf()
    assert report is not None
    assert ("chain", "passed", "chains to the root of b") in rows(report)
    assert report.seal is not None and report.seal.timestamp is None
    no_time = world(facts(signing_time=None)).pdf()
    assert no_time is not None and no_time.seal is not None and no_time.seal.signing_time is None


def test_a_seal_missing_from_the_list_is_looked_for_once_more() -> None:
    b = domain("b")
    unlisted = recognised(b, trust_list=b.parsed(seals=[]))
    w = world(domains=[unlisted])
    report = w.pdf()
    assert summary(report) == (Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND, NO_CHAIN)
    assert report is not None and rows(report)[-1] == (
        "seal_listed", "failed", f"serial {format(b.seal.serial_number, 'x')} is not a seal of "
        "b's list")
    assert w.federation.refreshed == [("b", AUTO)]
    assert w.network.requests == []
    w = world(domains=[unlisted])
    w.federation.after_refresh = [recognised(domain("a")), recognised(b)]
    assert summary(w.pdf())[0] is Indication.PASSED
    w = world(domains=[unlisted])
    w.federation.after_refresh = [recognised(domain("a"))]  # b gone meanwhile: as it was
    assert summary(w.pdf())[1] is SubIndication.NO_CHAIN_FOUND


def test_a_seal_revoked_before_sealing_is_revoked_by_its_own_domain() -> None:
    w = world()
    w.network.ocsp["b.example"] = lambda p, body: ocsp_response(
        p, body, status="revoked", revoked_at=SEALED - timedelta(days=1))
    report = w.pdf()
    assert summary(report) == (
        Indication.FAILED, SubIndication.REVOKED,
        "印章证书已被签发信任域吊销 / the issuing domain revoked the seal's certificate")
    assert report is not None and report.domain is not None and report.domain.name == "b"
    assert w.hosts() == {"b.example"}


def test_a_revoked_foreign_licence_is_revoked_attributed_to_its_domain_only() -> None:
    w = world()
    w.network.status["b.example"] = lambda p, q, n: p.sign(
        status_body(p, q, n, licence=licence_member(p, status="revoked", status_label="吊销")),
        STATUS_TYPE)
    report = w.pdf()
    assert summary(report) == (Indication.FAILED, SubIndication.REVOKED, REVOKED)
    assert report is not None and rows(report)[-1] == (
        "status", "failed", f"吊销 (signed answer of {NOW.isoformat()})")
    assert report.domain is not None and report.domain.name == "b"
    assert report.licence is not None and report.licence.status == "revoked"
    assert w.hosts() == {"b.example"}


def unavailable_report(w: World, caplog: pytest.LogCaptureFixture) -> Report:
    with caplog.at_level(logging.WARNING, logger="verify.foreign"):
        report = w.pdf()
    assert report is not None
    return report


def test_an_unreachable_responder_gives_only_the_neutral_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = world()
    w.network.ocsp["b.example"] = lambda p, body: b"not ocsp"
    report = unavailable_report(w, caplog)
    assert summary(report) == (Indication.INDETERMINATE, SubIndication.TRY_LATER, TRY_LATER)
    assert rows(report)[-1] == ("ocsp", "failed", NEUTRAL)
    assert NEUTRAL == "对方信任域状态服务不可用 / the peer domain's status service is unavailable"
    assert [r.getMessage() for r in caplog.records] == [
        "ocsp of b: 不是OCSP应答 / not an OCSP response"]
    assert report.recognised_as is None and report.licence is None


def test_an_unreachable_status_service_gives_only_the_neutral_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = world()
    w.network.status["b.example"] = lambda p, q, n: httpx.Response(503, text="db down at 10.0.0.9")
    report = unavailable_report(w, caplog)
    assert summary(report) == (Indication.INDETERMINATE, SubIndication.TRY_LATER, TRY_LATER)
    assert rows(report)[-1] == ("status", "failed", NEUTRAL)
    text = json.dumps(report.to_json(), ensure_ascii=False, default=str)
    assert "b.example" not in text and "10.0.0.9" not in text
    # the peer's HTTP status, as a number of its own (a random hex fingerprint in the report
    # may well contain the digits 503)
    assert re.search(r"\b503\b", text) is None, text
    assert report.licence is None and report.seal is None
    assert "status of b: 无法获取证照状态 / cannot fetch the licence status from https://b.example" \
        in caplog.text


def test_an_answer_not_believed_gives_only_the_neutral_detail() -> None:
    w = world()
    w.network.status["b.example"] = lambda p, q, n: domain("a").sign(status_body(p, q, n),
                                                                      STATUS_TYPE)
    report = w.pdf()
    assert report is not None and rows(report)[-1] == ("status", "failed", NEUTRAL)


def test_bytes_the_domain_does_not_know_are_not_in_its_repository() -> None:
    w = world()
    w.network.status["b.example"] = lambda p, q, n: p.sign(
        status_body(p, q, n, found=False, licence=None, seal=None), STATUS_TYPE)
    report = w.pdf()
    assert summary(report) == (Indication.FAILED, SubIndication.NOT_IN_REPOSITORY, NOT_STORED)
    assert report is not None and rows(report)[-1] == (
        "status", "failed", "b has no licence with these bytes")
    assert report.licence is None


def test_a_licence_recorded_with_another_seal_certificate_fails() -> None:
    w = world()
    w.network.status["b.example"] = lambda p, q, n: p.sign(
        status_body(p, q, n, licence=licence_member(p, seal_certificate_serial="ff")),
        STATUS_TYPE)
    report = w.pdf()
    assert summary(report) == (Indication.FAILED, SubIndication.NOT_IN_REPOSITORY, NOT_STORED)
    assert report is not None and rows(report)[-1] == (
        "status", "failed", "sealed by another certificate than the issuing domain recorded")


# -- QR codes ----------------------------------------------------------------------------------


def identifier() -> str:
    return str(LicenceIdentifier(ISSUER + "001", ISSUER, "A1", "001"))


DIGEST16 = bytes(range(16))


def qr(key: ec.EllipticCurvePrivateKey, kid: bytes, **changes: Any) -> str:
    values: dict[str, Any] = {
        "type": PayloadType.LICENCE, "identifier": identifier(), "record_digest": DIGEST16,
        "valid_until": date(2030, 12, 31), "issued_at": NOW - timedelta(days=1)}
    values.update(changes)
    return sign(Claims(**values), kid,
                lambda digest: key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))))


def qr_status(record_digest: str = DIGEST16.hex(), **licence: Any) -> Any:
    return lambda p, q, n: p.sign(
        status_body(p, q, n, licence=licence_member(p, identifier=q, record_digest=record_digest,
                                                     **licence)), STATUS_TYPE)


def code_world(**status: Any) -> World:
    w = world()
    w.network.status["b.example"] = qr_status(**status)
    return w


UNKNOWN_KEY = local(SubIndication.NO_SIGNING_CERTIFICATE_FOUND)


def scan(w: World, text: str, report: Report = UNKNOWN_KEY) -> Report | None:
    return w.verifier.verify_code(text, report, "api-qr")


def test_a_genuine_foreign_qr_passes_on_its_domains_answer() -> None:
    b = domain("b")
    w = code_world()
    report = scan(w, qr(b.qr_key, b.kid))
    assert summary(report) == (Indication.PASSED, None, GENUINE_B)
    assert report is not None
    assert [(c.name, c.result.value) for c in report.checks] == [
        ("format", "passed"), ("key", "passed"), ("signature", "passed"), ("domain", "passed"),
        ("status", "passed")]
    assert rows(report)[3] == ("domain", "passed", "QR key of b, trust list 1")
    assert [r.url.path for r in w.network.requests] == [
        f"/pki/licence-status/{identifier()}"]
    assert report.domain is not None and report.domain.name == "b"
    assert (report.channel, report.validated_at) == ("api-qr", NOW)
    assert report.extra["identifier"] == identifier()


def test_a_foreign_qr_whose_record_digest_differs_fails() -> None:
    b = domain("b")
    w = code_world(record_digest="ff" * 16)
    report = scan(w, qr(b.qr_key, b.kid))
    assert summary(report) == (Indication.FAILED, SubIndication.HASH_FAILURE, QR_DIFFERS)
    assert report is not None and rows(report)[-1] == (
        "status", "failed", "record digest differs from the issuing domain's record")
    missing = code_world(record_digest=None)  # type: ignore[arg-type]
    assert summary(scan(missing, qr(b.qr_key, b.kid)))[1] is SubIndication.HASH_FAILURE


def test_a_revoked_foreign_qr_licence_is_revoked() -> None:
    b = domain("b")
    w = code_world(status="revoked")
    report = scan(w, qr(b.qr_key, b.kid))
    assert summary(report)[:2] == (Indication.FAILED, SubIndication.REVOKED)
    assert w.hosts() == {"b.example"}


def test_a_qr_forged_under_a_foreign_key_id_fails_its_signature() -> None:
    b = domain("b")
    w = code_world()
    report = scan(w, qr(ec.generate_private_key(ec.SECP256R1()), b.kid))
    assert summary(report)[:2] == (Indication.FAILED, SubIndication.SIG_CRYPTO_FAILURE)
    assert w.network.requests == []


def test_a_foreign_qr_of_a_stale_domain_is_try_later() -> None:
    b = domain("b")
    w = code_world()
    w.federation.domains = [recognised(b, stale=True)]
    report = scan(w, qr(b.qr_key, b.kid))
    assert summary(report) == (
        Indication.INDETERMINATE, SubIndication.TRY_LATER,
        "信任域 b 的信任列表已过期且无法更新 / the trust list of b is past its next_update and "
        "could not be refreshed; try later")
    assert report is not None and rows(report)[-1] == (
        "domain", "failed", "b: trust list past its next_update")
    assert w.network.requests == []


def test_an_unreachable_status_service_for_a_qr_is_neutral() -> None:
    b = domain("b")
    w = world()
    w.network.status["b.example"] = lambda p, q, n: httpx.Response(500)
    report = scan(w, qr(b.qr_key, b.kid))
    assert summary(report) == (Indication.INDETERMINATE, SubIndication.TRY_LATER, TRY_LATER)
    assert report is not None and rows(report)[-1] == ("status", "failed", NEUTRAL)


def test_codes_that_are_not_a_foreign_domains_keep_the_local_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    b = domain("b")
    w = code_world()
    code = qr(b.qr_key, b.kid)
    assert scan(w, code, local(SubIndication.NO_CHAIN_FOUND)) is None
    assert scan(w, code, local(SubIndication.SIG_CRYPTO_FAILURE, Indication.FAILED)) is None
    assert scan(w, "https://x.example/other/" + code) is None  # not a verification URL
    assert scan(w, "ABCD2345") is None  # a legacy random code
    assert scan(w, "A" * 40) is None  # not a payload
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert scan(w, qr(stranger, b"\x01" * 8)) is None
    # a key two stored lists claim is nobody's
    w.federation.domains = [recognised(b), recognised(b, "b2")]
    with caplog.at_level(logging.WARNING, logger="verify.foreign"):
        assert scan(w, code) is None
    assert [r.getMessage() for r in caplog.records] == [
        f"QR key {b.kid.hex()} is listed by ['b', 'b2']"]
    assert w.network.requests == []
    # a verification URL carrying the code is read like the bare code
    assert summary(scan(code_world(), "https://b.example/v/" + code))[0] is Indication.PASSED


def test_only_a_single_domain_claiming_the_key_is_logged_when_none_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = code_world()
    with caplog.at_level(logging.WARNING, logger="verify.foreign"):
        assert scan(w, qr(ec.generate_private_key(ec.SECP256R1()), b"\x02" * 8)) is None
    assert "is listed by" not in caplog.text


def test_report_message_when_a_check_passes_lists_checks_in_order() -> None:
    report = world().pdf()
    assert report is not None
    assert all(isinstance(c, Check) and c.result is CheckResult.PASSED for c in report.checks)


def test_a_seal_revoked_after_the_proven_sealing_time_passes_with_a_note() -> None:
    w = world()
    revoked = SEALED + timedelta(days=1)
    w.network.ocsp["b.example"] = lambda p, body: ocsp_response(
        p, body, status="revoked", revoked_at=revoked)
    report = w.pdf()
    assert summary(report)[0] is Indication.PASSED
    assert report is not None
    detail = dict((c.name, c.detail) for c in report.checks)["ocsp"]
    assert detail.endswith(f"sealed at {SEALED.isoformat()}, before that")


def test_an_expired_foreign_presentation_code_fails() -> None:
    b = domain("b")
    w = code_world()
    presented = NOW - timedelta(minutes=10)
    code = qr(b.qr_key, b.kid, type=PayloadType.PRESENTATION, issued_at=presented,
              expires_at=presented + timedelta(minutes=5), nonce=bytes(8))
    report = scan(w, code)
    assert summary(report)[:2] == (Indication.FAILED, SubIndication.EXPIRED)
    assert w.network.requests == []
