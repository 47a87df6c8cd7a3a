"""The credential key's JWS (trust.jose): first what a forger would send a verifier — alg none,
an HMAC keyed with the public key, another typ, critical headers, an unknown or borrowed kid, a
short or DER signature, a changed payload — each refused with JwsError; then the thumbprint
against a published value, and signing through the key store with every use reported.

Tokens here are put together by hand (never by ``sign_compact``), so a fault in the signer
cannot hide the same fault in the verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from keys.soft import SoftKeyStore
from keys.store import KeyRef
from trust.jose import (
    LABEL,
    MAX_TOKEN,
    CredentialKeys,
    JwsError,
    jwk_of,
    public_key_of,
    sign_compact,
    thumbprint,
    verify_compact,
)

TYP = "vc+jwt"
PAYLOAD = json.dumps({"id": "https://licence.example.gov.cn/pki/status-list"}).encode()
# RFC 9449 (DPoP) section 4.1's example P-256 key and, in its figures 8 and 9, the RFC 7638
# thumbprint it publishes for it (``cnf.jkt``). RFC 7638's own example key is RSA, which the
# credential key never is.
RFC9449_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
}
RFC9449_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def token(
    head: dict[str, Any], payload: bytes, key: ec.EllipticCurvePrivateKey, **parts: str
) -> str:
    """A compact JWS; ``parts`` replaces the encoded ``protected``, ``body`` or ``signature``."""
    protected = parts.get("protected", b64(json.dumps(head).encode()))
    body = parts.get("body", b64(payload))
    signature = parts.get("signature", b64(raw_signature(key, f"{protected}.{body}".encode())))
    return f"{protected}.{body}.{signature}"


class Keys:
    """A verifier's key set: one key, known by its thumbprint."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.kid = jwk_of(self.private.public_key())["kid"]

    def lookup(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        return self.private.public_key() if kid == self.kid else None

    def header(self, **changes: Any) -> dict[str, Any]:
        return {"alg": "ES256", "kid": self.kid, "typ": TYP, "cty": "vc", **changes}


@pytest.fixture
def keys() -> Keys:
    return Keys()


def refused(text: str, keys: Keys, match: str) -> None:
    with pytest.raises(JwsError, match=match):
        verify_compact(text, keys.lookup, typ=TYP)


# --- what a forger sends ---------------------------------------------------------------------


def test_the_genuine_token_verifies(keys: Keys) -> None:
    """The control: every refusal below changes one thing of this token."""
    header, payload = verify_compact(
        token(keys.header(), PAYLOAD, keys.private), keys.lookup, typ=TYP
    )
    assert (header["kid"], payload) == (keys.kid, PAYLOAD)


def test_alg_none_is_refused(keys: Keys) -> None:
    unsigned = token(keys.header(alg="none"), PAYLOAD, keys.private, signature="")
    refused(unsigned, keys, "algorithm")
    signed = token(keys.header(alg="none"), PAYLOAD, keys.private)
    refused(signed, keys, "algorithm")


def test_an_hmac_keyed_with_the_public_key_is_refused(keys: Keys) -> None:
    """The classic confusion: HS256 with the verifier's public key as the secret."""
    header = keys.header(alg="HS256")
    secret = json.dumps(jwk_of(keys.private.public_key())).encode()
    protected, body = b64(json.dumps(header).encode()), b64(PAYLOAD)
    mac = hmac.new(secret, f"{protected}.{body}".encode(), hashlib.sha256).digest()
    refused(f"{protected}.{body}.{b64(mac)}", keys, "algorithm")


@pytest.mark.parametrize("typ", ["JWT", "vc+ld+json", "VC+JWT", None])
def test_another_type_is_refused(keys: Keys, typ: str | None) -> None:
    header = keys.header(typ=typ)
    if typ is None:
        del header["typ"]
    refused(token(header, PAYLOAD, keys.private), keys, "type")


def test_critical_header_parameters_are_refused(keys: Keys) -> None:
    for crit in (["exp"], [], "b64"):
        header = keys.header(crit=crit, exp=1, b64=False)
        refused(token(header, PAYLOAD, keys.private), keys, "critical")


def test_a_key_the_verifier_does_not_know_is_refused(keys: Keys) -> None:
    stranger = Keys()
    refused(token(stranger.header(), PAYLOAD, stranger.private), keys, "names no key")
    for kid in (None, 7, ["x"], ""):
        header = keys.header(kid=kid)
        refused(token(header, PAYLOAD, keys.private), keys, "names no key")


def test_a_known_kid_on_another_keys_signature_is_refused(keys: Keys) -> None:
    stranger = Keys()
    refused(token(keys.header(), PAYLOAD, stranger.private), keys, "does not verify")


def test_a_63_byte_signature_is_refused(keys: Keys) -> None:
    genuine = token(keys.header(), PAYLOAD, keys.private)
    protected, body, signature = genuine.split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    for wrong in (raw[:63], raw + b"\x00", b""):
        refused(f"{protected}.{body}.{b64(wrong)}", keys, "64 bytes")


def test_a_der_signature_is_refused(keys: Keys) -> None:
    protected, body = b64(json.dumps(keys.header()).encode()), b64(PAYLOAD)
    der = keys.private.sign(f"{protected}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    refused(f"{protected}.{body}.{b64(der)}", keys, "64 bytes")


def test_a_changed_payload_or_header_is_refused(keys: Keys) -> None:
    genuine = token(keys.header(), PAYLOAD, keys.private)
    protected, body, signature = genuine.split(".")
    changed = b64(PAYLOAD.replace(b"status-list", b"status-lisT"))
    refused(f"{protected}.{changed}.{signature}", keys, "does not verify")
    other_header = b64(json.dumps(keys.header(cty="json")).encode())
    refused(f"{other_header}.{body}.{signature}", keys, "does not verify")
    # The same bytes, encoded with padding: the signed text is not the same text.
    refused(f"{protected}.{body}=.{signature}", keys, "does not verify|base64url")


@pytest.mark.parametrize(
    "text",
    ["", "a.b", "a.b.c.d", "a.b.c.d.e", "....", "e30.e30"],
    ids=["empty", "two-parts", "four-parts", "jwe-five-parts", "dots", "no-signature"],
)
def test_what_is_not_a_compact_jws_is_refused(keys: Keys, text: str) -> None:
    refused(text, keys, "compact JWS|not JSON|base64url")


def test_a_header_that_is_not_a_json_object_is_refused(keys: Keys) -> None:
    for header in (b64(b"not json"), b64(b'["ES256"]'), b64(b'"ES256"')):
        genuine = token(keys.header(), PAYLOAD, keys.private, protected=header)
        refused(genuine, keys, "not JSON|not an object")


def test_an_oversized_token_is_refused_before_it_is_parsed(keys: Keys) -> None:
    refused("a" * (MAX_TOKEN + 1), keys, "too large")


# --- the key's identity ----------------------------------------------------------------------


def test_the_thumbprint_is_the_published_one() -> None:
    assert thumbprint(RFC9449_JWK) == RFC9449_JKT
    # Members other than the required ones do not change it.
    assert thumbprint({**RFC9449_JWK, "kid": "anything", "use": "sig"}) == RFC9449_JKT


def test_a_jwk_is_believed_only_under_its_own_thumbprint() -> None:
    key = public_key_of({**RFC9449_JWK, "kid": RFC9449_JKT})
    assert key.public_numbers().x == int.from_bytes(
        base64.urlsafe_b64decode(RFC9449_JWK["x"] + "="), "big"
    )
    other = jwk_of(ec.generate_private_key(ec.SECP256R1()).public_key())["kid"]
    for kid in (other, None, RFC9449_JKT.lower()):
        with pytest.raises(JwsError, match="thumbprint"):
            public_key_of({**RFC9449_JWK, "kid": kid})


@pytest.mark.parametrize(
    "changes",
    [
        {"kty": "RSA"},
        {"crv": "P-384"},
        {"crv": "secp256k1"},
        {"x": "AAAA"},  # not a point on the curve
        {"y": None},
    ],
    ids=["rsa", "p384", "k1", "off-curve", "no-y"],
)
def test_a_jwk_that_is_not_a_p256_public_key_is_refused(changes: dict[str, Any]) -> None:
    jwk = {**RFC9449_JWK, "kid": RFC9449_JKT, **changes}
    if jwk["y"] is None:
        del jwk["y"]
    with pytest.raises(JwsError):
        public_key_of(jwk)


# --- signing through the key store -----------------------------------------------------------


class Uses:
    def __init__(self) -> None:
        self.seen: list[tuple[KeyRef, str]] = []

    def key_used(self, ref: KeyRef, purpose: str) -> None:
        self.seen.append((ref, purpose))


def test_a_caller_cannot_choose_the_algorithm_or_the_kid(keys: Keys) -> None:
    """``sign_compact`` sets ``alg`` and ``kid`` itself: a header asking for ``none`` or naming
    another key still yields an ES256 token under the signer's own kid."""
    text = sign_compact(
        {"typ": TYP, "alg": "none", "kid": "someone-else"},
        PAYLOAD,
        keys.kid,
        lambda digest: keys.private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))),
    )
    header, payload = verify_compact(text, keys.lookup, typ=TYP)
    assert (header["alg"], header["kid"], payload) == ("ES256", keys.kid, PAYLOAD)


