"""开发用身份认证，仅供演示 — a development OpenID Connect provider, for demos and tests only.

Holders sign in at the unified identity platform (统一身份认证平台); on a laptop there is none,
so ``make run`` (demo mode, ``ELICENCE_DEMO_MODE=1``) mounts this small but real provider at
``/dev-idp``, and the tests run it as its own server on a loopback port. It speaks exactly the
protocol the service's client (``api/pages/oidc.py``) speaks to the real platform:

* discovery (``/.well-known/openid-configuration``) and the public keys (``/jwks``);
* ``/authorize``: Authorization Code flow only, PKCE with S256 required, ``state`` and
  ``nonce`` passed through. Instead of a password it shows a page to pick one of the demo
  data's holders (``api.demo.holders``), under a banner saying it is for demonstration only:
  the ID numbers it vouches for are the demo's fictitious people's;
* ``/token``: client authentication (``client_secret_basic`` or ``client_secret_post``), each
  code usable once within 60 s by the client and redirect URI it was issued to, with the PKCE
  verifier; a replayed code is refused and the tokens issued for it are withdrawn;
* ES256 ID tokens (joserfc) carrying ``sub``, ``name``, ``id_type`` and ``id_number``;
  ``/userinfo`` returns the same claims.

This module is the protocol; ``api.dev_idp.app`` serves it over HTTP.
State (codes, used codes, access tokens, the signing key) lives in the shared store
(``core.shared_state``): with ``ELICENCE_REDIS_URL`` every worker of a fleet serves one sign-in
(a code issued by one is redeemed at another, once) and signs with one key, the first one any
worker stored; without it, this process's memory, and a restart signs with a new key, which the
client picks up from the JWKS. Codes and tokens are kept under their SHA-256, never as such.
Without demo mode the service does not mount it at all, and ``/dev-idp`` is a 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from core.shared_state import MemoryState, SharedState, StoreUnavailable

DEMO_NOTICE = "开发用身份认证，仅供演示 / development identity provider, demonstration only"
ALG = "ES256"
SCOPES = ("openid", "profile")
CLAIMS = ("sub", "name", "id_type", "id_number")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
log = logging.getLogger("elicence.dev_idp")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_signing_key() -> ECKey:
    return ECKey.generate_key("P-256", {"alg": ALG, "use": "sig"}, auto_kid=True)


def shared_signing_key(store: SharedState, issuer: str) -> ECKey:
    """The provider's key, made by whichever worker asks first and stored once (SET NX): every
    worker signs with it, so the JWKS any of them publishes checks every token. When Redis does
    not answer at start, this worker signs with a key of its own (the demo keeps working on
    it; a fleet's client then refetches the JWKS it is missing)."""
    made = new_signing_key()
    try:
        stored = store.put_once(
            f"dev-idp:signing-key:{issuer}", json.dumps(made.as_dict(private=True))
        )
    except StoreUnavailable:
        log.warning("development provider: shared store unavailable, signing with a key of its own")
        return made
    return ECKey.import_key(json.loads(stored))


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    secret: str
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class _Code:
    client_id: str
    redirect_uri: str
    subject: str
    nonce: str | None
    challenge: str
    expires: float
    auth_time: int


class AuthorizeError(Exception):
    """A request that must not be sent back to its redirect URI (unknown client or URI)."""


class RedirectError(Exception):
    """An OAuth error answered by redirecting to the (registered) redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


class TokenError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass
class DevIdentityProvider:
    """The provider's state. ``jwks_keys`` publishes other keys than the signing one: only for
    tests of a client that must refuse a token whose signature does not match the JWKS."""

    issuer: str
    clients: tuple[RegisteredClient, ...]
    holders: tuple[dict[str, str], ...]
    signing_key: ECKey | None = None  # None: the shared one (:func:`shared_signing_key`)
    jwks_keys: tuple[ECKey, ...] | None = None
    code_seconds: int = 60
    token_seconds: int = 300
    now: Callable[[], float] = time.time
    store: SharedState = field(default_factory=MemoryState)

    def __post_init__(self) -> None:
        self.issuer = self.issuer.rstrip("/")
        if self.signing_key is None:
            self.signing_key = shared_signing_key(self.store, self.issuer)

    @property
    def key(self) -> ECKey:
        assert self.signing_key is not None  # set in __post_init__
        return self.signing_key

    def _key(self, kind: str, secret: str) -> str:
        return f"dev-idp:{kind}:{_digest(secret)}"

    @property
    def notice(self) -> str:
        """What a page shows while this provider signs holders in: it is for demonstration."""
        return DEMO_NOTICE

    # --- published metadata ------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALG],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": list(SCOPES),
            "claims_supported": [*CLAIMS, "iss", "aud", "exp", "iat", "auth_time", "nonce"],
            "service_documentation": DEMO_NOTICE,
        }

    def jwks(self) -> dict[str, Any]:
        keys = self.jwks_keys if self.jwks_keys is not None else (self.key,)
        return dict(KeySet(list(keys)).as_dict(private=False))

    # --- authorization -----------------------------------------------------------------------

    def check_authorize(self, params: dict[str, str]) -> RegisteredClient:
        """The client of a well-formed request; raises AuthorizeError before the redirect URI
        is trusted, RedirectError after."""
        client = self._client(params.get("client_id", ""))
        if client is None or params.get("redirect_uri") not in client.redirect_uris:
            raise AuthorizeError("未注册的客户端或回调地址 / unknown client or redirect URI")
        if params.get("response_type") != "code":
            raise RedirectError("unsupported_response_type", "only response_type=code")
        if "openid" not in params.get("scope", "").split():
            raise RedirectError("invalid_scope", "scope must include openid")
        if params.get("code_challenge_method") != "S256" or not _CHALLENGE.match(
            params.get("code_challenge", "")
        ):
            raise RedirectError("invalid_request", "PKCE with code_challenge_method=S256 required")
        return client

    def holder(self, subject: str) -> dict[str, str] | None:
        return next((h for h in self.holders if h["subject"] == subject), None)

    def issue_code(self, params: dict[str, str], subject: str) -> str:
        code = secrets.token_urlsafe(32)
        now = self.now()
        grant = _Code(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            subject=subject,
            nonce=params.get("nonce") or None,
            challenge=params["code_challenge"],
            expires=now + self.code_seconds,
            auth_time=int(now),
        )
        self.store.put(self._key("code", code), json.dumps(asdict(grant)), self.code_seconds)
        return code

    # --- token ---------------------------------------------------------------------------------

    def exchange(self, form: dict[str, str], authorization: str) -> dict[str, Any]:
        client = self._authenticate(form, authorization)
        if form.get("grant_type") != "authorization_code":
            raise TokenError("unsupported_grant_type", "only authorization_code")
        code = form.get("code", "")
        found = self.store.take(self._key("code", code))  # one worker takes it, once
        if found is None:
            withdrawn = self.store.take(self._key("used", code))
            if withdrawn:  # a replay withdraws the access token the code got
                self.store.take(self._key("access", withdrawn))
            raise TokenError("invalid_grant", "unknown, expired or already used code")
        self.store.put(self._key("used", code), "", self.token_seconds)
        grant = _Code(**json.loads(found))
        if grant.expires < self.now():
            raise TokenError("invalid_grant", "the code has expired")
        if grant.client_id != client.client_id or form.get("redirect_uri") != grant.redirect_uri:
            raise TokenError("invalid_grant", "the code was issued to another client or URI")
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if not _VERIFIER.match(verifier) or not hmac.compare_digest(
            challenge.rstrip(b"=").decode(), grant.challenge
        ):
            raise TokenError("invalid_grant", "PKCE verification failed")
        access = secrets.token_urlsafe(32)
        now = int(self.now())
        held = json.dumps([grant.subject, now + self.token_seconds])
        self.store.put(self._key("access", access), held, self.token_seconds)
        self.store.put(self._key("used", code), access, self.token_seconds)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_seconds,
            "scope": " ".join(SCOPES),
            "id_token": self._id_token(grant, client.client_id, access, now),
        }

    def _id_token(self, grant: _Code, audience: str, access: str, now: int) -> str:
        holder = self.holder(grant.subject)
        assert holder is not None
        half = hashlib.sha256(access.encode()).digest()[:16]
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "azp": audience,
            "iat": now,
            "exp": now + self.token_seconds,
            "auth_time": grant.auth_time,
            "at_hash": base64.urlsafe_b64encode(half).rstrip(b"=").decode(),
            **self._claims(holder),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        header = {"alg": ALG, "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key)

    def userinfo(self, authorization: str) -> dict[str, str]:
        scheme, _, token = authorization.partition(" ")
        held = (
            self.store.get(self._key("access", token.strip()))
            if scheme.lower() == "bearer"
            else None
        )
        found = json.loads(held) if held else None
        if found is None or found[1] < self.now():
            raise TokenError("invalid_token", "unknown or expired access token", 401)
        holder = self.holder(str(found[0]))
        assert holder is not None
        return self._claims(holder)

    @staticmethod
    def _claims(holder: dict[str, str]) -> dict[str, str]:
        return {
            "sub": holder["subject"],
            "name": holder["name"],
            "id_type": holder["id_type"],
            "id_number": holder["id"],
        }

    def _client(self, client_id: str) -> RegisteredClient | None:
        return next((c for c in self.clients if c.client_id == client_id), None)

    def _authenticate(self, form: dict[str, str], authorization: str) -> RegisteredClient:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(value.strip(), validate=True).decode()
            except ValueError:
                pair = ""
            client_id, _, secret = (unquote(part) for part in pair.partition(":"))
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        client = self._client(client_id)
        if client is None or not hmac.compare_digest(client.secret.encode(), secret.encode()):
            raise TokenError("invalid_client", "client authentication failed", 401)
        return client
