"""Another domain's OCSP answers (``trust/federation_ocsp.py``): believed only when signed by the
issuing CA or a responder it authorised, about exactly the certificate asked, echoing our nonce,
and current; asked of the responder the list names, up the chain short of the root."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.errors import Unavailable
from tests.security.federation_support import Key, Network, certificate, domain, new_key
from tests.security.support import NOW
from trust import federation_ocsp
from trust.federation_http import Peers
from trust.federation_ocsp import (
    MAX_DEPTH,
    MAX_RESPONSE_BYTES,
    SKEW,
    OcspAnswer,
    OcspRefused,
    build_request,
    chain_status,
    check_response,
    query,
)

NONCE = b"n" * 16
NOT_AUTHORISED = "OCSP应答不是该CA或其授权响应者签发 / the OCSP response is not signed by the CA " \
    "or a responder it authorised"


def respond(
    cert: x509.Certificate | None = None,
    issuer: x509.Certificate | None = None,
    key: Key | None = None,
    *,
    responder: x509.Certificate | None = None,
    by_name: bool = False,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    revoked_at: datetime | None = None,
    reason: x509.ReasonFlags | None = None,
    this_update: datetime = NOW,
    next_update: datetime | None = NOW + timedelta(hours=1),
    nonce: bytes | None = NONCE,
    certificates: list[x509.Certificate] | None = None,
) -> bytes:
    b = domain("b")
    cert, issuer, key = cert or b.seal, issuer or b.ca, key or b.ca_key
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert, issuer=issuer, algorithm=hashes.SHA256(), cert_status=status,
        this_update=this_update, next_update=next_update, revocation_time=revoked_at,
        revocation_reason=reason,
    ).responder_id(
        ocsp.OCSPResponderEncoding.NAME if by_name else ocsp.OCSPResponderEncoding.HASH,
        responder or issuer,
    )
    if certificates:
        builder = builder.certificates(certificates)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def check(der: bytes, cert: x509.Certificate | None = None, issuer: x509.Certificate | None = None,
          nonce: bytes | None = NONCE, now: datetime = NOW) -> OcspAnswer:
    b = domain("b")
    return check_response(der, cert or b.seal, issuer or b.ca, nonce, now)


def refused(der: bytes, **kwargs: Any) -> str:
    with pytest.raises(OcspRefused) as caught:
        check(der, **kwargs)
    assert caught.value.field == "ocsp"
    return caught.value.message


def test_the_cas_own_answers() -> None:
    assert check(respond()) == OcspAnswer("good", NOW, NOW + timedelta(hours=1), None, None,
                                          "CN=b CA")
    gone = check(respond(status=ocsp.OCSPCertStatus.REVOKED, revoked_at=NOW - timedelta(days=1),
                         reason=x509.ReasonFlags.key_compromise))
    assert gone == OcspAnswer("revoked", NOW, NOW + timedelta(hours=1), NOW - timedelta(days=1),
                              "keyCompromise", "CN=b CA")
    plain = check(respond(status=ocsp.OCSPCertStatus.REVOKED, revoked_at=NOW))
    assert (plain.status, plain.reason) == ("revoked", None)
    assert check(respond(status=ocsp.OCSPCertStatus.UNKNOWN)).status == "unknown"
    assert check(respond(by_name=True)).responder == "CN=b CA"
    assert check(respond(nonce=None), nonce=None).status == "good"


def test_what_is_not_a_successful_ocsp_response_is_refused() -> None:
    assert refused(b"junk") == "不是OCSP应答 / not an OCSP response"
    failed = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    assert refused(failed.public_bytes(serialization.Encoding.DER)) == (
        "OCSP应答失败 / responder answered TRY_LATER"
    )


def test_an_answer_signed_by_another_key_is_refused() -> None:
    a, b = domain("a"), domain("b")
    # a certificate with the CA's name over another key signs; the CA is named by name
    twin = certificate("b CA", a.ca_key.public_key(), b.root, b.root_key, ca=True)
    assert refused(respond(key=a.ca_key, responder=twin, by_name=True)) == (
        "OCSP应答签名无效 / the OCSP response's signature does not verify"
    )
    # named by its key hash, the twin is not the CA
    assert refused(respond(key=a.ca_key, responder=twin)) == NOT_AUTHORISED


def delegate(issuer: x509.Certificate, issuer_key: Key, *, eku: Any = ExtendedKeyUsageOID.OCSP_SIGNING,
             not_before: datetime = NOW - timedelta(days=1),
             not_after: datetime = NOW + timedelta(days=1)) -> tuple[Key, x509.Certificate]:
    key = new_key()
    return key, certificate("b OCSP", key.public_key(), issuer, issuer_key, eku=eku,
                            not_before=not_before, not_after=not_after)


def test_a_responder_the_ca_authorised_is_believed() -> None:
    b = domain("b")
    key, responder = delegate(b.ca, b.ca_key)
    for by_name in (True, False):
        answer = check(respond(key=key, responder=responder, by_name=by_name,
                               certificates=[responder]))
        assert (answer.status, answer.responder) == ("good", "CN=b OCSP")
    for now in (responder.not_valid_after_utc, responder.not_valid_before_utc):
        edge = check(respond(key=key, responder=responder, certificates=[responder],
                             this_update=now, next_update=None), now=now)
        assert edge.status == "good"


def test_a_responder_the_ca_did_not_authorise_is_refused() -> None:
    a, b = domain("a"), domain("b")
    cases = [
        delegate(b.ca, b.ca_key, eku=None),
        delegate(b.ca, b.ca_key, eku=ExtendedKeyUsageOID.CODE_SIGNING),
        delegate(a.ca, a.ca_key),
    ]
    for key, responder in cases:
        assert refused(respond(key=key, responder=responder, certificates=[responder])) == (
            NOT_AUTHORISED
        )
    key, responder = delegate(b.ca, b.ca_key)
    assert refused(respond(key=key, responder=responder)) == NOT_AUTHORISED  # not included
    _, other = delegate(b.ca, b.ca_key)
    assert refused(respond(key=key, responder=responder, certificates=[other])) == NOT_AUTHORISED


def test_every_certificate_of_the_response_is_looked_at() -> None:
    a, b = domain("a"), domain("b")
    key, responder = delegate(b.ca, b.ca_key)
    _, unnamed = delegate(b.ca, b.ca_key)
    unnamed_first = respond(key=key, responder=responder, certificates=[unnamed, responder])
    assert check(unnamed_first).responder == "CN=b OCSP"
    _, stranger = delegate(a.ca, a.ca_key)  # the same name, issued by another CA
    by_name = respond(key=key, responder=responder, by_name=True,
                      certificates=[stranger, responder])
    assert check(by_name).responder == "CN=b OCSP"


def test_an_rsa_ca_and_a_key_that_cannot_sign_ocsp() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    b = domain("b")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_ca = certificate("b RSA CA", rsa_key.public_key(), b.root, b.root_key, ca=True)  # type: ignore[arg-type]
    seal = certificate("s", b.seal_key.public_key(), rsa_ca, rsa_key)  # type: ignore[arg-type]
    good = respond(cert=seal, issuer=rsa_ca, key=rsa_key)  # type: ignore[arg-type]
    assert check(good, cert=seal, issuer=rsa_ca).responder == "CN=b RSA CA"
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    twin = certificate("b RSA CA", forger.public_key(), b.root, b.root_key, ca=True)  # type: ignore[arg-type]
    forged = respond(cert=seal, issuer=rsa_ca, key=forger, responder=twin, by_name=True)  # type: ignore[arg-type]
    assert refused(forged, cert=seal, issuer=rsa_ca) == (
        "OCSP应答签名无效 / the OCSP response's signature does not verify")
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_ca = certificate("b Ed CA", ed_key.public_key(), b.root, b.root_key, ca=True)  # type: ignore[arg-type]
    ed_seal = certificate("e", b.seal_key.public_key(), ed_ca, ed_key)  # type: ignore[arg-type]
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=ed_seal, issuer=ed_ca, algorithm=hashes.SHA256(),
        cert_status=ocsp.OCSPCertStatus.GOOD, this_update=NOW, next_update=None,
        revocation_time=None, revocation_reason=None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, ed_ca).add_extension(
        x509.OCSPNonce(NONCE), critical=False)
    ed_der = builder.sign(ed_key, None).public_bytes(serialization.Encoding.DER)
    assert refused(ed_der, cert=ed_seal, issuer=ed_ca) == (
        "OCSP应答签名无效 / the OCSP response's signature does not verify")


def test_an_expired_or_future_responder_is_refused() -> None:
    b = domain("b")
    invalid = "OCSP响应者证书不在有效期内 / the OCSP responder certificate is not valid"
    for start, end in ((NOW - timedelta(days=2), NOW - timedelta(seconds=1)),
                       (NOW + timedelta(seconds=1), NOW + timedelta(days=2))):
        key, responder = delegate(b.ca, b.ca_key, not_before=start, not_after=end)
        assert refused(respond(key=key, responder=responder, certificates=[responder])) == invalid


def test_an_answer_about_another_certificate_is_refused() -> None:
    b = domain("b")
    other = "OCSP应答与所询证书不符 / the OCSP response is about another certificate"
    assert refused(respond(cert=b.tsa)) == other  # another serial, same issuer
    # the same serial and issuer key, another issuer name
    renamed = certificate("b Seal", b.seal_key.public_key(), None, b.ca_key, serial=b.seal.serial_number,
                          issuer_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
    assert refused(respond(cert=renamed)) == other
    # the same serial and issuer name, another issuer key
    rekey = new_key()
    twin = certificate("b CA", rekey.public_key(), b.root, b.root_key, ca=True)
    assert refused(respond(key=rekey, responder=twin), issuer=twin) == other


def test_the_nonce_must_be_echoed() -> None:
    silent = "OCSP应答未回显随机数 / the OCSP response does not echo our nonce"
    assert refused(respond(nonce=None)) == silent
    assert refused(respond(nonce=b"m" * 16)) == silent


def test_only_a_current_answer_is_believed() -> None:
    assert SKEW == timedelta(minutes=5)
    stale = "OCSP应答不在有效时间内 / the OCSP response is not current"
    assert check(respond(this_update=NOW + SKEW)).status == "good"
    assert refused(respond(this_update=NOW + SKEW + timedelta(seconds=1))) == stale
    assert check(respond(this_update=NOW - timedelta(hours=2),
                         next_update=NOW - SKEW)).status == "good"
    assert refused(respond(this_update=NOW - timedelta(hours=2),
                           next_update=NOW - SKEW - timedelta(seconds=1))) == stale
    assert check(respond(next_update=None)).status == "good"


def test_the_request_names_the_certificate_with_sha256_and_our_nonce() -> None:
    b = domain("b")
    request = ocsp.load_der_ocsp_request(build_request(b.seal, b.ca, NONCE))
    assert request.serial_number == b.seal.serial_number
    assert isinstance(request.hash_algorithm, hashes.SHA256)
    extension = request.extensions.get_extension_for_class(x509.OCSPNonce)
    assert (extension.value.nonce, extension.critical) == (NONCE, False)


def peers(network: Network) -> Peers:
    return Peers(resolve=lambda h, p: ["93.184.216.34"], transport=network.transport())


def test_query_posts_to_the_listed_responder() -> None:
    b = domain("b")
    network = Network().add(b)
    answer = query("https://b.example/pki/ocsp", b.seal, b.ca, NOW, peers(network))
    assert answer.status == "good"
    sent = network.requests[0]
    assert (sent.method, str(sent.url)) == ("POST", "https://b.example/pki/ocsp")
    assert sent.headers["Content-Type"] == "application/ocsp-request"
    asked = ocsp.load_der_ocsp_request(sent.content)
    nonce = asked.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert len(nonce) == 16
    query("https://b.example/pki/ocsp", b.seal, b.ca, NOW, peers(network))
    again = ocsp.load_der_ocsp_request(network.requests[1].content)
    assert again.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce != nonce
    assert MAX_RESPONSE_BYTES == 65536


def test_an_unreachable_responder_is_named_as_the_ocsp_service() -> None:
    b = domain("b")
    network = Network()
    with pytest.raises(Unavailable) as caught:
        query("https://b.example/pki/ocsp", b.seal, b.ca, NOW, peers(network))
    assert caught.value.message == (
        "无法获取OCSP应答 / cannot fetch the OCSP response from https://b.example/pki/ocsp: HTTP 404")


def test_query_refuses_a_replayed_answer() -> None:
    b = domain("b")
    network = Network().add(b)
    network.ocsp["b.example"] = lambda p, body: respond(nonce=b"x" * 16)
    with pytest.raises(OcspRefused):
        query("https://b.example/pki/ocsp", b.seal, b.ca, NOW, peers(network))


def test_chain_status_asks_about_the_seal_and_each_ca_short_of_the_root() -> None:
    b = domain("b")
    network = Network().add(b)
    listed = b.parsed()

    def issuer(cert: x509.Certificate) -> x509.Certificate | None:
        ca = listed.issuer_of(cert)
        return ca.certificate if ca else None

    answers = chain_status(issuer, lambda ca: "https://b.example/pki/ocsp", b.seal, NOW,
                           peers(network))
    assert [(cert, answer.status) for cert, answer in answers] == [
        (b.seal, "good"), (b.ca, "good")]
    assert [r.url.path for r in network.requests] == ["/pki/ocsp", "/pki/ocsp"]
    with pytest.raises(OcspRefused) as caught:
        chain_status(lambda c: None, lambda ca: "https://b.example/pki/ocsp", b.seal, NOW,
                     peers(network))
    assert caught.value.message == "证书链不完整 / the chain has a certificate of no listed CA"
    for url in (None, ""):
        with pytest.raises(OcspRefused) as caught:
            chain_status(issuer, lambda ca, u=url: u, b.seal, NOW, peers(network))
        assert caught.value.message == "信任列表未给出OCSP地址 / the trust list names no OCSP responder"


def ladder(depth: int) -> list[x509.Certificate]:
    """A leaf and ``depth`` CAs above it, the last one a root."""
    key = new_key()
    chain = [certificate("r", key.public_key(), None, key, ca=True)]
    for level in range(depth):
        next_key = new_key()
        chain.append(certificate(f"c{level}", next_key.public_key(), chain[-1], key, ca=True))
        key = next_key
    return list(reversed(chain))


def test_chains_longer_than_four_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_DEPTH == 4
    asked: list[str] = []

    def fake_query(url: str, cert: x509.Certificate, issuer: x509.Certificate, now: datetime,
                   peers: Peers) -> OcspAnswer:
        asked.append(url)
        return OcspAnswer("good", now, None)

    monkeypatch.setattr(federation_ocsp, "query", fake_query)
    for depth, fine in ((4, True), (5, False)):
        chain = ladder(depth)
        above = dict(itertools.pairwise(chain))
        if fine:
            found = chain_status(above.get, lambda ca: "u", chain[0], NOW, Peers())
            assert len(found) == depth
        else:
            with pytest.raises(OcspRefused) as caught:
                chain_status(above.get, lambda ca: "u", chain[0], NOW, Peers())
            assert caught.value.message == "证书链过长 / the chain is longer than expected"
