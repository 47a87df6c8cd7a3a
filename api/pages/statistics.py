"""Statistics for supervisors and the public: counts only, never personal data
(``licences.statistics``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.edge.state import services_of
from core.bilingual import bilingual

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["bilingual"] = bilingual  # the English half of a message, lang="en"


@router.get("/api/v1/statistics/{department_code}")
def statistics(department_code: str, request: Request) -> dict[str, Any]:
    """Issued, verified and reused counts by month (in China) and licence type (aggregates
    only); ``reused`` counts pulls of the department's licences by other departments under the
    holder's grant (``reused_means`` says so in words)."""
    return services_of(request).statistics.of(department_code).counts


@router.get("/statistics/{department_code}", response_class=HTMLResponse)
def statistics_page(department_code: str, request: Request) -> HTMLResponse:
    found = services_of(request).statistics.of(department_code)
    stats = found.counts
    peak = max(
        [m["issued"] for m in stats["months"]] + [m["verified"] for m in stats["months"]] + [1]
    )
    return templates.TemplateResponse(
        request, "statistics.html", {"department": found.department, "stats": stats, "peak": peak}
    )
