"""The signed documents a domain gives other domains (``trust/federation_jws.py``): a
licence-status answer is believed only with its own ``typ``, the pinned signer's ``kid``, the
algorithm of the signer's key, a signature of exactly that algorithm's length, and an unaltered
body."""

from __future__ import annotations

import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from tests.security.federation_support import certificate, domain, status_body
from trust.federation_jws import STATUS_FORMAT, STATUS_TYPE, verify_document
from trust.profiles import TRUST_LIST_SIGNING
from trust.trustlist import MEDIA_TYPE, b64url, canonical, fingerprint, signing_input


def test_the_status_type_and_format_are_their_own() -> None:
    assert STATUS_TYPE == "application/vnd.elicence.licence-status+json"
    assert STATUS_FORMAT == "elicence-licence-status/1"
    assert MEDIA_TYPE != STATUS_TYPE


def signer_key() -> ec.EllipticCurvePrivateKey:
    b = domain("b")
    key = b.store._keys[b.signer_ref]  # the in-memory signer key
    return key


def jws(body: dict[str, Any], header: dict[str, Any], sign: Any = None,
        raw: bytes | None = None) -> dict[str, Any]:
    """``body`` signed with ``header`` as given (by the b signer's key unless ``sign``)."""
    protected = b64url(canonical(header))
    data = signing_input(body, protected)
    if raw is None:
        if sign is None:
            r, s = utils.decode_dss_signature(signer_key().sign(data, ec.ECDSA(hashes.SHA256())))
            raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            raw = sign(data)
    return {**body, "signature": {"protected": protected, "signature": b64url(raw)}}


def header(**changes: Any) -> dict[str, Any]:
    good = {"alg": "ES256", "kid": fingerprint(domain("b").signer), "typ": STATUS_TYPE}
    good.update(changes)
    return {k: v for k, v in good.items() if v is not None}


def body() -> dict[str, Any]:
    return status_body(domain("b"), "ab" * 32, "n1")


def test_a_status_answer_signed_by_the_product_verifies() -> None:
    b = domain("b")
    document = b.sign(body(), STATUS_TYPE)
    assert verify_document(document, b.signer, typ=STATUS_TYPE) is True
    assert verify_document(jws(body(), header()), b.signer, typ=STATUS_TYPE) is True


def test_a_document_of_another_type_is_not_a_status_answer() -> None:
    b = domain("b")
    trust_list = b.document()
    assert verify_document(trust_list, b.signer, typ=STATUS_TYPE) is False
    assert verify_document(trust_list, b.signer, typ=MEDIA_TYPE) is True
    answer = b.sign(body(), STATUS_TYPE)
    assert verify_document(answer, b.signer, typ=MEDIA_TYPE) is False
    assert verify_document(jws(body(), header(typ=None)), b.signer, typ=STATUS_TYPE) is False


def test_another_signer_or_kid_is_refused() -> None:
    a, b = domain("a"), domain("b")
    answer = b.sign(body(), STATUS_TYPE)
    assert verify_document(answer, a.signer, typ=STATUS_TYPE) is False
    # the right key, naming another certificate
    other = jws(body(), header(kid=fingerprint(a.signer)))
    assert verify_document(other, b.signer, typ=STATUS_TYPE) is False
    assert verify_document(jws(body(), header(kid=None)), b.signer, typ=STATUS_TYPE) is False
    # a's signer certificate re-issued over b's key: kid matches it, the key is b's
    twin = certificate("twin", signer_key().public_key(), a.ca, a.ca_key, eku=TRUST_LIST_SIGNING)
    named = jws(body(), header(kid=fingerprint(twin)))
    assert verify_document(named, twin, typ=STATUS_TYPE) is True
    assert verify_document(named, b.signer, typ=STATUS_TYPE) is False


def test_an_altered_body_or_signature_is_refused() -> None:
    b = domain("b")
    answer = b.sign(body(), STATUS_TYPE)
    altered = {**answer, "found": False}
    assert verify_document(altered, b.signer, typ=STATUS_TYPE) is False
    raw = bytearray(__import__("base64").urlsafe_b64decode(
        answer["signature"]["signature"] + "=="))
    raw[40] ^= 1
    flipped = jws(body(), header(), raw=bytes(raw))
    assert verify_document(flipped, b.signer, typ=STATUS_TYPE) is False
    swapped = jws(body(), header(), raw=bytes(raw[32:] + raw[:32]))
    assert verify_document(swapped, b.signer, typ=STATUS_TYPE) is False


def test_the_signature_has_exactly_64_bytes() -> None:
    b = domain("b")
    good = jws(body(), header())
    raw = __import__("base64").urlsafe_b64decode(good["signature"]["signature"] + "==")
    assert len(raw) == 64
    for bad in (raw + b"\x00", raw[:63], b"\x00" + raw):
        assert verify_document(jws(body(), header(), raw=bad), b.signer, typ=STATUS_TYPE) is False
    # the same signature DER-encoded, as ECDSA libraries give it: not JWS
    der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                     int.from_bytes(raw[32:], "big"))
    assert verify_document(jws(body(), header(), raw=der), b.signer, typ=STATUS_TYPE) is False


def test_the_algorithm_must_be_the_signer_keys() -> None:
    b = domain("b")
    for alg in ("RS256", "ES384", "none", None):
        document = jws(body(), header(alg=alg))
        assert verify_document(document, b.signer, typ=STATUS_TYPE) is False


def rsa_signer() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    a = domain("a")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, certificate("rsa", key.public_key(), a.ca, a.ca_key, eku=TRUST_LIST_SIGNING)


def test_rs256_with_an_rsa_signer() -> None:
    key, cert = rsa_signer()

    def rs(data: bytes) -> bytes:
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    kid = fingerprint(cert)
    good = jws(body(), header(alg="RS256", kid=kid), sign=rs)
    assert verify_document(good, cert, typ=STATUS_TYPE) is True
    assert verify_document({**good, "query": "x"}, cert, typ=STATUS_TYPE) is False
    as_es = jws(body(), header(alg="ES256", kid=kid), sign=rs)
    assert verify_document(as_es, cert, typ=STATUS_TYPE) is False
    pss = jws(body(), header(alg="RS256", kid=kid), sign=lambda d: key.sign(
        d, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()))
    assert verify_document(pss, cert, typ=STATUS_TYPE) is False
    sha1 = jws(body(), header(alg="RS256", kid=kid), sign=lambda d: key.sign(
        d, padding.PKCS1v15(), hashes.SHA1()))
    assert verify_document(sha1, cert, typ=STATUS_TYPE) is False
    # an EC signer's signature named RS256
    b = domain("b")
    assert verify_document(jws(body(), header(alg="RS256")), b.signer, typ=STATUS_TYPE) is False


def test_malformed_documents_are_not_genuine() -> None:
    b = domain("b")
    good = jws(body(), header())
    protected = good["signature"]["protected"]
    cases: list[Any] = [
        None,
        "text",
        body(),
        {**body(), "signature": None},
        {**body(), "signature": {"protected": protected}},
        {**body(), "signature": {"signature": good["signature"]["signature"]}},
        {**body(), "signature": {"protected": "!!!", "signature": "AA"}},
        {**body(), "signature": {"protected": b64url(b"not json"), "signature": "AA"}},
        {**body(), "signature": {"protected": b64url(json.dumps([1]).encode()),
                                 "signature": good["signature"]["signature"]}},
        {**body(), "signature": {"protected": protected, "signature": 7}},
    ]
    for document in cases:
        assert verify_document(document, b.signer, typ=STATUS_TYPE) is False
