"""Who is calling and what they may do.

A department's system presents ``Authorization: Bearer`` with either its API key or a
short-lived access token from ``POST /oauth/token``. Either way the client row is read on every
request, so revoking a client takes effect at once. Each route names the scope it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from api.edge.state import services_of
from api.edge.tokens import looks_like_jwt
from core.errors import Forbidden, Unauthenticated
from seals.clients import SUPERVISE

SUPERVISOR_READS_ONLY = (
    "监察凭证只能读取监察接口，不能调用部门接口 / a supervision office's credentials read the "
    "supervision routes only, never the departments' API"
)


@dataclass(frozen=True)
class DepartmentPrincipal:
    department_code: str
    client_id: str
    scopes: tuple[str, ...] = ()

    @property
    def actor(self) -> str:
        return f"department:{self.department_code}/client:{self.client_id}"

    def allows(self, scope: str) -> bool:
        # "admin" stands for every department scope, never for a supervision office's.
        return scope in self.scopes or ("admin" in self.scopes and scope != SUPERVISE)


def _principal(request: Request) -> DepartmentPrincipal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated(
            "需要部门凭证 / department credentials required (Authorization: Bearer)"
        )
    services = services_of(request)
    if looks_like_jwt(token):
        claims = services.tokens.check(token)
        client = services.clients.client(claims.client_id)
        if client is None or client.revoked_at is not None:
            raise Unauthenticated("客户端已吊销 / this client has been revoked")
        scopes = tuple(s for s in claims.scopes if s in client.scopes)
    else:
        client = services.clients.authenticate(token)
        scopes = tuple(client.scopes)
    request.state.client_id = client.id
    return DepartmentPrincipal(client.department_code, client.id, scopes)


def require(scope: str | None) -> Callable[[Request], DepartmentPrincipal]:
    """A dependency that authenticates the caller and checks one scope."""

    def dependency(request: Request) -> DepartmentPrincipal:
        principal = _principal(request)
        if SUPERVISE in principal.scopes and scope != SUPERVISE:
            raise Forbidden(SUPERVISOR_READS_ONLY)
        if scope is not None and not principal.allows(scope):
            raise Forbidden(f"凭证缺少权限范围 {scope} / the credentials lack scope {scope}")
        return principal

    dependency.__name__ = f"require_{(scope or 'any').replace(':', '_')}"
    return dependency


department = require(None)
