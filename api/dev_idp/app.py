"""开发用身份认证，仅供演示 — the development OpenID Connect provider as an ASGI app.

``api.dev_idp.provider`` holds the protocol (codes, tokens, claims); this module is its HTTP
face: discovery and keys, the holder-picking page at ``/authorize``, ``/token`` and
``/userinfo``. Mounted at ``/dev-idp`` in demo mode, or served alone by the tests. Every answer
carries a Content-Security-Policy whose ``form-action`` names only the registered clients'
origins, and token answers are never cached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.dev_idp.provider import (
    DEMO_NOTICE,
    AuthorizeError,
    DevIdentityProvider,
    RedirectError,
    TokenError,
)
from core.bilingual import bilingual
from licences.masking import mask_id

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(_HERE / "templates"))
templates.env.filters["bilingual"] = bilingual  # the English half of a message, lang="en"
_AUTHORIZE_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)


def create_dev_idp_app(provider: DevIdentityProvider) -> FastAPI:
    """The provider as an ASGI app: mounted at ``/dev-idp`` in demo mode, or served alone."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.mount(
        "/static", StaticFiles(directory=str(_HERE.parent / "pages" / "static")), name="static"
    )
    _security_headers(app, provider)
    _metadata_routes(app, provider)
    _authorize_routes(app, provider)
    _token_routes(app, provider)
    return app


def _security_headers(app: FastAPI, provider: DevIdentityProvider) -> None:
    """Forms may post only to this provider and the registered clients' origins."""

    @app.middleware("http")
    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        origins = {_origin(u) for c in provider.clients for u in c.redirect_uris}
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; img-src data:; style-src 'self'; form-action 'self' "
            + " ".join(sorted(origins))
            + "; frame-ancestors 'none'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response


def _metadata_routes(app: FastAPI, provider: DevIdentityProvider) -> None:
    @app.get("/.well-known/openid-configuration")
    def discovery() -> JSONResponse:
        return JSONResponse(provider.metadata(), headers={"Cache-Control": "max-age=60"})

    @app.get("/jwks")
    def jwks() -> JSONResponse:
        return JSONResponse(provider.jwks(), headers={"Cache-Control": "max-age=60"})


def _authorize_routes(app: FastAPI, provider: DevIdentityProvider) -> None:
    @app.get("/authorize")
    def authorize(request: Request) -> Response:
        params = {k: v for k, v in request.query_params.items() if k in _AUTHORIZE_PARAMS}
        answer = _refused(provider, request, params)
        if answer is not None:
            return answer
        return _page(provider, request, params, None, 200)

    @app.post("/authorize")
    async def choose(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=16)
        params = {k: str(form.get(k, "")) for k in _AUTHORIZE_PARAMS if form.get(k)}
        answer = _refused(provider, request, params)
        if answer is not None:
            return answer
        subject = str(form.get("holder", ""))
        if form.get("deny") or provider.holder(subject) is None:
            return _redirect(
                params["redirect_uri"],
                _with_state(
                    provider.issuer,
                    params,
                    error="access_denied",
                    error_description="sign-in cancelled",
                ),
            )
        code = provider.issue_code(params, subject)
        return _redirect(params["redirect_uri"], _with_state(provider.issuer, params, code=code))


def _token_routes(app: FastAPI, provider: DevIdentityProvider) -> None:
    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form(max_files=0, max_fields=16)
        try:
            body = provider.exchange(
                {k: str(v) for k, v in form.items()}, request.headers.get("authorization", "")
            )
        except TokenError as exc:
            return _token_error(exc)
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @app.get("/userinfo")
    def userinfo(request: Request) -> JSONResponse:
        try:
            claims = provider.userinfo(request.headers.get("authorization", ""))
        except TokenError as exc:
            return _token_error(exc)
        return JSONResponse(claims, headers={"Cache-Control": "no-store"})


def _page(
    provider: DevIdentityProvider,
    request: Request,
    params: dict[str, str],
    error: str | None,
    status: int,
) -> Response:
    """The holder-picking page, under the demonstration banner; ID numbers masked."""
    holders = [
        {
            "subject": h["subject"],
            "name": h["name"],
            "kind": "个人 / person" if h["id_type"] == "111" else "法人 / organisation",
            "id_masked": mask_id(h["id"], h["id_type"] == "111"),
        }
        for h in provider.holders
    ]
    context = {
        "notice": DEMO_NOTICE,
        "params": {k: params.get(k, "") for k in _AUTHORIZE_PARAMS},
        "holders": holders,
        "error": error,
        "action": provider.metadata()["authorization_endpoint"],
        "static": f"{urlsplit(provider.issuer).path}/static",
    }
    return templates.TemplateResponse(
        request,
        "dev_idp.html",
        context,
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _refused(
    provider: DevIdentityProvider, request: Request, params: dict[str, str]
) -> Response | None:
    """The answer to an authorisation request that cannot go ahead, else None: a page when the
    client or redirect URI is unknown, a redirect with the error once the URI is trusted."""
    try:
        provider.check_authorize(params)
    except AuthorizeError as exc:
        return _page(provider, request, {}, str(exc), 400)
    except RedirectError as exc:
        return _redirect(
            params["redirect_uri"],
            _with_state(
                provider.issuer, params, error=exc.error, error_description=exc.description
            ),
        )
    return None


def _redirect(uri: str, params: dict[str, str]) -> RedirectResponse:
    joiner = "&" if urlsplit(uri).query else "?"
    return RedirectResponse(f"{uri}{joiner}{urlencode(params)}", status_code=303)


def _token_error(exc: TokenError) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="dev-idp"'
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers=headers,
    )


def _with_state(issuer: str, params: dict[str, str], **values: str) -> dict[str, str]:
    """Response parameters, with ``state`` echoed and the issuer named (RFC 9207)."""
    if params.get("state"):
        values["state"] = params["state"]
    values["iss"] = issuer
    return values


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"
