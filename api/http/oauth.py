"""OAuth2 token endpoint (client credentials, RFC 6749 §4.4)."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from api.edge.state import services_of
from core.errors import InvalidInput, Unauthenticated
from keys.store import KeyUseListener

router = APIRouter()


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        raise Unauthenticated("无效的Basic凭证 / malformed Basic credentials") from None
    return user, password


@router.post("/oauth/token")
def token(
    request: Request,
    grant_type: Annotated[str, Form()],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    """Exchange a client id and secret (the API key) for an access token."""
    if grant_type != "client_credentials":
        raise InvalidInput(
            "仅支持 client_credentials / only grant_type=client_credentials", field="grant_type"
        )
    basic = _basic(request)
    if basic is not None:
        client_id, client_secret = basic
    if not client_id or not client_secret:
        raise Unauthenticated("需要客户端凭证 / client_id and client_secret are required")
    services = services_of(request)
    client = services.clients.authenticate(client_secret)
    if client.id != client_id:
        raise Unauthenticated("客户端凭证不匹配 / client credentials do not match")
    requested = tuple(scope.split()) if scope else tuple(client.scopes)
    if not set(requested) <= set(client.scopes):
        raise InvalidInput(
            "请求的权限范围超出授权 / requested scope exceeds the grant", field="scope"
        )

    def mint(listener: KeyUseListener) -> tuple[str, int]:
        return services.tokens.mint(
            client_id=client.id,
            department_code=client.department_code,
            scopes=requested,
            listener=listener,
        )

    actor = f"department:{client.department_code}/client:{client.id}"
    access, expires_in = services.clients.signed_for(actor, mint)
    return JSONResponse(
        {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": " ".join(requested),
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
