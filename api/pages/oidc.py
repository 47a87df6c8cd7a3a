"""Holder sign-in (持证人登录) through OpenID Connect at the unified identity platform.

Authorization Code flow with PKCE (S256), ``state`` and ``nonce``; the provider is found by
discovery (``<issuer>/.well-known/openid-configuration``, whose ``issuer`` must be exactly the
configured one) and the ID token's signature is checked against its JWKS (ES256, RS256 or PS256;
never ``none`` or a shared-secret algorithm), with ``iss``, ``aud``, ``exp``, ``iat`` and
``nonce`` checked by authlib's ``CodeIDToken`` (and ``at_hash`` when present). The protocol
pieces are authlib's (grant URI, token request, client authentication, PKCE challenge, ID-token
claims) over a plain httpx client: authlib's own httpx integration is deprecated in favour of a
client library this service does not carry.

**Claims** the platform must release, in the ID token or else from ``userinfo``:

========== =========================================================================
``sub``    the platform's stable subject for the person or organisation
``name``   the registered name (as on the licences)
``id_type`` GB/T 36903 holder ID type: ``111`` resident ID (GB 11643), ``001`` USCC
``id_number`` the ID number, checked with ``licences.id_documents.validate_holder_id``
========== =========================================================================

Between ``/me/login`` and ``/me/callback`` the ``state``, ``nonce`` and PKCE verifier are kept in
a signed, HttpOnly cookie (``elicence_oidc``, path ``/me``, 10 minutes) bound to the browser
that started the sign-in; it is used once: the callback claims its ``state`` in the shared store
(``core.shared_state``, :func:`claim_state`: Redis SET NX for a fleet), so a copy of the cookie
and the provider's answer replayed to any worker is refused. When Redis does not answer the
sign-in fails closed (503). Every sign-in, failed sign-in and sign-out leaves an
audit entry, and every failure is a page that says what to do, never a 500.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from api.edge.holder_session import HolderPrincipal
from core.clock import Clock
from core.errors import InvalidInput
from core.shared_state import SharedState
from licences.holders import check_name
from licences.id_documents import validate_holder_id

TRANSACTION_COOKIE = "elicence_oidc"
LOGIN = "oidc-login"  # purpose label of the transaction cookie's MAC
TRANSACTION_LIFETIME = timedelta(minutes=10)
USED_STATE = "oidc-state:"  # shared-store key of a sign-in's state once its answer was taken
ALGORITHMS = ("ES256", "RS256", "PS256")
SCOPE = "openid profile"
METADATA_SECONDS = 3600.0
JWKS_REFRESH_SECONDS = 30.0  # a token with an unknown key refetches the JWKS at most this often
LEEWAY = 60  # seconds of clock difference tolerated on exp / iat

UNAVAILABLE = (
    "统一身份认证平台暂不可用，请稍后再试 / the unified identity platform is unavailable; "
    "try again later"
)
NOT_CONFIGURED = (
    "本服务未配置统一身份认证 / holder sign-in is not configured for this service "
    "(ELICENCE_OIDC_ISSUER, or ELICENCE_DEMO_MODE=1 for the development provider)"
)
STATE = (
    "登录请求已失效或与本浏览器不匹配，请重新登录 / the sign-in request has expired or was "
    "not started in this browser; sign in again"
)
MIXED_UP = (
    "登录应答来自其他身份认证平台，请重新登录 / the answer came from another identity provider; "
    "sign in again"
)
DENIED = "统一身份认证未完成登录（已取消或被拒绝） / the identity platform did not sign you in"
CODE = (
    "登录凭据无效、已过期或已被使用，请重新登录 / the sign-in code is invalid, expired or "
    "already used; sign in again"
)
REFUSED_ID = "身份令牌无效，登录被拒绝 / the identity token is not valid; sign-in refused"
IDENTITY = (
    "统一身份认证未提供有效的证件类型、证件号码或姓名 / the identity platform did not provide a "
    "valid ID type, ID number and name"
)


class SignInFailed(Exception):
    """A sign-in that cannot go on: the page status, a short reason for the audit entry, and a
    message for the holder."""

    def __init__(self, status: int, reason: str, message: str, subject: str | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.subject = status, reason, message, subject


def claim_state(shared: SharedState, state: str) -> bool:
    """True the first time a sign-in's ``state`` comes back, in the whole fleet; False for a
    replay. The key holds the state's SHA-256, and lasts as long as the transaction could."""
    digest = hashlib.sha256(state.encode()).hexdigest()
    return shared.claim(USED_STATE + digest, TRANSACTION_LIFETIME.total_seconds())


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str  # <public base URL>/me/callback, registered at the provider


