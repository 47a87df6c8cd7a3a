"""Error kinds mapped to HTTP once, as RFC 9457 problem+json; causes stay in the logs."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import ElicenceError, ErrorKind

log = logging.getLogger("elicence.api")

STATUS = {
    ErrorKind.INVALID: 422,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.UNAVAILABLE: 503,
}
TITLES = {
    401: "未认证 / Unauthenticated",
    403: "无权操作 / Forbidden",
    404: "未找到 / Not found",
    405: "方法不允许 / Method not allowed",
    409: "状态冲突 / Conflict",
    413: "内容过大 / Content too large",
    415: "不支持的媒体类型 / Unsupported media type",
    422: "请求无效 / Invalid request",
    429: "请求过多 / Too many requests",
    500: "服务器内部错误 / Internal server error",
    503: "服务暂不可用 / Service unavailable",
}


def problem(status: int, detail: str, request: Request, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://elicence.example/problems/{status}",
        "title": TITLES.get(status, "错误 / Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
    }
    # Extension members never replace the standard ones.
    body.update({k: v for k, v in extra.items() if v is not None and k not in body})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ElicenceError)
    async def _domain(request: Request, exc: ElicenceError) -> JSONResponse:
        if exc.cause:
            log.warning(
                "request %s: %s (%s)",
                getattr(request.state, "request_id", "-"),
                exc.kind.value,
                exc.cause,
            )
        return problem(STATUS[exc.kind], exc.message, request, field=exc.field, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())[1:]) or None,
                "message": e.get("msg"),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": None, "message": "invalid"}
        return problem(
            422,
            f"请求无效 / {first['field']}: {first['message']}",
            request,
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s failed", getattr(request.state, "request_id", "-"))
        return problem(
            500,
            "服务器内部错误，请凭请求编号联系运维 / internal error; quote the request id",
            request,
        )


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "field": {"type": ["string", "null"]},
    },
    "required": ["type", "title", "status", "detail"],
}
_DOCUMENTED = {
    "401": "未认证 / missing or invalid credentials",
    "403": "无权操作 / forbidden",
    "404": "未找到 / not found",
    "409": "状态冲突 / conflict",
    "413": "内容过大 / too large",
    "422": "请求无效 / invalid request",
    "429": "请求过多 / rate limited",
    "503": "服务暂不可用 / a dependency is unavailable",
}


def document_problems(app: FastAPI) -> None:
    """Declare every error answer as application/problem+json in the OpenAPI document, so the
    document says what the service really sends (FastAPI's default 422 says plain JSON)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                # A page answers a clerk's mistake with a page, not with JSON.
                is_page = "text/html" in responses.get("200", {}).get("content", {})
                for status, description in _DOCUMENTED.items():
                    content: dict[str, Any] = {"application/problem+json": {"schema": problem_ref}}
                    if is_page:
                        content["text/html"] = {}
                    responses[status] = {"description": description, "content": content}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