def test_the_store_signs_with_the_newest_version_and_every_use_is_reported(tmp_path: Path) -> None:
    store = SoftKeyStore(tmp_path / "keys", b"test-passphrase")
    credential = CredentialKeys(store)
    assert credential.ensure() is True and credential.ensure() is False
    uses = Uses()
    first = credential.sign({"typ": TYP}, PAYLOAD, purpose="status-list", listener=uses)
    v1 = credential.published()[0]
    assert uses.seen == [(KeyRef("soft", LABEL, 1), "status-list")]
    assert v1.kid == jwk_of(v1.public_key)["kid"]
    store.rotate(LABEL)
    credential.published(refresh=True)  # another process's rotation is seen within minutes
    second = credential.sign({"typ": TYP}, PAYLOAD, purpose="credential", listener=uses)
    assert uses.seen[-1] == (KeyRef("soft", LABEL, 2), "credential")
    published = credential.published(refresh=True)
    assert [key.ref.version for key in published if key.ref] == [2, 1]  # newest first
    # Both verify through the published keys: a rotation leaves older signatures good.
    for text, version in ((first, 1), (second, 2)):
        header, _ = verify_compact(text, credential.public_key, typ=TYP)
        assert header["kid"] == next(k.kid for k in published if k.ref and k.ref.version == version)
    listed = credential.to_json()["credential_keys"]
    assert [item["kid"] for item in listed] == [key.kid for key in published]
    assert all(item["alg"] == "ES256" and item["jwk"]["kid"] == item["kid"] for item in listed)
    assert all("d" not in item["jwk"] for item in listed)  # the public half only
