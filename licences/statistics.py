"""A department's statistics: counts only, never personal data, each one aggregate query.

* **issued** — licences the department issued, by month (in China) and licence type;
* **verified** — verifications of them (the ``licence.verify`` audit entries), by month;
* **reused** — pulls of them by *another* department under the holder's grant
  (``licences.pulls``), by month. Verification is anonymous — the public verification routes
  record no verifier — so a presentation checked at another department's counter cannot be told
  from one checked anywhere else, and is not counted as reuse.

Every count is a ``GROUP BY`` or ``COUNT`` over a join on the department's licences, so the
answer costs the same number of round trips at a million licences as at ten, and no list of
identifiers is carried from the database into a query. Months are months in China
(``core.clock.CHINA``; China keeps no daylight saving time, so SQLite adds eight hours).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, func
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col, select

from core.audit import AuditEntry
from core.db import reading
from licences.models import Licence, LicenceType
from licences.pulls import LicencePull
from seals.models import Department
from seals.registry import SealRegistry

REUSED_MEANS = (
    "他部门经持证人授权调取本部门证照的次数 / pulls of this department's licences by other "
    "departments under the holder's grant"
)


class ChinaMonth(FunctionElement[str]):
    """``YYYY-MM`` of a stored UTC timestamp, in China."""

    type = String()
    inherit_cache = True


@compiles(ChinaMonth, "sqlite")
def _china_month_sqlite(element: ChinaMonth, compiler: SQLCompiler, **kw: Any) -> str:
    # To the second: SQLite rounds fractions to milliseconds, and 15:59:59.9999 is still January.
    timestamp = compiler.process(element.clauses, **kw)
    return f"strftime('%Y-%m', substr({timestamp}, 1, 19), '+8 hours')"


@compiles(ChinaMonth, "postgresql")
def _china_month_postgresql(element: ChinaMonth, compiler: SQLCompiler, **kw: Any) -> str:
    timestamp = compiler.process(element.clauses, **kw)
    return f"to_char({timestamp} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"


@dataclass
class _Month:
    issued_by_type: dict[str, int] = field(default_factory=dict)
    verified: int = 0
    reused: int = 0


def department_statistics(session: Session, department_code: str) -> dict[str, Any]:
    """Issued, verified and reused counts of ``department_code``'s licences, by month."""
    mine = Licence.issuer_code == department_code
    months: dict[str, _Month] = {}
    issued_month = ChinaMonth(col(Licence.issued_at))
    issued = session.exec(
        select(issued_month, LicenceType.name, func.count())
        .select_from(Licence)
        .join(LicenceType, col(LicenceType.code) == col(Licence.type_code))
        .where(mine)
        .group_by(issued_month, LicenceType.code, LicenceType.name)
    )
    for month, type_name, count in issued:
        by_type = months.setdefault(month, _Month()).issued_by_type
        by_type[type_name] = by_type.get(type_name, 0) + count
    verified_month = ChinaMonth(col(AuditEntry.at))
    verified = session.exec(
        select(verified_month, func.count())
        .select_from(AuditEntry)
        .join(Licence, col(Licence.identifier) == col(AuditEntry.object_id))
        .where(AuditEntry.action == "licence.verify", mine)
        .group_by(verified_month)
    )
    for month, count in verified:
        months.setdefault(month, _Month()).verified = count
    pulled_month = ChinaMonth(col(LicencePull.at))
    reused = session.exec(
        select(pulled_month, func.count())
        .select_from(LicencePull)
        .join(Licence, col(Licence.identifier) == col(LicencePull.identifier))
        .where(mine, LicencePull.department_code != department_code)
        .group_by(pulled_month)
    )
    for month, count in reused:
        months.setdefault(month, _Month()).reused = count
    rows = [
        {
            "month": month,
            "issued": sum(m.issued_by_type.values()),
            "issued_by_type": dict(sorted(m.issued_by_type.items())),
            "verified": m.verified,
            "reused": m.reused,
        }
        for month, m in sorted(months.items())
    ]
    return {
        "department": department_code,
        "months": rows,
        "totals": {
            "issued": sum(r["issued"] for r in rows),
            "verified": sum(r["verified"] for r in rows),
            "reused": sum(r["reused"] for r in rows),
        },
        "reused_means": REUSED_MEANS,
    }


@dataclass(frozen=True)
class DepartmentStatistics:
    """A department (for its name on the page) and its counts (``department_statistics``)."""

    department: Department
    counts: dict[str, Any]


class StatisticsDesk:
    """What the statistics routes call: one reading transaction per answer."""

    def __init__(self, *, engine: Engine, seals: SealRegistry) -> None:
        self._engine = engine
        self._seals = seals

    def of(self, department_code: str) -> DepartmentStatistics:
        """The counts of a registered department (404 for an unknown one)."""
        with reading(self._engine) as session:
            department = self._seals.department(session, department_code)
            return DepartmentStatistics(department, department_statistics(session, department_code))
