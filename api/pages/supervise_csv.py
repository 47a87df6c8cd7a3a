"""CSV exports for supervisors: UTF-8 with a byte order mark (so Excel opens the Chinese
headers as Chinese), headers in Chinese and English, and every value that a spreadsheet would
read as a formula (one starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)
neutralised with a leading apostrophe (OWASP's CSV injection advice): an audit detail or a
department name is data a department wrote, and must not run in the supervisor's Excel."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi.responses import Response

BOM = "\ufeff"
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> str:
    """A cell's text; numbers as they are, any text that could start a formula quoted."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
    return Response(
        (BOM + out.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
