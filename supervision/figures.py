"""What a supervision office counts (电子监察统计): for each department under its division and
each of the last twelve months in China, how many licences were issued, verified, reused,
revoked, cancelled and suspended.

* **issued** — licences the department issued (``licence.issued_at``);
* **verified** — verifications of its licences (``licence.verify`` audit entries, any outcome:
  a supervisor wants to see the checks of revoked licences too);
* **reused** — its licences put to use by *another* department: pulls under a holder's grant
  (``licence_pull.grant_id``) plus use authorisation codes redeemed (``licence_pull.use_code``);
  both are shown apart, and **grants_given** — grants holders gave other departments over its
  licences (``licence_grant.created_at``) — is its own column, since a grant is a promise of
  reuse and a pull under it would otherwise count twice;
* **revoked**, **cancelled**, **suspended** — the status changes (``licence.revoke`` /
  ``licence.cancel`` / ``licence.suspend`` audit entries with outcome ``ok``);
* **objections_open** — holders' objections (错录申诉, ``licences.objections``) raised in the
  month and still unanswered; **objections_answered** — objections the department answered in
  the month (amended or rejected), so an office sees who leaves holders waiting.

Each figure is one ``GROUP BY`` (month, issuing department) over a join with the department
table filtered by the office's division prefix, so a province office's answer costs the same
seven round trips as a county's, and no list of licence identifiers leaves the database. Months
are months in China (``licences.statistics.ChinaMonth``, SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from core.audit import AuditEntry
from core.clock import CHINA, Clock, china_today
from core.db import reading
from core.errors import Forbidden, NotFound
from licences.grants import LicenceGrant
from licences.models import Licence
from licences.objection_records import LicenceObjection, ObjectionState
from licences.pulls import LicencePull
from licences.statistics import ChinaMonth
from seals.models import Department
from supervision.divisions import covers, prefix

MONTHS = 12
# (key, zh, en) in the order pages, CSV and JSON show them.
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("issued", "签发", "issued"),
    ("verified", "核验", "verified"),
    ("reused", "复用", "reused"),
    ("pulled_under_grant", "授权调取", "pulled under a grant"),
    ("codes_redeemed", "用证码核销", "use codes redeemed"),
    ("grants_given", "授权给予", "grants given"),
    ("revoked", "吊销", "revoked"),
    ("cancelled", "注销", "cancelled"),
    ("suspended", "暂停", "suspended"),
    ("objections_open", "申诉待处理", "objections open"),
    ("objections_answered", "申诉已处理", "objections answered"),
)
KEYS = tuple(key for key, _, _ in MEASURES)
STATUS_ACTIONS = {
    "licence.revoke": "revoked",
    "licence.cancel": "cancelled",
    "licence.suspend": "suspended",
}


@dataclass(frozen=True)
class Office:
    """A supervision office: a department row whose division is its jurisdiction."""

    code: str
    name: str
    division_code: str


@dataclass(frozen=True)
class Cell:
    month: str  # YYYY-MM in China
    department_code: str
    counts: dict[str, int]


@dataclass(frozen=True)
class Figures:
    office: Office
    months: tuple[str, ...]  # oldest first, the current month last
    departments: tuple[tuple[str, str], ...]  # (code, name) under the division, code order
    cells: tuple[Cell, ...]  # only (month, department) pairs with a count

    def by_month(self) -> list[dict[str, Any]]:
        totals = {m: dict.fromkeys(KEYS, 0) for m in self.months}
        for cell in self.cells:
            for key, n in cell.counts.items():
                totals[cell.month][key] += n
        return [{"month": m, **totals[m]} for m in self.months]

    def by_department(self, month: str | None = None) -> list[dict[str, Any]]:
        totals = {code: dict.fromkeys(KEYS, 0) for code, _ in self.departments}
        for cell in self.cells:
            if month is None or cell.month == month:
                for key, n in cell.counts.items():
                    totals[cell.department_code][key] += n
        return [
            {"department_code": code, "department_name": name, **totals[code]}
            for code, name in self.departments
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "office": {
                "code": self.office.code,
                "name": self.office.name,
                "division_code": self.office.division_code,
            },
            "months": list(self.months),
            "measures": [{"key": k, "zh": zh, "en": en} for k, zh, en in MEASURES],
            "by_month": self.by_month(),
            "by_department": self.by_department(),
            "cells": [
                {"month": c.month, "department_code": c.department_code, **c.counts}
                for c in self.cells
            ],
        }


def last_months(today: date, count: int = MONTHS) -> tuple[str, ...]:
    """``count`` months ending with ``today``'s (a date in China), oldest first."""
    index = today.year * 12 + today.month - 1
    return tuple(f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1))


