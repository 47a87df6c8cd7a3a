"""The supervisor's watch over objections (错录申诉超期): a department that leaves a holder's
objection open longer than the platform allows gets the alert ``objection_overdue``.

It runs as one of the worker's periodic tasks (``api/cli/worker.py`` ``periodic_tasks``), every
few minutes, and raises at most one alert per department and China day (subject
``<department>:<date>``), acknowledged or not: an office that acknowledged today's alert is not
asked again until tomorrow, and a department cannot silence it, since only answering its
objections does. The limit (``overdue_days``) is the platform's setting, not a department's.
Concurrent runs serialise on the department's row (``FOR UPDATE``) before they look, so two
workers never raise the same day's alert twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.db import transaction
from core.errors import InvalidInput
from licences.objections import overdue
from seals.models import Department
from supervision.alert_records import Alert, Severity, raise_alert

RULE = "objection_overdue"


class ObjectionWatch:
    def __init__(self, *, engine: Engine, audit: AuditLog, clock: Clock, overdue_days: int) -> None:
        if not 1 <= overdue_days <= 365:
            raise InvalidInput(
                f"ELICENCE_OBJECTION_OVERDUE_DAYS 须为1至365 / must be 1 to 365 ({overdue_days})",
                field="objection_overdue_days",
            )
        self._engine = engine
        self._audit = audit
        self._clock = clock
        self.overdue_days = overdue_days

    def scan(self, now: datetime | None = None) -> int:
        """Raise today's alert for each department with objections open too long; returns how
        many alerts it raised."""
        now = now or self._clock.now()
        today = china_today(now).isoformat()
        raised = 0
        with transaction(self._engine) as session:
            for late in overdue(session, now - timedelta(days=self.overdue_days)):
                session.get(Department, late.department_code, with_for_update=True)
                subject = f"{late.department_code}:{today}"
                seen = session.exec(
                    select(col(Alert.id)).where(Alert.rule == RULE, Alert.subject == subject)
                ).first()
                if seen is not None:
                    continue
                raise_alert(
                    session,
                    self._audit,
                    rule=RULE,
                    severity=Severity.WARNING,
                    subject=subject,
                    summary=(
                        f"{late.count} 件错录申诉超过 {self.overdue_days} 天未处理 / "
                        f"{late.count} objections open more than {self.overdue_days} days"
                    ),
                    at=now,
                    department_code=late.department_code,
                    detail={
                        "open": late.count,
                        "oldest": late.oldest.isoformat(),
                        "overdue_days": self.overdue_days,
                    },
                )
                raised += 1
        return raised