class OidcClient:
    """The relying party. Discovery metadata is cached for an hour, the JWKS until a token
    names a key it does not hold."""

    def __init__(self, config: OidcConfig, *, clock: Clock, timeout: float = 5.0) -> None:
        self.config = config
        self._clock = clock
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    # --- provider documents --------------------------------------------------------------------

    def _get_json(self, url: str, **headers: str) -> dict[str, Any]:
        try:
            response = self._http.get(url, headers={"Accept": "application/json", **headers})
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(503, "provider", UNAVAILABLE) from exc
        if not isinstance(data, dict):
            raise SignInFailed(503, "provider", UNAVAILABLE)
        return data

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if (
                self._metadata is not None
                and time.monotonic() - self._metadata_at < METADATA_SECONDS
            ):
                return self._metadata
        issuer = self.config.issuer.rstrip("/")
        data = self._get_json(f"{issuer}/.well-known/openid-configuration")
        endpoints = ("authorization_endpoint", "token_endpoint", "jwks_uri")
        if data.get("issuer") != self.config.issuer or not all(
            isinstance(data.get(k), str) and data[k].startswith(("https://", "http://"))
            for k in endpoints
        ):
            raise SignInFailed(503, "provider", UNAVAILABLE)
        with self._lock:
            self._metadata, self._metadata_at = data, time.monotonic()
        return data

    def key_set(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            keys = self._keys
            if keys is not None and not (
                refresh and time.monotonic() - self._keys_at > JWKS_REFRESH_SECONDS
            ):
                return keys
        data = self._get_json(self.metadata()["jwks_uri"])
        try:
            keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise SignInFailed(503, "provider", UNAVAILABLE) from exc
        with self._lock:
            self._keys, self._keys_at = keys, time.monotonic()
        return keys

    # --- the flow ------------------------------------------------------------------------------

    def begin(self) -> tuple[str, dict[str, str]]:
        """The provider's authorization URL, and the login state to keep until the callback."""
        metadata = self.metadata()
        started = {
            "state": generate_token(32),
            "nonce": generate_token(32),
            "verifier": generate_token(64),
        }
        url = prepare_grant_uri(
            metadata["authorization_endpoint"],
            self.config.client_id,
            "code",
            redirect_uri=self.config.redirect_uri,
            scope=SCOPE,
            state=started["state"],
            nonce=started["nonce"],
            code_challenge=create_s256_code_challenge(started["verifier"]),
            code_challenge_method="S256",
        )
        return url, started

    def finish(self, code: str, started: dict[str, Any]) -> HolderPrincipal:
        """Redeem the code, check the ID token, and read the holder from its claims."""
        metadata = self.metadata()
        token = self._redeem(metadata, code, str(started["verifier"]))
        claims = self.check_id_token(metadata, token, str(started["nonce"]))
        return self._holder(metadata, token, claims)

    def _redeem(self, metadata: dict[str, Any], code: str, verifier: str) -> dict[str, Any]:
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.config.redirect_uri,
            code_verifier=verifier,
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        auth = ClientAuth(self.config.client_id, self.config.client_secret, "client_secret_basic")
        uri, headers, body = auth.prepare("POST", metadata["token_endpoint"], headers, body)
        try:
            response = self._http.post(uri, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SignInFailed(503, "provider", UNAVAILABLE) from exc
        if response.status_code >= 500:
            raise SignInFailed(503, "provider", UNAVAILABLE)
        try:
            token = response.json()
        except ValueError:
            token = None
        if response.status_code != 200 or not isinstance(token, dict) or "error" in token:
            raise SignInFailed(401, "code", CODE)
        if not isinstance(token.get("id_token"), str):
            raise SignInFailed(401, "id_token", REFUSED_ID)
        return token

    def check_id_token(
        self, metadata: dict[str, Any], token: dict[str, Any], nonce: str
    ) -> dict[str, Any]:
        """The ID token's claims once its signature (the provider's JWKS), ``iss``, ``aud``,
        ``exp``, ``iat``, ``nonce`` and ``at_hash`` hold; anything else is a refused sign-in."""
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in ALGORITHMS if a in offered]
        decoded = None
        for refresh in (False, True):  # a key rotated in at the provider is fetched once
            try:
                decoded = jwt.decode(
                    token["id_token"], self.key_set(refresh=refresh), algorithms=algorithms
                )
                break
            except (JoseError, ValueError, TypeError, KeyError):
                continue
        if decoded is None:
            raise SignInFailed(401, "id_token", REFUSED_ID)
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.config.issuer},
            "aud": {"essential": True, "value": self.config.client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
        }
        params = {
            "nonce": nonce,
            "client_id": self.config.client_id,
            "access_token": token.get("access_token"),
        }
        claims = CodeIDToken(decoded.claims, decoded.header, options, params)
        try:
            claims.validate(now=int(self._clock.now().timestamp()), leeway=LEEWAY)
        except (JoseError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SignInFailed(401, "id_token", REFUSED_ID) from exc
        return dict(claims)

    def _holder(
        self, metadata: dict[str, Any], token: dict[str, Any], claims: dict[str, Any]
    ) -> HolderPrincipal:
        subject = str(claims["sub"])
        wanted = ("id_type", "id_number", "name")
        if not all(isinstance(claims.get(k), str) for k in wanted) and isinstance(
            metadata.get("userinfo_endpoint"), str
        ):
            info = self._get_json(
                metadata["userinfo_endpoint"],
                Authorization=f"Bearer {token.get('access_token', '')}",
            )
            if info.get("sub") == subject:  # OpenID Connect Core 5.3.2
                claims = {**info, **claims}
        try:
            id_type, number, name = (claims.get(k) for k in wanted)
            if not all(isinstance(v, str) for v in (id_type, number, name)):
                raise InvalidInput(IDENTITY)
            number = validate_holder_id(str(id_type), str(number))
            name = check_name(str(name))
        except InvalidInput as exc:
            raise SignInFailed(403, "identity", IDENTITY, subject) from exc
        return HolderPrincipal(
            id_type=str(id_type),
            id_number=number,
            name=name,
            subject=subject,
            issuer=self.config.issuer,
        )
