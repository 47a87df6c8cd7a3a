"""Early warning (预警): the alert rules, run as an audit observer in the transaction of the entry
that triggers them — never by a nightly scan, so an alert exists exactly when its action does.

Every audited action passes :meth:`AlertRules.__call__`: a verification, an issuance, a seal's
suspension or revocation. Each rule decides from the entry first and touches the database only
when the entry can concern it: a PASSED verification, the common case, costs no query at all.
Thresholds come from settings through the container (:class:`Thresholds`); rules read none.
Deduplication is ``raise_alert``'s: one open alert per rule and subject, counted up.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from core.audit import AuditEntry, AuditLog, Pending
from supervision import rules_issuance, rules_verify


@dataclass(frozen=True)
class Thresholds:
    """What each rule fires at (``ELICENCE_ALERT_*``)."""

    licence_failures: int = 5  # K failed verifications of one licence ...
    source_failures: int = 10  # ... or from one source ...
    failure_window_minutes: int = 10  # ... within W minutes
    burst_factor: float = 5.0  # the last hour's issuances above k x the hourly mean of 28 days
    burst_floor: int = 50  # and above this many, so a new department's first batch is quiet
    work_start_hour: int = 9  # working hours in China time: [start, end)
    work_end_hour: int = 18
    work_weekends: bool = False  # issuing on Saturday or Sunday is off-hours unless True
    seal_race_minutes: int = 60  # licences sealed this long before a seal's suspension


@dataclass(frozen=True)
class Rule:
    code: str
    name_zh: str
    name_en: str


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule("verify_not_valid", "核验到失效证照", "a licence no longer valid was verified"),
        Rule(
            "repeated_failures_licence",
            "同一证照反复核验失败",
            "repeated failed verifications of one licence",
        ),
        Rule(
            "repeated_failures_source",
            "同一来源反复核验失败",
            "repeated failed verifications from one source",
        ),
        Rule("issuance_burst", "发证量突增", "a burst of issuances"),
        Rule("off_hours_issuance", "非工作时间发证", "issuance outside working hours"),
        Rule(
            "seal_used_before_suspension",
            "印章停用前集中用印",
            "licences sealed just before the seal was suspended or revoked",
        ),
        # Raised by the daily expiry scan (supervision.expiry), not by an audit entry; named
        # here so that offices read and filter every alert by the same table.
        Rule(
            "expiring_without_renewal",
            "大量证照即将到期未延续",
            "many licences expiring without renewal",
        ),
        # Raised by the worker's periodic objection watch (supervision.objection_watch).
        Rule(
            "objection_overdue",
            "错录申诉超期未处理",
            "holders' objections left unanswered too long",
        ),
    )
}


class AlertRules:
    """The observer the container registers on the audit log (``audit.observe(rules)``)."""

    def __init__(self, audit: AuditLog, thresholds: Thresholds) -> None:
        self._audit = audit
        self._thresholds = thresholds
        self._baselines = rules_issuance.Baselines()

    @staticmethod
    def concerns(pending: Pending) -> bool:
        """Every entry but a verification that passed, the one kind no rule looks at
        (``rules_verify.on_verification`` returns at once): told before it is written."""
        return not (pending.action == rules_verify.VERIFY and pending.outcome == "PASSED")

    def __call__(self, session: Session, entry: AuditEntry) -> None:
        action = entry.action
        if action == rules_verify.VERIFY:
            rules_verify.on_verification(session, self._audit, self._thresholds, entry)
        elif action == rules_issuance.ISSUE:
            rules_issuance.on_issuance(
                session, self._audit, self._thresholds, self._baselines, entry
            )
        elif action in rules_issuance.SEAL_STOPS:
            rules_issuance.on_seal_stopped(session, self._audit, self._thresholds, entry)
