"""What a supervision office does with alerts: reads those of the departments under its
division (and those of no department, which every office sees), and acknowledges one with a
comment. One transaction per call; views are built inside it.

The office is the caller's own department (its credentials'), never a parameter a caller can
point elsewhere: an alert outside the office's division is answered as absent (404), so an
office learns nothing of another division's alerts. Acknowledging is a conditional update
(``acknowledged_at IS NULL``), so two supervisors acknowledging at once get one 200 and one 409.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import as_utc, reading, transaction
from core.errors import Conflict, InvalidInput, NotFound
from seals.models import Department
from supervision.alert_records import ACKNOWLEDGE, Alert
from supervision.alerts import RULES
from supervision.divisions import prefix
from supervision.sources import PREFIX as SOURCE_PREFIX
from supervision.sources import shortened

MAX_LIMIT = 200
MAX_COMMENT = 1024
NOT_FOUND = "没有该预警 / no such alert"


@dataclass(frozen=True)
class AlertView:
    """One alert as a supervisor's page or the JSON API shows it."""

    id: str
    rule: str
    rule_name_zh: str
    rule_name_en: str
    severity: str
    department_code: str | None
    department_name: str | None
    subject: str  # a licence identifier, a seal code, a department code or a keyed source
    subject_shown: str  # the keyed source shortened; otherwise the subject itself
    summary: str
    raised_at: datetime
    last_seen_at: datetime
    occurrences: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    comment: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def stamp(value: datetime | None) -> str | None:
            return value.isoformat().replace("+00:00", "Z") if value is not None else None

        return {
            "id": self.id,
            "rule": self.rule,
            "rule_name": {"zh": self.rule_name_zh, "en": self.rule_name_en},
            "severity": self.severity,
            "department": (
                {"code": self.department_code, "name": self.department_name}
                if self.department_code is not None
                else None
            ),
            "subject": self.subject,
            "subject_shown": self.subject_shown,
            "summary": self.summary,
            "raised_at": stamp(self.raised_at),
            "last_seen_at": stamp(self.last_seen_at),
            "occurrences": self.occurrences,
            "acknowledged_at": stamp(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "comment": self.comment,
            "detail": self.detail,
        }


def _view(alert: Alert, department_name: str | None) -> AlertView:
    rule = RULES.get(alert.rule)
    subject = alert.subject
    return AlertView(
        id=alert.id,
        rule=alert.rule,
        rule_name_zh=rule.name_zh if rule else alert.rule,
        rule_name_en=rule.name_en if rule else alert.rule,
        severity=alert.severity,
        department_code=alert.department_code,
        department_name=department_name,
        subject=subject,
        subject_shown=shortened(subject) if subject.startswith(SOURCE_PREFIX) else subject,
        summary=alert.summary,
        raised_at=as_utc(alert.raised_at),
        last_seen_at=as_utc(alert.last_seen_at),
        occurrences=alert.occurrences,
        acknowledged_at=as_utc(alert.acknowledged_at) if alert.acknowledged_at else None,
        acknowledged_by=alert.acknowledged_by,
        comment=alert.comment,
        detail=dict(alert.detail or {}),
    )


def check_comment(comment: str) -> str:
    text = comment.strip()
    if not 1 <= len(text) <= MAX_COMMENT:
        raise InvalidInput(
            f"处理意见须为1至{MAX_COMMENT}个字符 / the comment must hold 1 to {MAX_COMMENT}"
            " characters",
            field="comment",
        )
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):  # also bidi overrides
        raise InvalidInput(
            "处理意见含控制字符 / the comment contains control characters", field="comment"
        )
    return text


class AlertDesk:
    def __init__(self, *, engine: Engine, audit: AuditLog, clock: Clock) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock

    def alerts_for(
        self,
        office_department_code: str,
        *,
        state: Literal["open", "all"] = "open",
        rule: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[AlertView]:
        """The office's alerts, newest first; ``before`` an alert id from the previous page."""
        if state not in ("open", "all"):
            raise InvalidInput("state 须为 open 或 all / state is open or all", field="state")
        if rule is not None and rule not in RULES:
            raise InvalidInput(
                f"未知的预警规则 / unknown rule {rule[:48]!r}; known: {', '.join(RULES)}",
                field="rule",
            )
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(
                f"limit 须在1至{MAX_LIMIT}之间 / limit is 1..{MAX_LIMIT}", field="limit"
            )
        with reading(self._engine) as session:
            start = self._office_prefix(session, office_department_code)
            query = (
                select(Alert, Department.name)
                .join(Department, col(Alert.department_code) == Department.code, isouter=True)
                .where(self._covered(start))
            )
            if state == "open":
                query = query.where(col(Alert.acknowledged_at).is_(None))
            if rule is not None:
                query = query.where(Alert.rule == rule)
            if before is not None:
                cursor = session.exec(  # only an alert the office sees: nothing to probe
                    select(Alert.raised_at)
                    .join(Department, col(Alert.department_code) == Department.code, isouter=True)
                    .where(Alert.id == before[:20], self._covered(start))
                ).first()
                if cursor is None:
                    raise InvalidInput(
                        "before 不是有效的预警编号 / before names no alert", field="before"
                    )
                query = query.where(
                    or_(
                        col(Alert.raised_at) < cursor,
                        and_(col(Alert.raised_at) == cursor, col(Alert.id) < before),
                    )
                )
            rows = session.exec(
                query.order_by(col(Alert.raised_at).desc(), col(Alert.id).desc()).limit(limit)
            ).all()
            return [_view(alert, name) for alert, name in rows]

    def acknowledge(
        self, office_department_code: str, alert_id: str, comment: str, actor: str
    ) -> AlertView:
        """Closes an open alert with the supervisor's comment (audited ``alert.acknowledge``)."""
        text = check_comment(comment)
        with transaction(self._engine) as session:
            start = self._office_prefix(session, office_department_code)
            found = session.exec(
                select(Alert, Department.name)
                .join(Department, col(Alert.department_code) == Department.code, isouter=True)
                .where(Alert.id == alert_id[:20], self._covered(start))
            ).first()
            if found is None:
                raise NotFound(NOT_FOUND)
            alert, name = found
            now = self._clock.now()
            changed = session.connection().execute(
                update(Alert)
                .where(col(Alert.id) == alert.id, col(Alert.acknowledged_at).is_(None))
                .values(acknowledged_at=now, acknowledged_by=actor[:128], comment=text)
            )
            if changed.rowcount != 1:
                raise Conflict(
                    "该预警已处理 / the alert was already acknowledged",
                    extra={"acknowledged_at": as_utc(alert.acknowledged_at).isoformat()}
                    if alert.acknowledged_at
                    else None,
                )
            self._audit.append(
                session,
                actor=actor,
                action=ACKNOWLEDGE,
                object_type="alert",
                object_id=alert.id,
                detail={
                    "rule": alert.rule,
                    "subject": alert.subject,
                    "department": alert.department_code,
                    "office": office_department_code,
                    "comment_sha256": hashlib.sha256(text.encode()).hexdigest(),
                },
            )
            session.refresh(alert)
            return _view(alert, name)

    @staticmethod
    def _office_prefix(session: Session, office_department_code: str) -> str:
        office = session.get(Department, office_department_code)
        if office is None:
            raise NotFound("没有该监察机构 / no such supervision office")
        return prefix(office.division_code)

    @staticmethod
    def _covered(start: str) -> Any:
        """Alerts of departments under the division, and alerts of no department."""
        if not start:
            return True
        return or_(
            col(Alert.department_code).is_(None),
            col(Department.division_code).startswith(start, autoescape=True),
        )