def month_start(month: str) -> datetime:
    """The instant a China month (``YYYY-MM``) begins."""
    year, number = (int(p) for p in month.split("-"))
    return datetime.combine(date(year, number, 1), time(0), tzinfo=CHINA)


def office_of(session: Session, office_code: str) -> Office:
    row = session.get(Department, office_code)
    if row is None:
        raise NotFound(f"监察机构不存在 / no supervision office {office_code}")
    return Office(row.code, row.name, row.division_code)


def check_department(session: Session, office: Office, department_code: str) -> None:
    """403 naming the department when it is outside the office's division (also when it does
    not exist: an office learns nothing about departments beyond its own)."""
    row = session.get(Department, department_code)
    if row is None or not covers(office.division_code, row.division_code):
        raise Forbidden(
            f"部门 {department_code} 不在本监察机构辖区（{office.division_code}）内 / department "
            f"{department_code} is outside this office's division {office.division_code}",
            field="department",
        )


def _issuers(office: Office, department_code: str | None) -> ColumnElement[bool]:
    """The issuing departments counted: one, or every one under the division."""
    if department_code is not None:
        return col(Department.code) == department_code
    start = prefix(office.division_code)
    return col(Department.division_code).startswith(start, autoescape=True)


def _rows(session: Session, query: Any) -> Iterable[tuple[str, str, int]]:
    return session.exec(query).all()  # type: ignore[no-any-return]


def _counts(
    session: Session, office: Office, department_code: str | None, since: datetime
) -> dict[tuple[str, str], dict[str, int]]:
    found: dict[tuple[str, str], dict[str, int]] = {}

    def add(key: str, rows: Iterable[tuple[str, str, int]]) -> None:
        for month, department, n in rows:
            found.setdefault((month, department), {})[key] = n

    issuers = _issuers(office, department_code)
    on_issuer = col(Department.code) == col(Licence.issuer_code)
    issuer = col(Licence.issuer_code)

    month = ChinaMonth(col(Licence.issued_at))
    add(
        "issued",
        _rows(
            session,
            select(month, issuer, func.count())
            .select_from(Licence)
            .join(Department, on_issuer)
            .where(issuers, col(Licence.issued_at) >= since)
            .group_by(month, issuer),
        ),
    )

    month = ChinaMonth(col(AuditEntry.at))
    audited = (
        select(month, issuer, func.count())
        .select_from(AuditEntry)
        .join(Licence, col(Licence.identifier) == col(AuditEntry.object_id))
        .join(Department, on_issuer)
        .where(issuers, col(AuditEntry.at) >= since)
    )
    add(
        "verified",
        _rows(
            session, audited.where(AuditEntry.action == "licence.verify").group_by(month, issuer)
        ),
    )
    for action, rows in _status_rows(session, audited, month, issuer):
        add(STATUS_ACTIONS[action], rows)

    month = ChinaMonth(col(LicencePull.at))
    pulls = (
        select(month, issuer, func.count())
        .select_from(LicencePull)
        .join(Licence, col(Licence.identifier) == col(LicencePull.identifier))
        .join(Department, on_issuer)
        .where(
            issuers,
            col(LicencePull.at) >= since,
            col(LicencePull.department_code) != col(Licence.issuer_code),
        )
        .group_by(month, issuer)
    )
    add("pulled_under_grant", _rows(session, pulls.where(col(LicencePull.grant_id).is_not(None))))
    add("codes_redeemed", _rows(session, pulls.where(col(LicencePull.use_code).is_not(None))))

    month = ChinaMonth(col(LicenceGrant.created_at))
    add(
        "grants_given",
        _rows(
            session,
            select(month, issuer, func.count())
            .select_from(LicenceGrant)
            .join(Licence, col(Licence.identifier) == col(LicenceGrant.identifier))
            .join(Department, on_issuer)
            .where(issuers, col(LicenceGrant.created_at) >= since)
            .group_by(month, issuer),
        ),
    )
    _objection_counts(session, issuers, since, add)
    for counts in found.values():
        counts["reused"] = counts.get("pulled_under_grant", 0) + counts.get("codes_redeemed", 0)
    return found


