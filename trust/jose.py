"""The domain's credential key: ES256 JWS (RFC 7515 compact form) signed through the key store.

Two documents are signed with it: the status list (``licences.status_list``, a W3C
BitstringStatusListCredential) and a licence exported as a W3C Verifiable Credential
(``licences.credential``), both as ``application/vc+jwt`` (VC-JOSE-COSE). It is a key of its own
(``credential-signing``), not the QR key: the QR key signs COSE payloads only, and one key per
message format keeps a signature from ever being read in the other format.

The public halves are published in the signed trust list (``credential_keys``, each a JWK with
``kid`` = its RFC 7638 thumbprint), so a verifier that pinned the trust-list signer reaches
this key through the list: offline, in the CLI and in the browser. Every version stays
published, so a rotation does not break what was signed before.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from keys.store import KeyRef, KeyStore, KeyUseListener
from keys.versions import P256Versions

LABEL = "credential-signing"
ALG = "ES256"
MAX_TOKEN = 4 * 1024 * 1024  # characters of a compact JWS a verifier reads at most


class JwsError(ValueError):
    """A compact JWS that is malformed, names an unknown key or whose signature fails."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if "=" in text or len(text) % 4 == 1:
        raise JwsError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise JwsError("not base64url") from None


def _coordinate(value: int) -> str:
    return b64url(value.to_bytes(32, "big"))


def jwk_of(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public JWK (RFC 7517/7518) of a P-256 key, with its thumbprint as ``kid``."""
    numbers = public_key.public_numbers()
    core = {"crv": "P-256", "kty": "EC", "x": _coordinate(numbers.x), "y": _coordinate(numbers.y)}
    return {**core, "kid": thumbprint(core), "alg": ALG, "use": "sig"}


def thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace."""
    required = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


def public_key_of(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey:
    """The P-256 key of a JWK; JwsError when it is anything else or its ``kid`` is not its
    thumbprint (a list may not name a key by another key's id)."""
    try:
        if jwk["kty"] != "EC" or jwk["crv"] != "P-256":
            raise JwsError("credential keys are P-256 EC keys")
        x = int.from_bytes(b64url_decode(jwk["x"]), "big")
        y = int.from_bytes(b64url_decode(jwk["y"]), "big")
        key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except (KeyError, TypeError, ValueError) as exc:
        raise JwsError(f"not a P-256 public JWK: {exc}") from None
    if jwk.get("kid") != thumbprint(jwk_of(key)):
        raise JwsError("the JWK's kid is not its RFC 7638 thumbprint")
    return key


@dataclass(frozen=True)
class CredentialKey:
    kid: str
    public_key: ec.EllipticCurvePublicKey
    ref: KeyRef | None = None  # known only to the service that holds the key

    def to_json(self) -> dict[str, Any]:
        return {"kid": self.kid, "alg": ALG, "jwk": jwk_of(self.public_key)}


def sign_compact(
    header: Mapping[str, Any], payload: bytes, kid: str, sign_digest: Callable[[bytes], bytes]
) -> str:
    """``header`` (``alg`` and ``kid`` are set here) and ``payload`` as a compact JWS;
    ``sign_digest`` signs a SHA-256 digest and returns DER ECDSA, converted to JOSE's r||s."""
    protected = b64url(
        json.dumps({**header, "alg": ALG, "kid": kid}, separators=(",", ":")).encode()
    )
    signing_input = f"{protected}.{b64url(payload)}".encode("ascii")
    r, s = decode_dss_signature(sign_digest(hashlib.sha256(signing_input).digest()))
    return f"{signing_input.decode('ascii')}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def verify_compact(
    token: str,
    keys: Callable[[str], ec.EllipticCurvePublicKey | None],
    *,
    typ: str,
) -> tuple[dict[str, Any], bytes]:
    """The protected header and payload of a compact ES256 JWS whose ``typ`` is ``typ`` and
    whose ``kid`` names a key ``keys`` knows; JwsError otherwise. No ``crit``, no other alg."""
    if len(token) > MAX_TOKEN:
        raise JwsError("the JWS is too large")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JwsError("not a compact JWS")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except ValueError:
        raise JwsError("the JWS header is not JSON") from None
    if not isinstance(header, dict):
        raise JwsError("the JWS header is not an object")
    if header.get("alg") != ALG:
        raise JwsError(f"the JWS algorithm must be {ALG}")
    if header.get("typ") != typ:
        raise JwsError(f"the JWS type must be {typ}")
    if "crit" in header:
        raise JwsError("critical JWS header parameters are not supported")
    kid = header.get("kid")
    key = keys(kid) if isinstance(kid, str) else None
    if key is None:
        raise JwsError("the JWS names no key of this trust list")
    signature = b64url_decode(parts[2])
    if len(signature) != 64:
        raise JwsError("an ES256 signature is 64 bytes")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, f"{parts[0]}.{parts[1]}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise JwsError("the JWS signature does not verify") from None
    return header, b64url_decode(parts[1])


class CredentialKeys:
    def __init__(self, keystore: KeyStore) -> None:
        self._versions = P256Versions(
            keystore, LABEL, lambda public, ref: CredentialKey(jwk_of(public)["kid"], public, ref),
            "凭证",
        )

    def ensure(self) -> bool:
        """Create the key if the store has none; True when it was created now."""
        return self._versions.ensure()

    def published(self, *, refresh: bool = False) -> list[CredentialKey]:
        """Every version of the credential key, newest first."""
        return self._versions.published(refresh=refresh)

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        return self._versions.public_key(kid)

    def sign(
        self,
        header: Mapping[str, Any],
        payload: bytes,
        *,
        purpose: str,
        listener: KeyUseListener | None,
    ) -> str:
        """A compact JWS by the newest version; the key use is reported to ``listener``."""
        key, sign_digest = self._versions.signer(purpose, listener)
        return sign_compact(header, payload, key.kid, sign_digest)

    def to_json(self) -> dict[str, Any]:
        """The ``credential_keys`` member of the trust list."""
        return {"credential_keys": [key.to_json() for key in self.published()]}
