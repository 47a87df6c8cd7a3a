"""OAuth2 client-credentials access tokens: short-lived JWTs (ES256) signed through the key store.

A department's system trades its client id and secret for a token carrying the scopes it was
granted; the token is checked by signature and expiry, and the client is looked up on every
request so a revoked client loses access at once, token or not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from core.clock import Clock
from core.errors import Unauthenticated
from keys.store import HashAlgorithm, KeyRef, KeyStore, KeyUseListener

TOKEN_KEY_LABEL = "token-signing"  # noqa: S105 - a key label, not a secret
LIFETIME = timedelta(minutes=10)
AUDIENCE = "elicence-api"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class TokenClaims:
    client_id: str
    department_code: str
    scopes: tuple[str, ...]
    expires_at: datetime


class TokenIssuer:
    def __init__(self, *, store: KeyStore, clock: Clock, issuer: str) -> None:
        self._store = store
        self._clock = clock
        self._issuer = issuer
        self._public: ec.EllipticCurvePublicKey | None = None

    def ensure_key(self) -> KeyRef:
        if not self._store.exists(TOKEN_KEY_LABEL):
            return self._store.create(TOKEN_KEY_LABEL)
        return KeyRef(self._store.name, TOKEN_KEY_LABEL, 1)

    def _ref(self) -> KeyRef:
        if not self._store.exists(TOKEN_KEY_LABEL):
            raise Unauthenticated(
                "令牌服务未初始化 / token service not initialised; run elicence init"
            )
        return KeyRef(self._store.name, TOKEN_KEY_LABEL, 1)

    def mint(
        self,
        *,
        client_id: str,
        department_code: str,
        scopes: tuple[str, ...],
        listener: KeyUseListener | None,
    ) -> tuple[str, int]:
        now = self._clock.now()
        ref = self._ref()
        header = {"alg": "ES256", "typ": "at+jwt", "kid": str(ref)}
        claims = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "sub": client_id,
            "department": department_code,
            "scope": " ".join(scopes),
            "iat": int(now.timestamp()),
            "exp": int((now + LIFETIME).timestamp()),
            "jti": secrets.token_hex(12),
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        der = self._store.sign_digest(
            ref, hashlib.sha256(signing_input.encode()).digest(), HashAlgorithm.SHA256
        )
        if listener is not None:
            listener.key_used(ref, "access-token")
        r, s = decode_dss_signature(der)
        token = f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
        return token, int(LIFETIME.total_seconds())

    def check(self, token: str) -> TokenClaims:
        problem = Unauthenticated("访问令牌无效或已过期 / invalid or expired access token")
        parts = token.split(".")
        if len(parts) != 3:
            raise problem
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            raw = _unb64(parts[2])
        except ValueError:
            raise problem from None
        if header.get("alg") != "ES256" or len(raw) != 64:
            raise problem
        if self._public is None:
            public = self._store.public_key(self._ref())
            assert isinstance(public, ec.EllipticCurvePublicKey)
            self._public = public
        signature = encode_dss_signature(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        )
        try:
            self._public.verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            raise problem from None
        now = self._clock.now().timestamp()
        if (
            claims.get("aud") != AUDIENCE
            or claims.get("iss") != self._issuer
            or not now < claims.get("exp", 0)
        ):
            raise problem
        return TokenClaims(
            client_id=str(claims["sub"]),
            department_code=str(claims["department"]),
            scopes=tuple(str(claims.get("scope", "")).split()),
            expires_at=datetime.fromtimestamp(claims["exp"]).astimezone(),
        )


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")
