"""Converting a department's existing licences over HTTP (存量证照转换):
``POST /api/v1/licences:convert`` with an NDJSON (``application/x-ndjson``) or CSV
(``text/csv``) body of records from its earlier system (``docs/legacy-conversion.md``).

The caller is the department converting its own licences, with ``licences:issue``; each row is
converted, found unchanged, found in conflict or refused on its own, and the answer is one
report per row with the counts. The body is bounded by the body limits table (the upload limit)
and by ``MAX_ROWS`` rows, so one request seals at most as many pages as a batch issuance.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from api.edge.auth import DepartmentPrincipal, require
from api.edge.state import services_of
from core.errors import InvalidInput, TooLarge
from licences import legacy

router = APIRouter(prefix="/api/v1", tags=["exchange"])
Issuer = Annotated[DepartmentPrincipal, Depends(require("licences:issue"))]
MAX_ROWS = 1000
CSV_TYPES = ("text/csv",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/ndjson")


def _is_csv(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media in CSV_TYPES:
        return True
    if media in NDJSON_TYPES:
        return False
    raise InvalidInput(
        f"请求体须为 NDJSON（application/x-ndjson）或 CSV（text/csv），不是 {media or '未声明'} / "
        f"the body must be NDJSON (application/x-ndjson) or CSV (text/csv), not {media or 'none'}",
        field="content-type",
    )


@router.post("/licences:convert")
async def convert(request: Request, principal: Issuer) -> dict[str, Any]:
    """转换本部门存量证照：请求体为 NDJSON（application/x-ndjson，每行一条原系统记录）或 CSV
    （text/csv），逐行报告 / convert this department's licences from its earlier system: the
    body is NDJSON or CSV (docs/legacy-conversion.md); one report per row (converted,
    unchanged, conflict, refused).

    The body is read raw (the edge has bounded it), so the schema declares none."""
    csv_format = _is_csv(request)
    body = await request.body()
    return await run_in_threadpool(_convert, request, principal, body, csv_format)


def _convert(
    request: Request, principal: DepartmentPrincipal, body: bytes, csv_format: bool
) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("请求体须为 UTF-8 / the body must be UTF-8", field="body") from None
    desk = services_of(request).legacy
    rows = list(legacy.read(text, csv_format=csv_format, today=desk.today()))
    if not rows:
        raise InvalidInput("没有记录 / the body has no records", field="body")
    if len(rows) > MAX_ROWS:
        raise TooLarge(
            f"每次最多 {MAX_ROWS} 行，实为 {len(rows)} 行 / at most {MAX_ROWS} rows a request, "
            f"not {len(rows)}; use the CLI for a whole file",
            field="body",
        )
    reports = list(
        desk.convert_all(
            rows,
            department_code=principal.department_code,
            actor=principal.actor,
            request_id=request.state.request_id,
        )
    )
    return {"summary": legacy.tally(reports), "rows": [r.as_json() for r in reports]}
