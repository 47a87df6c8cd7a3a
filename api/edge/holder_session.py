"""The signed-in holder (持证人), carried in a short-lived session cookie.

A holder proves who they are once, at the unified identity platform (OpenID Connect, see
``api/pages/oidc.py``); the service then keeps only what it needs to find their licences — ID type,
ID number, name, and the identity provider's subject — in an encrypted cookie: JWE compact
serialisation (RFC 7516) with direct AES-256-GCM, so the browser, a proxy or anyone who copies
it sees neither the ID number nor the name, and any change is refused. Nothing about the holder
is stored server-side for the session, so any worker can serve any request.

Each session has a random id (``sid``, inside the ciphertext). Signing out records the id as
revoked in the shared store (``core.shared_state``: Redis for a fleet, this process's memory for
one node) for the session's remaining life, and every request checks it, so a copy of the
cookie taken before sign-out is refused by every worker. When Redis does not answer, the check
fails closed: 503 naming Redis, never a session that might have been signed out. The key material
lives in ``<data-dir>/secrets/holder-session-key`` (owner-only), so restarting keeps sessions;
the AES key is derived from it with HKDF.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import Request, Response

from api.edge.state import services_of
from core.errors import Forbidden, Unauthenticated, Unavailable
from core.shared_state import MemoryState, SharedState
from licences.id_documents import is_person_id_type
from licences.masking import mask_name

COOKIE = "elicence_holder"
LIFETIME = timedelta(minutes=30)
SESSION = "holder-session"  # purpose label of the session cookie (part of its protected header)
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_INVALID = "登录状态无效，请重新登录 / the session is not valid; sign in again"
_EXPIRED = "登录已过期，请重新登录 / the session has expired; sign in again"
SIGNED_OUT = "已退出登录，请重新登录 / this session was signed out; sign in again"
REVOKED = "revoked-session:"  # shared-store key of a signed-out session's id
SIGN_IN_FIRST = "请先登录 / sign in first (统一身份认证 / unified identity platform)"
NOT_FOR_DEPARTMENTS = (
    "部门凭证不能代表持证人操作，请持证人本人登录 / a department credential cannot act "
    "for a holder; the holder must sign in"
)
_KDF_INFO = b"elicence holder-session A256GCM"
_NONCE = 12


@dataclass(frozen=True)
class HolderPrincipal:
    id_type: str  # GB/T 36903 holder ID type, e.g. "111" resident ID, "001" USCC
    id_number: str
    name: str
    subject: str  # the identity provider's `sub`
    issuer: str  # the identity provider's `iss`

    @property
    def actor(self) -> str:
        """For the audit chain: the identity provider's subject, never the ID number."""
        return f"holder:{self.subject}"


@dataclass(frozen=True)
class OpenSession:
    principal: HolderPrincipal
    csrf: str
    sid: str  # the session's id: what sign-out revokes
    expires: int  # seconds since the epoch


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_key(data_dir: Path) -> bytes:
    """The session key, created once, owner-only."""
    directory = data_dir / "secrets"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "holder-session-key"
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker created it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
    if path.stat().st_mode & 0o077:
        raise Unavailable(
            f"会话密钥文件权限过宽 / {path} is readable by others; fix with: chmod 600 {path}"
        )
    return path.read_text().strip().encode()


