"""Status changes of a licence, by one table of allowed transitions.

Some transitions only change the status (suspend, resume, cancel, revoke); the others make a new
version of the licence (amend, renew, reissue — ``licences.versions``) and retire the old one,
which becomes ``superseded`` or ``void`` and links to its successor. Both kinds are checked
against the same table here. A forbidden transition is a conflict that names the current status;
every change is audited in the transaction that makes it, and verification reads the status
live, so it is seen at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.errors import Conflict, Forbidden, InvalidInput
from licences import idempotency
from licences.idempotency import IdempotencyKey
from licences.identifiers import LicenceIdentifier
from licences.models import Licence, LicenceStatus
from licences.repository import effective_status, licence_by_identifier


class Transition(str, Enum):
    SUSPEND = "suspend"  # 暂停
    RESUME = "resume"  # 恢复
    CANCEL = "cancel"  # 注销
    REVOKE = "revoke"  # 吊销 (a penalty)
    AMEND = "amend"  # 变更
    RENEW = "renew"  # 延续
    REISSUE = "reissue"  # 补发 (after loss or damage)


@dataclass(frozen=True)
class Rule:
    sources: frozenset[LicenceStatus]  # the (effective) statuses it may start from
    target: LicenceStatus  # what *this* licence becomes
    new_version: bool  # a successor version is issued (render, seal, store)
    reason_required: bool
    zh: str


S = LicenceStatus
ALLOWED: dict[Transition, Rule] = {
    Transition.SUSPEND: Rule(frozenset({S.VALID}), S.SUSPENDED, False, True, "暂停"),
    Transition.RESUME: Rule(frozenset({S.SUSPENDED}), S.VALID, False, False, "恢复"),
    Transition.CANCEL: Rule(
        frozenset({S.VALID, S.SUSPENDED, S.EXPIRED}), S.CANCELLED, False, True, "注销"
    ),
    Transition.REVOKE: Rule(
        frozenset({S.VALID, S.SUSPENDED, S.EXPIRED}), S.REVOKED, False, True, "吊销"
    ),
    Transition.AMEND: Rule(frozenset({S.VALID}), S.SUPERSEDED, True, False, "变更"),
    Transition.RENEW: Rule(frozenset({S.VALID, S.EXPIRED}), S.SUPERSEDED, True, False, "延续"),
    Transition.REISSUE: Rule(frozenset({S.VALID}), S.VOID, True, True, "补发"),
}
STATUS_ONLY = frozenset(t for t, rule in ALLOWED.items() if not rule.new_version)
MAX_REASON = 256


def check_reason(transition: Transition, reason: str | None) -> str | None:
    reason = (reason or "").strip() or None
    if ALLOWED[transition].reason_required and not reason:
        raise InvalidInput(
            f"{ALLOWED[transition].zh}须说明原因 / a reason is required to {transition.value}",
            field="reason",
        )
    if reason is not None and (len(reason) > MAX_REASON or any(ord(c) < 32 for c in reason)):
        raise InvalidInput(
            f"原因过长或含控制字符 / reason longer than {MAX_REASON} or with control characters",
            field="reason",
        )
    return reason


def parse_identifier(identifier: str) -> str:
    """Refuse a malformed identifier with the rule it breaks (422) before looking it up (404)."""
    return str(LicenceIdentifier.parse(identifier))


@dataclass(frozen=True)
class Changed:
    licence: Licence
    replayed: bool = False


class Lifecycle:
    def __init__(self, audit: AuditLog, clock: Clock) -> None:
        self._audit = audit
        self._clock = clock

    def check(
        self,
        licence: Licence,
        transition: Transition,
        *,
        department_code: str | None,
        now: datetime | None = None,
    ) -> LicenceStatus:
        """Who may act and from which status; returns the current (effective) status.
        ``department_code`` None means an operator acting for the domain."""
        if department_code is not None and licence.issuer_code != department_code:
            raise Forbidden(
                "只有发证部门可以变更证照状态 / only the issuing department may change it"
            )
        today = china_today(now or self._clock.now())
        current = effective_status(licence, today)
        rule = ALLOWED[transition]
        if current not in rule.sources:
            raise Conflict(
                f"当前状态为{current.zh}，不能{rule.zh} / cannot {transition.value} a licence "
                f"whose status is {current.value}",
                field="status",
                extra={"current_status": current.value},
            )
        return current

    def mark(
        self,
        session: Session,
        licence: Licence,
        transition: Transition,
        *,
        reason: str | None,
        actor: str,
        request_id: str | None,
        successor: str | None = None,
    ) -> Licence:
        """Move ``licence`` to the transition's target status and audit it, in ``session``."""
        now = self._clock.now()
        previous = licence.status
        target = ALLOWED[transition].target
        licence.status = target.value
        licence.status_reason = reason
        licence.status_changed_at = now
        if successor is not None:
            licence.superseded_by = successor
        session.add(licence)
        session.flush()
        detail: dict[str, object] = {"from": previous, "to": target.value, "reason": reason}
        if successor is not None:
            detail["successor"] = successor
        self._audit.append(
            session,
            actor=actor,
            action=f"licence.{transition.value}",
            object_type="licence",
            object_id=licence.identifier,
            request_id=request_id,
            detail=detail,
        )
        return licence

    def apply(
        self,
        session: Session,
        *,
        identifier: str,
        transition: Transition,
        reason: str | None,
        actor: str,
        department_code: str | None,
        request_id: str | None = None,
    ) -> Licence:
        """Apply a status-only ``transition`` in the caller's transaction."""
        if transition not in STATUS_ONLY:
            raise InvalidInput(
                f"{transition.value} 会产生新版本 / {transition.value} makes a new version",
                field="action",
            )
        licence = licence_by_identifier(session, parse_identifier(identifier), for_update=True)
        reason = check_reason(transition, reason)
        self.check(licence, transition, department_code=department_code)
        return self.mark(
            session, licence, transition, reason=reason, actor=actor, request_id=request_id
        )

    def apply_once(
        self,
        engine: Engine,
        *,
        identifier: str,
        transition: Transition,
        reason: str | None,
        actor: str,
        department_code: str | None,
        request_id: str | None = None,
        key: str | None = None,
    ) -> Changed:
        """``apply`` in its own transaction, at most once per Idempotency-Key."""
        idem = IdempotencyKey.of(
            department_code, transition.value, key, {"identifier": identifier, "reason": reason}
        )

        def write(session: Session) -> str:
            return self.apply(
                session,
                identifier=identifier,
                transition=transition,
                reason=reason,
                actor=actor,
                department_code=department_code,
                request_id=request_id,
            ).identifier

        licence, replayed = idempotency.once(
            engine, idem, self._clock.now, write, licence_by_identifier
        )
        return Changed(licence, replayed)
