"""The signed-in holder (持证人), carried in a short-lived session cookie.

A holder proves who they are once, at the unified identity platform (OpenID Connect, see
``api/oidc.py``); the service then keeps only what it needs to find their licences — ID type,
ID number, name, and the identity provider's subject — in an HMAC-signed cookie. Nothing about
the holder is stored server-side for the session, so any worker can serve any request. The key
lives in ``<data-dir>/secrets/holder-session-key`` (owner-only), so restarting keeps sessions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import Request

from core.errors import Forbidden, Unauthenticated, Unavailable

COOKIE = "elicence_holder"
LIFETIME = timedelta(minutes=30)
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


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
    """Seals and opens holder session cookies."""

    def __init__(self, key: bytes, *, secure: bool, lifetime: timedelta = LIFETIME) -> None:
        self._key = key
        self.secure = secure
        self.lifetime = lifetime

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def seal(self, principal: HolderPrincipal, now: datetime) -> str:
        """The cookie value for a holder who has just signed in."""
        claims = asdict(principal) | {
            "exp": int((now + self.lifetime).timestamp()),
            "csrf": secrets.token_urlsafe(16),
        }
        body = _b64(json.dumps(claims, ensure_ascii=False, sort_keys=True).encode())
        return f"{body}.{self._mac(body)}"

    def open(self, value: str, now: datetime) -> tuple[HolderPrincipal, str]:
        """The principal and its CSRF token; a forged, altered or expired cookie is refused."""
        body, _, mac = value.partition(".")
        if not body or not hmac.compare_digest(mac, self._mac(body)):
            raise Unauthenticated("登录状态无效，请重新登录 / the session is not valid; sign in again")
        try:
            claims = json.loads(_unb64(body))
            exp, csrf = int(claims.pop("exp")), str(claims.pop("csrf"))
            principal = HolderPrincipal(**claims)
        except (ValueError, TypeError, KeyError) as exc:
            raise Unauthenticated(
                "登录状态无效，请重新登录 / the session is not valid; sign in again"
            ) from exc
        if exp <= int(now.timestamp()):
            raise Unauthenticated("登录已过期，请重新登录 / the session has expired; sign in again")
        return principal, csrf


def current_holder(request: Request) -> HolderPrincipal:
    """FastAPI dependency: the signed-in holder, or 401.

    A state-changing request must also carry the session's CSRF token in ``X-CSRF-Token`` (or a
    ``csrf`` form field, checked by the route), so another site cannot act for the holder.
    """
    services = request.app.state.services
    value = request.cookies.get(COOKIE)
    if not value:
        raise Unauthenticated("请先登录 / sign in first (统一身份认证 / unified identity platform)")
    principal: HolderPrincipal
    principal, csrf = services.holder_sessions.open(value, services.clock.now())
    request.state.holder_csrf = csrf
    if request.method in _UNSAFE:
        presented = request.headers.get("x-csrf-token", "")
        if not presented or not hmac.compare_digest(presented, csrf):
            raise Forbidden("请求缺少有效的 CSRF 令牌 / the request lacks a valid CSRF token")
    return principal