class HolderSessions:
    """Seals and opens holder session cookies, and other short-lived protected values.

    Each value is a JWE (``header.encrypted_key.iv.ciphertext.tag``, ``alg`` ``dir``, ``enc``
    ``A256GCM``) whose protected header names its purpose, so a value made for one use (say the
    OpenID Connect login transaction) can never be presented as another (a session); the claims
    and their expiry are inside the ciphertext."""

    def __init__(
        self,
        key: bytes,
        *,
        secure: bool,
        lifetime: timedelta = LIFETIME,
        shared: SharedState | None = None,
    ) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO)
        self._aead = AESGCM(derived.derive(key))
        self.secure = secure
        self.lifetime = lifetime
        self.shared: SharedState = shared if shared is not None else MemoryState()

    # --- revocation (sign-out), shared by every worker -----------------------------------------

    def revoke(self, sid: str, expires: int, now: datetime) -> None:
        """Records the session ``sid`` signed out until it would have expired anyway (``expires``,
        seconds since the epoch); raises ``Unavailable`` when the shared store does not answer."""
        remaining = max(expires - int(now.timestamp()), 1)
        self.shared.claim(REVOKED + sid, remaining)

    def check_not_revoked(self, sid: object) -> str:
        """The session id, once it is known not to be signed out (401 otherwise; 503 when the
        shared store does not answer: fail closed)."""
        if not isinstance(sid, str) or not sid:
            raise Unauthenticated(_INVALID)
        if self.shared.exists(REVOKED + sid):
            raise Unauthenticated(SIGNED_OUT)
        return sid

    @staticmethod
    def _header(purpose: str) -> str:
        header = {"alg": "dir", "enc": "A256GCM", "typ": purpose}
        return _b64(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())

    def sign(self, purpose: str, claims: dict[str, Any], expires: datetime) -> str:
        """``claims`` with an expiry, encrypted and authenticated for ``purpose`` (the name is
        kept from the former signed values; nothing of the claims is readable)."""
        data = claims | {"exp": int(expires.timestamp())}
        plaintext = json.dumps(data, ensure_ascii=False, sort_keys=True).encode()
        header = self._header(purpose)
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, plaintext, header.encode("ascii"))
        return f"{header}..{_b64(nonce)}.{_b64(sealed[:-16])}.{_b64(sealed[-16:])}"

    def unsign(
        self, purpose: str, value: str, now: datetime, *, keep_exp: bool = False
    ) -> dict[str, Any]:
        """The claims of a value made by :meth:`sign` for ``purpose``; forged, altered,
        foreign or expired values are refused. ``keep_exp`` leaves the expiry in the claims."""
        parts = value.split(".")
        header = self._header(purpose)
        if len(parts) != 5 or parts[1] or not hmac.compare_digest(parts[0], header):
            raise Unauthenticated(_INVALID)
        try:
            nonce, ciphertext, tag = (_unb64(p) for p in parts[2:])
            plaintext = self._aead.decrypt(nonce, ciphertext + tag, header.encode("ascii"))
            claims = json.loads(plaintext)
            exp = int(claims.pop("exp"))
        except (InvalidTag, binascii.Error, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Unauthenticated(_INVALID) from exc
        if not isinstance(claims, dict) or len(nonce) != _NONCE:
            raise Unauthenticated(_INVALID)
        if exp <= int(now.timestamp()):
            raise Unauthenticated(_EXPIRED)
        if keep_exp:
            claims["exp"] = exp
        return claims

    def seal(self, principal: HolderPrincipal, now: datetime) -> str:
        """The cookie value for a holder who has just signed in."""
        claims = asdict(principal) | {
            "csrf": secrets.token_urlsafe(16),
            "sid": secrets.token_urlsafe(16),
        }
        return self.sign(SESSION, claims, now + self.lifetime)

    def opened(self, value: str, now: datetime) -> OpenSession:
        """The session of a cookie; a forged, altered, expired or signed-out one is refused."""
        claims = self.unsign(SESSION, value, now, keep_exp=True)
        try:
            csrf, sid, expires = str(claims.pop("csrf")), claims.pop("sid"), int(claims.pop("exp"))
            principal = HolderPrincipal(**claims)
        except (ValueError, TypeError, KeyError) as exc:
            raise Unauthenticated(_INVALID) from exc
        return OpenSession(principal, csrf, self.check_not_revoked(sid), expires)

    def open(self, value: str, now: datetime) -> tuple[HolderPrincipal, str]:
        """The principal and its CSRF token (see :meth:`opened`)."""
        opened = self.opened(value, now)
        return opened.principal, opened.csrf

    def set_cookie(self, response: Response, value: str) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(self.lifetime.total_seconds()),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",  # sent on the redirect back from the identity provider
        )

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", secure=self.secure, httponly=True, samesite="lax")


def _authenticate(request: Request) -> tuple[HolderPrincipal, str]:
    services = services_of(request)
    value = request.cookies.get(COOKIE)
    if not value:
        if request.headers.get("authorization"):
            # A department credential is authenticated, but never for a holder's own data.
            raise Forbidden(NOT_FOR_DEPARTMENTS)
        raise Unauthenticated(SIGN_IN_FIRST)
    opened = services.holder_sessions.opened(value, services.clock.now())
    request.state.holder_csrf = opened.csrf
    request.state.holder = opened.principal
    request.state.holder_session = opened
    return opened.principal, opened.csrf


def end_session(request: Request) -> None:
    """Sign-out: the request's session (read by :func:`form_holder`) is revoked for every
    worker until it would have expired."""
    ending: OpenSession | None = getattr(request.state, "holder_session", None)
    if ending is not None:
        services = services_of(request)
        services.holder_sessions.revoke(ending.sid, ending.expires, services.clock.now())


def _check_csrf(presented: str, csrf: str) -> None:
    if not presented or not hmac.compare_digest(presented.encode(), csrf.encode()):
        raise Forbidden("请求缺少有效的 CSRF 令牌 / the request lacks a valid CSRF token")


def current_holder(request: Request) -> HolderPrincipal:
    """FastAPI dependency: the signed-in holder, or 401 (403 for a department's credential).

    A state-changing request must also carry the session's CSRF token in ``X-CSRF-Token``, so
    another site cannot act for the holder; HTML forms use :func:`form_holder` instead.
    """
    principal, csrf = _authenticate(request)
    if request.method in _UNSAFE:
        _check_csrf(request.headers.get("x-csrf-token", ""), csrf)
    return principal


async def form_holder(request: Request) -> HolderPrincipal:
    """FastAPI dependency for a holder page's POST form: the token is the form field ``csrf``
    (or the ``X-CSRF-Token`` header)."""
    principal, csrf = _authenticate(request)
    presented = request.headers.get("x-csrf-token", "")
    if not presented:
        form = await request.form(max_files=0, max_fields=16)
        field = form.get("csrf")
        presented = field if isinstance(field, str) else ""
    _check_csrf(presented, csrf)
    return principal


def optional_holder(request: Request) -> HolderPrincipal | None:
    """For pages that greet a visitor who is not signed in: the holder, or None with the reason
    (expired, not valid) in ``request.state.holder_problem``."""
    request.state.holder_problem = None
    if not request.cookies.get(COOKIE):
        return None
    try:
        principal, _ = _authenticate(request)
    except Unauthenticated as exc:
        request.state.holder_problem = exc.message
        return None
    return principal


def page_context(request: Request, principal: HolderPrincipal, *, nav: str) -> dict[str, Any]:
    """What ``holder_base.html`` needs: the holder's masked name (the header is seen over the
    shoulder), the session's CSRF token for POST forms, and the current navigation entry."""
    is_person = is_person_id_type(principal.id_type)
    return {
        "holder": {
            "masked_name": mask_name(principal.name, is_person),
            "id_type": principal.id_type,
        },
        "csrf": getattr(request.state, "holder_csrf", ""),
        "nav": nav,
    }
