"""The verification rules: a licence no longer valid shown at a counter, and runs of failed
verifications of one licence or from one source.

Decided from the audit entry first: a PASSED verification returns before any query. A failure
writes one row (``supervision.failures``) and counts its window with one indexed query per rule.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session

from core.audit import AuditEntry, AuditLog
from core.db import as_utc
from licences.models import Licence
from supervision import failures
from supervision.alert_records import Severity, raise_alert
from supervision.sources import shortened

if TYPE_CHECKING:
    from supervision.alerts import Thresholds

VERIFY = "licence.verify"
UNKNOWN_CODE = "unknown-code"
# What each status failure says to a supervisor (verify/rules.py STATUS_FAILURES: cancelled
# reads as REVOKED, void as SUPERSEDED).
DEAD: dict[str, tuple[str, str]] = {
    "REVOKED": ("已吊销或注销", "revoked or cancelled"),
    "SUSPENDED": ("已暂停", "suspended"),
    "SUPERSEDED": ("已被替代或作废", "superseded or void"),
}
# A genuine licence past its end date, or one of the above, is not a forgery attempt.
NOT_FORGERY = frozenset({*DEAD, "EXPIRED"})


def named_licence(entry: AuditEntry) -> str | None:
    """The licence identifier the verification named, if any."""
    subject = entry.object_id
    if subject == UNKNOWN_CODE or subject.startswith(("sha256:", "unknown-")):
        return None
    return subject


def _issuer(session: Session, identifier: str) -> str | None:
    """The issuing department of a licence of this domain (None for another domain's)."""
    licence = session.get(Licence, identifier)
    return licence.issuer_code if licence is not None else None


def _claimed_local(session: Session, claimed: object) -> str | None:
    """The identifier an unverified code claimed, when it is a licence of this domain."""
    if not isinstance(claimed, str) or not claimed:
        return None
    return claimed if _issuer(session, claimed) is not None else None


def on_verification(
    session: Session, audit: AuditLog, thresholds: Thresholds, entry: AuditEntry
) -> None:
    if entry.outcome == "PASSED":
        return  # the common case: no query
    detail = entry.detail or {}
    sub = detail.get("sub_indication")
    named = named_licence(entry)
    source = detail.get("source") if isinstance(detail.get("source"), str) else None
    at = as_utc(entry.at)
    if named is not None:
        if sub in DEAD:
            _not_valid(session, audit, entry, named, str(sub))
        if entry.outcome != "FAILED" or sub in NOT_FORGERY:
            return  # a genuine licence, not valid or not confirmed: no forgery
    # Whatever named no licence and did not pass counts for its source: an unknown code, a
    # tampered or unsigned file, a hostile one refused by the worker's limits. A forged code
    # names no licence in the report, but what it claims is recorded: a forger
    # using a real licence's number is exactly what the licence rule is for.
    identifier = named or _claimed_local(session, detail.get("claimed"))
    failures.record(session, at=at, source=source, identifier=identifier, audit_seq=entry.seq)
    if entry.seq % failures.PRUNE_EVERY == 0:
        kept = max(failures.RETAIN, timedelta(minutes=thresholds.failure_window_minutes))
        failures.prune(session, at - kept)
    since = at - timedelta(minutes=thresholds.failure_window_minutes)
    window = thresholds.failure_window_minutes
    if identifier is not None:
        count = failures.count_for_identifier(session, identifier, since, entry.seq)
        if count >= thresholds.licence_failures:
            raise_alert(
                session,
                audit,
                rule="repeated_failures_licence",
                severity=Severity.CRITICAL,
                subject=identifier,
                summary=(
                    f"证照 {identifier} 在 {window} 分钟内核验失败 {count} 次，可能有人伪造该证照"
                    f" / {count} failed verifications of licence {identifier} within {window}"
                    " minutes: its number may be used on forgeries"
                ),
                at=at,
                department_code=_issuer(session, identifier),
                detail={"count": count, "window_minutes": window, "last_sub_indication": sub},
            )
    if source is None:
        return
    count, one = failures.tally_for_source(session, source, since, entry.seq)
    if count < thresholds.source_failures:
        return
    raise_alert(
        session,
        audit,
        rule="repeated_failures_source",
        severity=Severity.WARNING,
        subject=source,
        summary=(
            f"同一来源（{shortened(source)}）在 {window} 分钟内核验失败或无法识别 {count} 次"
            f" / {count} failed or unknown verifications from one source ({shortened(source)})"
            f" within {window} minutes"
        ),
        at=at,
        department_code=_issuer(session, one) if one is not None else None,
        detail={"count": count, "window_minutes": window, "licence": one},
    )


def _not_valid(
    session: Session, audit: AuditLog, entry: AuditEntry, identifier: str, sub: str
) -> None:
    issuer = _issuer(session, identifier)
    if issuer is None:
        return  # another domain's licence: its own supervisors' concern
    zh, en = DEAD[sub]
    raise_alert(
        session,
        audit,
        rule="verify_not_valid",
        severity=Severity.WARNING,
        subject=identifier,
        summary=(
            f"证照 {identifier} {zh}，仍被出示核验 / licence {identifier}, {en}, was presented"
            " for verification"
        ),
        at=as_utc(entry.at),
        department_code=issuer,
        detail={
            "sub_indication": sub,
            "channel": (entry.detail or {}).get("channel"),
        },
    )
