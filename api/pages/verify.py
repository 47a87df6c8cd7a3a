"""Public verification: the JSON API, the page a phone opens from the QR code, the upload page."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.edge import code_desk
from api.edge.state import services_of
from api.pages import page_modes
from core.bilingual import bilingual
from core.errors import ElicenceError, InvalidInput, TooLarge
from verify.log import METHODS
from verify.report import Indication, Report

router = APIRouter()
router.include_router(page_modes.router)  # /text-size: the large-text switch of every page
templates = Jinja2Templates(
    directory=str(Path(__file__).parent / "templates"), context_processors=[page_modes.page_modes]
)
PUBLIC = "public"
BEIJING = ZoneInfo("Asia/Shanghai")


def beijing(value: datetime | str | None) -> str:
    """A time as a counter clerk reads it: Beijing time, to the second."""
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


templates.env.filters["beijing"] = beijing
templates.env.filters["bilingual"] = bilingual

STATUS_STYLE = {
    Indication.PASSED: ("ok", "有效", "Valid"),
    Indication.FAILED: ("bad", "无效", "Not valid"),
    Indication.INDETERMINATE: ("warn", "无法确认", "Cannot be confirmed"),
}


async def _read_upload(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(
            f"文件超过 {limit // (1024 * 1024)} MB / file larger than {limit} bytes", field="file"
        )
    if not data:
        raise InvalidInput("文件为空 / the file is empty", field="file")
    return data


def source_of(request: Request) -> str | None:
    """The keyed source of the request's client address (``supervision.sources``): recorded with
    the verification for the repeated-failure alerts; the address itself is never kept."""
    client = request.scope.get("client")
    return services_of(request).sources.source_of(client[0] if client else None)


@router.post("/api/v1/verify")
async def verify_api(request: Request) -> JSONResponse:
    """Multipart upload (field ``file``) of a PDF or an OFD (told apart by content), or JSON
    ``{"qr": "..."}``."""
    services = services_of(request)
    content_type = request.headers.get("content-type", "")
    rid = request.state.request_id
    if content_type.startswith("multipart/form-data"):
        form = await request.form(
            max_files=1, max_fields=2, max_part_size=services.settings.max_upload_bytes
        )
        upload = form.get("file")
        if not isinstance(upload, UploadFile):  # fastapi's UploadFile is a subclass
            raise InvalidInput("缺少文件字段 file / missing multipart field 'file'", field="file")
        data = await _read_upload(upload, services.verification.max_bytes)
        report = await run_in_threadpool(
            services.verification.verify_pdf,
            data,
            channel="api-upload",
            actor=PUBLIC,
            request_id=rid,
            source=source_of(request),
        )
    elif content_type.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise InvalidInput("请求体不是有效的JSON / body is not valid JSON") from None
        qr = body.get("qr") if isinstance(body, dict) else None
        if not isinstance(qr, str) or not qr.strip() or len(qr) > 2048:
            raise InvalidInput("须提供 qr 字段 / field 'qr' (string) is required", field="qr")
        report = await code_desk.verify_code(
            request, qr, channel="api-qr", actor=PUBLIC, source=source_of(request)
        )
    else:
        raise InvalidInput(
            '请上传PDF或OFD（multipart 字段 file）或提交 JSON {"qr": ...} / send multipart \'file\' or JSON {"qr"}',
            field="content-type",
        )
    return JSONResponse(report.to_json())


def _is_kiosk(value: object) -> bool:
    return value == "1"


def _page(
    request: Request,
    report: Report | None,
    status_code: int = 200,
    error: str | None = None,
    *,
    kiosk: bool = False,
    scanned: str | None = None,
) -> HTMLResponse:
    """The page. Only ``/verify`` without a result focuses the scanner field (a phone opening a
    licence's QR must land on the verdict, not scroll down to a form); the kiosk always does, and
    prints its result with the licence's own verification URL as a QR code."""
    context: dict[str, Any] = {
        "report": report,
        "error": error,
        "kiosk": kiosk,
        "autofocus": kiosk or (report is None and error is None),
    }
    if kiosk:
        settings = services_of(request).settings
        context["reset_seconds"] = settings.kiosk_reset_seconds
        if report is not None and report.licence is not None:
            context["kiosk_qr"] = page_modes.kiosk_qr(settings.public_base_url, scanned)
    if report is not None:
        context["style"], context["status_zh"], context["status_en"] = STATUS_STYLE[
            report.indication
        ]
        context["method"] = METHODS.get(str(report.extra.get("method", "")))
        context["presentation"] = report.extra.get("presentation")
    response = templates.TemplateResponse(request, "verify.html", context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"  # a result is true at one moment only
    return response


PAGE_OR_REPORT = {
    200: {
        "description": "核验页面，或 Accept: application/json 时的核验报告 / the page, or the report as JSON",
        "content": {"text/html": {}, "application/json": {}},
    }
}


@router.get("/v/{code}", response_model=None, responses=PAGE_OR_REPORT)  # type: ignore[arg-type]
@router.get("/V/{code}", response_model=None, include_in_schema=False)
async def verify_page(code: str, request: Request) -> Response:
    report = await code_desk.verify_code(
        request, code[:2048], channel="qr-page", actor=PUBLIC, source=source_of(request)
    )
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(report.to_json())
    return _page(request, report)


@router.get("/verify", response_class=HTMLResponse)
def upload_page(request: Request, kiosk: str | None = None) -> HTMLResponse:
    """The counter's page; ``?kiosk=1`` is the self-service terminal (自助终端)."""
    return _page(request, None, kiosk=_is_kiosk(kiosk))


@router.post("/verify", response_class=HTMLResponse)
async def upload_form(request: Request) -> HTMLResponse:
    """The clerk's form: a PDF or OFD upload, or the text a USB QR scanner typed (the whole URL, then
    Enter). A mistake is shown on the page, in words, not as a JSON problem."""
    kiosk = _is_kiosk(request.query_params.get("kiosk"))
    try:
        return await _upload_form(request, kiosk)
    except ElicenceError as exc:
        if exc.kind.value not in ("invalid", "too-large"):
            raise
        status = 413 if exc.kind.value == "too-large" else 422
        return _page(request, None, status, exc.message, kiosk=kiosk)


async def _upload_form(request: Request, kiosk: bool) -> HTMLResponse:
    services = services_of(request)
    form = await request.form(
        max_files=1, max_fields=3, max_part_size=services.settings.max_upload_bytes
    )
    upload = form.get("file")
    rid = request.state.request_id
    if isinstance(upload, UploadFile) and upload.filename:
        data = await _read_upload(upload, services.verification.max_bytes)
        report = await run_in_threadpool(
            services.verification.verify_pdf,
            data,
            channel="page-upload",
            actor=PUBLIC,
            request_id=rid,
            source=source_of(request),
        )
    else:
        qr = form.get("qr")
        if not isinstance(qr, str) or not qr.strip():
            raise InvalidInput("请上传文件或扫描二维码 / upload a file or scan a code", field="qr")
        report = await code_desk.verify_code(
            request,
            qr[:2048],
            channel="kiosk-scan" if kiosk else "page-scan",
            actor=PUBLIC,
            source=source_of(request),
        )
        return _page(request, report, kiosk=kiosk, scanned=qr[:2048])
    return _page(request, report, kiosk=kiosk)
