"""Alerts (预警) as stored: raised by a rule in the transaction of what triggered it, shown to
the supervision offices over the department concerned, acknowledged with a comment.

An alert stays one row while it is open: the same rule firing again for the same subject counts
up (``occurrences``, ``last_seen_at``) instead of filling the supervisor's queue, so a burst of
forged verifications is one alert that says how many. Once acknowledged, the next firing opens a
new alert. Raising writes the row, an ``alert.raise`` audit entry and an ``alert.raised`` event
together; nothing a department does deletes or closes one (only a supervisor acknowledges).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, bindparam
from sqlmodel import Field, Session, SQLModel

from core.audit import AuditLog
from supervision.outbox import emit

RAISE = "alert.raise"
ACKNOWLEDGE = "alert.acknowledge"
RAISED_EVENT = "alert.raised"
RULE_ACTOR = "system:alerts"
SUBJECT_LENGTH = 128  # what an alert's subject keeps; the open alert is found by that much


class Severity(str, Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(SQLModel, table=True):
    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_open_subject", "rule", "subject", "acknowledged_at"),)

    id: str = Field(primary_key=True, max_length=20)
    rule: str = Field(max_length=48, index=True)
    severity: str = Field(max_length=16)
    department_code: str | None = Field(default=None, max_length=18, index=True)
    subject: str = Field(max_length=SUBJECT_LENGTH)  # a licence identifier, a seal code, a source
    summary: str = Field(max_length=512)  # zh-CN first, English alongside
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    raised_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    occurrences: int = 1
    acknowledged_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    acknowledged_by: str | None = Field(default=None, max_length=128)
    comment: str | None = Field(default=None, max_length=1024)


_ALERT = Alert.__table__  # type: ignore[attr-defined]


def _count_up_statement(with_detail: bool) -> Any:
    values: dict[str, Any] = {
        "occurrences": _ALERT.c.occurrences + 1,
        "last_seen_at": bindparam("b_at"),
    }
    if with_detail:
        values["detail"] = bindparam("b_detail", type_=JSON)
    return (
        _ALERT.update()
        .where(
            _ALERT.c.rule == bindparam("b_rule"),
            _ALERT.c.subject == bindparam("b_subject"),
            _ALERT.c.acknowledged_at.is_(None),
        )
        .values(values)
        .returning(_ALERT.c.id)
    )


# Built once: a department in a burst counts up with every issuance, and building the statement
# cost as much as running it.
_COUNT_UP = {with_detail: _count_up_statement(with_detail) for with_detail in (False, True)}


def count_up(
    session: Session, rule: str, subject: str, at: datetime, detail: dict[str, Any] | None
) -> str | None:
    """Counts up the open alert of ``rule`` for ``subject`` (as stored: ``SUBJECT_LENGTH``
    characters at most) in one UPDATE; its id, or None when none is open. The detail becomes
    this firing's (a rule gives the same keys every time it fires, so this is the latest
    figures); without one it is left as it is. A department in a
    burst counts up with every issuance, so this is one statement, not a read and a write, and
    a Core one: the ORM's UPDATE, which looks for the row among the session's objects, took
    twice as long, and no rule's transaction holds an alert as an object."""
    params: dict[str, Any] = {"b_rule": rule, "b_subject": subject, "b_at": at}
    if detail is not None:
        params["b_detail"] = detail
    counted = session.connection().execute(_COUNT_UP[detail is not None], params).first()
    return None if counted is None else str(counted[0])


def raise_alert(
    session: Session,
    audit: AuditLog,
    *,
    rule: str,
    severity: Severity,
    subject: str,
    summary: str,
    at: datetime,
    department_code: str | None,
    detail: dict[str, Any] | None = None,
) -> str:
    """Raises (or counts up) the open alert of ``rule`` for ``subject``, in ``session``; the
    alert's id."""
    subject = subject[:SUBJECT_LENGTH]
    counted = count_up(session, rule, subject, at, detail)
    if counted is not None:
        return counted
    alert = Alert(
        id="alt_" + secrets.token_hex(8),
        rule=rule,
        severity=severity.value,
        department_code=department_code,
        subject=subject,
        summary=summary[:512],
        detail=detail or {},
        raised_at=at,
        last_seen_at=at,
    )
    session.add(alert)
    session.flush()
    entry = audit.append(
        session,
        actor=RULE_ACTOR,
        action=RAISE,
        object_type="alert",
        object_id=alert.id,
        detail={"rule": rule, "subject": alert.subject, "department": department_code},
    )
    emit(
        session,
        kind=RAISED_EVENT,
        at=at,
        data={
            "alert": {
                "id": alert.id,
                "rule": rule,
                "severity": severity.value,
                "department_code": department_code,
                "subject": alert.subject,
                "summary": alert.summary,
            }
        },
        department_code=department_code,
        audit_seq=entry.seq,
    )
    return alert.id
