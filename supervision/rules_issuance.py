"""The issuance rules: a department's burst against its own baseline, issuing outside working
hours, and licences sealed just before their seal was suspended or revoked.

Off-hours is decided from the entry alone. The burst counts the department's last hour through
``ix_licence_issuer_issued`` (issuer, issued_at) — a short range — and only when that hour is
past the floor reads the baseline, the 28 days before it, counted at most once per department
every ten minutes (:class:`Baselines`): a quiet department pays one small count per issuance. The seal rule runs on a seal's suspension or revocation, which is rare.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from threading import Lock
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.audit import AuditEntry, AuditLog
from core.clock import china_time
from core.db import as_utc
from core.errors import InvalidInput
from licences.identifiers import LicenceIdentifier
from licences.models import Licence
from seals.models import Seal
from supervision.alert_records import Severity, raise_alert

if TYPE_CHECKING:
    from supervision.alerts import Thresholds

ISSUE = "licence.issue"
SEAL_STOPS = {"seal.suspend": ("暂停", "suspended"), "seal.revoke": ("吊销", "revoked")}
BASELINE_DAYS = 28
HOUR = timedelta(hours=1)
BASELINE_TTL = timedelta(minutes=10)
MAX_LISTED = 50  # identifiers an alert's detail lists


def _issuer(identifier: str) -> str | None:
    try:
        return LicenceIdentifier.parse(identifier).issuer_code
    except InvalidInput:
        return None


def on_issuance(
    session: Session,
    audit: AuditLog,
    thresholds: Thresholds,
    baselines: Baselines,
    entry: AuditEntry,
) -> None:
    if entry.outcome != "ok":
        return
    department = _issuer(entry.object_id)
    if department is None:
        return
    at = as_utc(entry.at)
    if off_hours(at, thresholds):
        local = china_time(at)
        shown = local.strftime("%Y-%m-%d %H:%M")
        raise_alert(
            session,
            audit,
            rule="off_hours_issuance",
            severity=Severity.INFO,
            subject=department,
            summary=(
                f"北京时间 {shown} 非工作时间发证（{entry.object_id}） / a licence was issued"
                f" outside working hours, {shown} China time ({entry.object_id})"
            ),
            at=at,
            department_code=department,
            detail={"last_licence": entry.object_id, "china_time": local.isoformat()},
        )
    _burst(session, audit, thresholds, baselines, department, at)


def off_hours(at: datetime, thresholds: Thresholds) -> bool:
    """Outside [start, end) on a working day, China time; a weekend unless weekends work."""
    local = china_time(at)
    if local.weekday() >= 5 and not thresholds.work_weekends:
        return True
    return not thresholds.work_start_hour <= local.hour < thresholds.work_end_hour


def issued_between(session: Session, department: str, start: datetime, end: datetime) -> int:
    """Licences the department issued in (start, end]: a range of ix_licence_issuer_issued."""
    query = select(func.count()).where(
        Licence.issuer_code == department,
        col(Licence.issued_at) > start,
        col(Licence.issued_at) <= end,
    )
    return int(session.exec(query).one())


class Baselines:
    """Each department's hourly mean over the 28 days before the last hour, kept for
    ``BASELINE_TTL``: the long count (a busy department's 100,000 rows cost ~12 ms on SQLite)
    runs once per department per ten minutes, not with every issuance, and the mean moves by a
    few parts in a thousand in that time. Bounded; per process."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._kept: OrderedDict[str, tuple[datetime, float]] = OrderedDict()
        self._lock = Lock()

    def mean(self, session: Session, department: str, at: datetime) -> float:
        with self._lock:
            kept = self._kept.get(department)
        if kept is not None and timedelta(0) <= at - kept[0] < BASELINE_TTL:
            return kept[1]
        start = at - HOUR - timedelta(days=BASELINE_DAYS)
        mean = issued_between(session, department, start, at - HOUR) / (BASELINE_DAYS * 24)
        with self._lock:
            self._kept[department] = (at, mean)
            self._kept.move_to_end(department)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return mean


def _burst(
    session: Session,
    audit: AuditLog,
    thresholds: Thresholds,
    baselines: Baselines,
    department: str,
    at: datetime,
) -> None:
    last_hour = issued_between(session, department, at - HOUR, at)
    if last_hour <= thresholds.burst_floor:
        return
    mean = baselines.mean(session, department, at)
    if last_hour <= thresholds.burst_factor * mean:
        return
    raise_alert(
        session,
        audit,
        rule="issuance_burst",
        severity=Severity.WARNING,
        subject=department,
        summary=(
            f"近一小时发证 {last_hour} 张，高于近{BASELINE_DAYS}日每小时均值 {mean:.1f} 的"
            f" {thresholds.burst_factor:g} 倍 / {last_hour} licences issued in the last hour,"
            f" above {thresholds.burst_factor:g} x the hourly mean of {mean:.1f} over"
            f" {BASELINE_DAYS} days"
        ),
        at=at,
        department_code=department,
        detail={
            "last_hour": last_hour,
            "hourly_mean": round(mean, 3),
            "floor": thresholds.burst_floor,
        },
    )


def on_seal_stopped(
    session: Session, audit: AuditLog, thresholds: Thresholds, entry: AuditEntry
) -> None:
    if entry.outcome != "ok":
        return
    seal = session.get(Seal, entry.object_id)
    if seal is None:
        return
    at = as_utc(entry.at)
    minutes = thresholds.seal_race_minutes
    rows = session.exec(
        select(Licence.identifier)
        .where(
            Licence.issuer_code == seal.department_code,
            col(Licence.issued_at) > at - timedelta(minutes=minutes),
            col(Licence.issued_at) <= at,
            Licence.seal_code == seal.code,
        )
        .order_by(col(Licence.issued_at).desc(), col(Licence.identifier))
        .limit(MAX_LISTED + 1)
    ).all()
    if not rows:
        return
    listed = list(rows[:MAX_LISTED])
    count = str(len(listed)) + ("+" if len(rows) > MAX_LISTED else "")
    zh, en = SEAL_STOPS[entry.action]
    raise_alert(
        session,
        audit,
        rule="seal_used_before_suspension",
        severity=Severity.CRITICAL,
        subject=seal.code,
        summary=(
            f"印章 {seal.code} {zh}前 {minutes} 分钟内加盖了 {count} 份证照 / {count} licences"
            f" were sealed with seal {seal.code} in the {minutes} minutes before it was {en}"
        ),
        at=at,
        department_code=seal.department_code,
        detail={
            "action": entry.action,
            "minutes": minutes,
            "licences": listed,
            "more": len(rows) > MAX_LISTED,
        },
    )