def _objection_counts(
    session: Session,
    issuers: ColumnElement[bool],
    since: datetime,
    add: Any,
) -> None:
    """Objections still open by the month they were raised, and answered by the month they
    were answered; ``issuer_code`` is on the objection row, so no join with the licence."""
    issuer = col(LicenceObjection.issuer_code)
    on_issuer = col(Department.code) == issuer
    month = ChinaMonth(col(LicenceObjection.raised_at))
    add(
        "objections_open",
        _rows(
            session,
            select(month, issuer, func.count())
            .select_from(LicenceObjection)
            .join(Department, on_issuer)
            .where(
                issuers,
                LicenceObjection.state == ObjectionState.OPEN.value,
                col(LicenceObjection.raised_at) >= since,
            )
            .group_by(month, issuer),
        ),
    )
    month = ChinaMonth(col(LicenceObjection.answered_at))
    add(
        "objections_answered",
        _rows(
            session,
            select(month, issuer, func.count())
            .select_from(LicenceObjection)
            .join(Department, on_issuer)
            .where(issuers, col(LicenceObjection.answered_at) >= since)
            .group_by(month, issuer),
        ),
    )


def _status_rows(
    session: Session, audited: Any, month: Any, issuer: Any
) -> Iterable[tuple[str, list[tuple[str, str, int]]]]:
    """The three status changes in one GROUP BY (month, department, action)."""
    query = (
        audited.add_columns(col(AuditEntry.action))
        .where(col(AuditEntry.action).in_(sorted(STATUS_ACTIONS)), AuditEntry.outcome == "ok")
        .group_by(month, issuer, col(AuditEntry.action))
    )
    by_action: dict[str, list[tuple[str, str, int]]] = {a: [] for a in STATUS_ACTIONS}
    for m, department, n, action in session.exec(query).all():
        by_action[action].append((m, department, n))
    return by_action.items()


def office_figures(
    session: Session, office: Office, today: date, department_code: str | None = None
) -> Figures:
    """The figures of the office's departments (or of one of them, which must be under its
    division) for the twelve months ending with ``today``'s (a date in China)."""
    if department_code is not None:
        check_department(session, office, department_code)
    months = last_months(today)
    found = _counts(session, office, department_code, month_start(months[0]))
    query = select(Department.code, Department.name).where(
        _issuers(office, department_code), col(Department.code) != office.code
    )
    departments = tuple((c, n) for c, n in session.exec(query.order_by(col(Department.code))))
    wanted = set(months)
    cells = tuple(
        Cell(month, department, {key: counts.get(key, 0) for key in KEYS})
        for (month, department), counts in sorted(found.items())
        if month in wanted
    )
    return Figures(office, months, departments, cells)


class FiguresDesk:
    """What the supervision routes call: one reading transaction per answer."""

    def __init__(self, *, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def of(self, office_code: str, department_code: str | None = None) -> Figures:
        with reading(self._engine) as session:
            office = office_of(session, office_code)
            today = china_today(self._clock.now())
            return office_figures(session, office, today, department_code)
