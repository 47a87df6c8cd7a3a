"""Statistics for supervisors and the public: counts only, never personal data."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import func
from sqlmodel import Session, col, select

from core.audit import AuditEntry
from core.db import as_utc, reading
from licences.models import Licence, LicenceType

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def department_statistics(session: Session, department_code: str) -> dict[str, Any]:
    types = {t.code: t.name for t in session.exec(select(LicenceType))}
    issued: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    identifiers: set[str] = set()
    for licence in session.exec(select(Licence).where(Licence.issuer_code == department_code)):
        month = as_utc(licence.issued_at).strftime("%Y-%m")
        issued[month][licence.type_code] += 1
        identifiers.add(licence.identifier)
    verified: dict[str, int] = defaultdict(int)
    if identifiers:
        rows = session.exec(
            select(AuditEntry.at, func.count())
            .where(
                AuditEntry.action == "licence.verify", col(AuditEntry.object_id).in_(identifiers)
            )
            .group_by(AuditEntry.at)
        )
        for at, count in rows:
            verified[as_utc(at).strftime("%Y-%m")] += count
    months = sorted(set(issued) | set(verified))
    return {
        "department": department_code,
        "months": [
            {
                "month": month,
                "issued": sum(issued[month].values()),
                "issued_by_type": {
                    types.get(code, code): n for code, n in sorted(issued[month].items())
                },
                "verified": verified[month],
            }
            for month in months
        ],
        "totals": {
            "issued": sum(sum(v.values()) for v in issued.values()),
            "verified": sum(verified.values()),
            "reused": 0,
        },
    }


@router.get("/api/v1/statistics/{department_code}")
def statistics(department_code: str, request: Request) -> dict[str, Any]:
    """Issued and verified counts by month and licence type (aggregates only)."""
    services = request.app.state.services
    with reading(services.engine) as session:
        services.seals.department(session, department_code)
        return department_statistics(session, department_code)


@router.get("/statistics/{department_code}", response_class=HTMLResponse)
def statistics_page(department_code: str, request: Request) -> HTMLResponse:
    services = request.app.state.services
    with reading(services.engine) as session:
        department = services.seals.department(session, department_code)
        stats = department_statistics(session, department_code)
    peak = max(
        [m["issued"] for m in stats["months"]] + [m["verified"] for m in stats["months"]] + [1]
    )
    return templates.TemplateResponse(
        request, "statistics.html", {"department": department, "stats": stats, "peak": peak}
    )
