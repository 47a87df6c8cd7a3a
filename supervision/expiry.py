"""The daily expiry scan (到期提醒, 逾期未换证告知): what the calendar does to licences, made into
events and audit entries, because a licence's ``expired`` status is computed and no action of
anyone marks the day.

``ExpiryScan.scan(now)`` writes, each once however often it runs and however many processes run
it at the same moment:

* ``licence.expired`` (audit ``licence.expire``, actor ``system:expiry``) for every licence
  still ``valid`` as stored whose last day is before today's China date: the licence's issuer
  and every subscriber learn of it on the day. A licence renewed, revoked or cancelled before
  that day is no longer ``valid`` as stored and gets none.
* ``licence.expiring`` (audit ``licence.remind``) once in the reminder window before the last
  day, and ``licence.overdue`` once a licence has been expired ``overdue_days`` without being
  renewed: notices for the platform's message service (topic ``reminders``), which must reach
  the holder. So these two carry the holder's ID type and number — the minimum to address a
  citizen or company through the unified message platform — and never the holder's name or
  the licence's fields. They carry no routing key either (the outbox row's ``licence``,
  ``department_code`` and ``type_code`` are empty; the licence is named in the data only): no
  subscription that selects by department, licence type or pulled licence can match one, so
  only a route made for these kinds (topic ``reminders``) delivers them.
* the alert ``expiring_without_renewal`` per department and China day, when more of its
  licences than the threshold expire within ``alert_days`` still unrenewed.

Cost: every query is a range of ``licence.valid_until`` (index ``ix_licence_valid_until``,
revision 0022) of at most ``catch_up_days`` (expired, overdue) or the reminder window, minus the
licences whose event exists (a lookup of the outbox's unique ``dedupe`` key). The whole table is
never read: a scan after downtime catches up ``catch_up_days`` back, no further.

Concurrency: one transaction per batch. The batch's licence rows are taken ``FOR UPDATE SKIP
LOCKED`` (PostgreSQL; SQLite serialises writers), so two scans work on different licences and a
licence whose status is being changed is left to the next run; the outbox's unique ``dedupe``
key decides the rest, and an audit entry is written only for an event that was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, exists, func, literal, or_
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.audit import AuditLog, Pending
from core.clock import china_today
from core.db import transaction
from licences.models import Holder, Licence, LicenceStatus
from supervision.alert_records import Alert, Severity, raise_alert
from supervision.events import EXPIRED
from supervision.expiry_policy import ExpiryPolicy
from supervision.outbox import OutboxEvent, emit

ACTOR = "system:expiry"
EXPIRE = "licence.expire"  # the audited action of a licence's expiry
REMIND = "licence.remind"  # a reminder or an overdue notice made for the holder
SCAN = "expiry.scan"  # one run of the scan that did something, or that an operator ran
EXPIRING = "licence.expiring"
OVERDUE = "licence.overdue"
ALERT_RULE = "expiring_without_renewal"
TOPIC = "reminders"  # the subscribers' topic of ``licence.expiring`` and ``licence.overdue``
BATCH = 500
# identifier, valid_until, issuer_code, type_code, holder ID type, holder ID number
Candidate = tuple[str, date, str, str, str, str]


@dataclass(frozen=True)
class ScanResult:
    """What one run wrote: events per kind and alerts raised, as of a China date."""

    as_of: date
    expired: int = 0
    expiring: int = 0
    overdue: int = 0
    alerts: int = 0

    def line(self) -> str:
        return (
            f"as_of={self.as_of.isoformat()} expired={self.expired} expiring={self.expiring} "
            f"overdue={self.overdue} alerts={self.alerts}"
        )


@dataclass(frozen=True)
class _Kind:
    """One kind of event the scan makes for the licences whose last day is in [first, last]."""

    event: str
    action: str
    prefix: str  # dedupe = prefix + identifier + suffix
    suffix: str
    first: date
    last: date
    types: tuple[str, ...] | None = None  # only these types (None: all)
    other_types: tuple[str, ...] = ()  # all but these
    to_holder: bool = False


class ExpiryScan:
    def __init__(
        self, *, engine: Engine, audit: AuditLog, policy: ExpiryPolicy, batch: int = BATCH
    ) -> None:
        self._engine = engine
        self._audit = audit
        self.policy = policy
        self._batch = batch

    def scan(self, now: datetime, *, actor: str = ACTOR) -> ScanResult:
        """One run as of ``now``: ``actor`` is audited for the run (``system:expiry`` from the
        worker, the operator from ``elicence expiry scan``)."""
        today = china_today(now)
        p = self.policy
        back = timedelta(days=p.catch_up_days)
        expired = _Kind(EXPIRED, EXPIRE, "expired:", "", today - back, today - timedelta(days=1))
        overdue_last = today - timedelta(days=p.overdue_days)
        overdue = _Kind(
            OVERDUE, REMIND, "overdue:", "", overdue_last - back, overdue_last, to_holder=True
        )
        counts = {"expired": self._run(expired, now, today)}
        counts["expiring"] = sum(self._run(k, now, today) for k in self._reminders(today))
        counts["overdue"] = self._run(overdue, now, today)
        alerts = self._alerts(now, today, actor, counts)
        return ScanResult(as_of=today, alerts=alerts, **counts)

    def _reminders(self, today: date) -> list[_Kind]:
        """One range per reminder period: the default for the types without one of their own."""
        p = self.policy
        by_type = dict(p.reminder_days_by_type)

        def kind(days: int, types: tuple[str, ...] | None, other: tuple[str, ...] = ()) -> _Kind:
            last = today + timedelta(days=days)
            return _Kind(EXPIRING, REMIND, "expiring:", f":{days}", today, last, types, other, True)

        kinds = [kind(p.reminder_days, None, tuple(sorted(by_type)))]
        periods: dict[int, list[str]] = {}
        for code, days in sorted(by_type.items()):
            periods.setdefault(days, []).append(code)
        kinds += [kind(days, tuple(codes)) for days, codes in sorted(periods.items())]
        return kinds

    def _run(self, kind: _Kind, now: datetime, today: date) -> int:
        written, after = 0, None
        while True:
            with transaction(self._engine) as session:
                rows = self._candidates(session, kind, after)
                written += self._write(session, kind, rows, now, today)
            if len(rows) < self._batch:
                return written
            after = (rows[-1][1], rows[-1][0])

    def _candidates(
        self, session: Session, kind: _Kind, after: tuple[date, str] | None
    ) -> list[Candidate]:
        dedupe = literal(kind.prefix) + col(Licence.identifier) + literal(kind.suffix)
        done = exists().where(col(OutboxEvent.dedupe) == dedupe)
        until = col(Licence.valid_until)
        query = (
            select_columns(
                col(Licence.identifier),
                until,
                col(Licence.issuer_code),
                col(Licence.type_code),
                col(Holder.id_type),
                col(Holder.id_number),
            )
            .join(Holder, col(Holder.id) == col(Licence.holder_id))
            .where(
                col(Licence.status) == LicenceStatus.VALID.value,
                until >= kind.first,
                until <= kind.last,
                ~done,
            )
        )
        if kind.types is not None:
            query = query.where(col(Licence.type_code).in_(kind.types))
        if kind.other_types:
            query = query.where(col(Licence.type_code).not_in(kind.other_types))
        if after is not None:
            query = query.where(
                or_(until > after[0], and_(until == after[0], col(Licence.identifier) > after[1]))
            )
        query = query.order_by(until, col(Licence.identifier)).limit(self._batch)
        locked = query.with_for_update(skip_locked=True, of=Licence.__table__)  # type: ignore[attr-defined]
        return [cast(Candidate, tuple(row)) for row in session.execute(locked)]

    def _write(
        self, session: Session, kind: _Kind, rows: list[Candidate], now: datetime, today: date
    ) -> int:
        events: list[tuple[OutboxEvent, Pending]] = []
        for identifier, until, issuer, type_code, id_type, id_number in rows:
            data = _data(kind, identifier, until, issuer, type_code, today)
            routed = not kind.to_holder
            if kind.to_holder:
                data["holder"] = {"id_type": id_type, "id_number": id_number}
            event = emit(
                session,
                kind=kind.event,
                at=now,
                data=data,
                licence=identifier if routed else None,
                department_code=issuer if routed else None,
                type_code=type_code if routed else None,
                dedupe=kind.prefix + identifier + kind.suffix,
            )
            if event is None:
                continue  # another run wrote it first
            detail: dict[str, Any] = {"event": kind.event, "valid_until": until.isoformat()}
            if kind.action == EXPIRE:
                detail.update({"from": "valid", "to": "expired"})
            events.append((event, Pending(ACTOR, kind.action, "licence", identifier, "ok", detail)))
        entries = self._audit.append_many(session, [pending for _, pending in events])
        for (event, _), entry in zip(events, entries, strict=True):
            event.audit_seq = entry.seq
            session.add(event)
        return len(events)

    def _alerts(self, now: datetime, today: date, actor: str, counts: dict[str, int]) -> int:
        """The run's audit entry (when it did something or an operator ran it) and the alerts.

        The audit entry is written first: it takes the audit chain's lock, so two runs decide
        the day's alerts one after the other and a department gets one alert a day."""
        p = self.policy
        last = today + timedelta(days=p.alert_days)
        until = col(Licence.valid_until)
        raised = 0
        with transaction(self._engine) as session:
            over = session.exec(
                select(Licence.issuer_code, func.count())
                .where(
                    col(Licence.status) == LicenceStatus.VALID.value, until >= today, until <= last
                )
                .group_by(col(Licence.issuer_code))
                .having(func.count() > p.alert_threshold)
                .order_by(col(Licence.issuer_code))
            ).all()
            subjects = {code: f"{code}:{today.isoformat()}" for code, _ in over}
            due = set(subjects.values()) - _alerted(session, list(subjects.values()))
            if not any(counts.values()) and not due and actor == ACTOR:
                return 0  # a periodic run after the day's work: it leaves no trace
            self._audit.append(
                session,
                actor=actor,
                action=SCAN,
                object_type="expiry_scan",
                object_id=today.isoformat(),
                detail={**counts, "as_of": today.isoformat()},
            )
            seen = _alerted(session, list(subjects.values()))  # again, under the chain's lock
            for code, count in over:
                if subjects[code] in seen:
                    continue
                raise_alert(
                    session,
                    self._audit,
                    rule=ALERT_RULE,
                    severity=Severity.WARNING,
                    subject=subjects[code],
                    summary=(
                        f"{count} 本证照将于 {p.alert_days} 天内到期且未办理延续 / {count} "
                        f"licences expire within {p.alert_days} days without renewal"
                    ),
                    at=now,
                    department_code=code,
                    detail={"count": count, "days": p.alert_days, "date": today.isoformat()},
                )
                raised += 1
        return raised


def _alerted(session: Session, subjects: list[str]) -> set[str]:
    """The subjects among ``subjects`` that have had their alert (open or acknowledged)."""
    if not subjects:
        return set()
    query = select(Alert.subject).where(Alert.rule == ALERT_RULE, col(Alert.subject).in_(subjects))
    return set(session.exec(query).all())


def _data(
    kind: _Kind, identifier: str, until: date, issuer: str, type_code: str, today: date
) -> dict[str, Any]:
    """The event's body: the licence as ``supervision.events.licence_data`` names it, its last
    day, and how far from it today is; the holder is added only to the holder's notices."""
    data: dict[str, Any] = {
        "licence": {"identifier": identifier, "type_code": type_code, "issuer_code": issuer},
        "valid_until": until.isoformat(),
    }
    if kind.event == EXPIRED:
        data["status"] = {"from": "valid", "to": "expired"}
    elif kind.event == EXPIRING:
        data["days_left"] = (until - today).days
        data["topic"] = TOPIC
    else:
        data["days_overdue"] = (today - until).days
        data["topic"] = TOPIC
    return data
