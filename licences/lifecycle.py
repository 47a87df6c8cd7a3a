"""Status changes of a licence, by one table of allowed transitions.

A forbidden transition is a conflict that names the current status; every change is audited in
the transaction that makes it, and verification reads the status live, so it is seen at once.
"""

from __future__ import annotations

from enum import Enum

from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock
from core.errors import Conflict, Forbidden, InvalidInput
from licences.models import Licence, LicenceStatus
from licences.repository import effective_status, licence_by_identifier


class Transition(str, Enum):
    SUSPEND = "suspend"
    RESUME = "resume"
    REVOKE = "revoke"


ALLOWED: dict[Transition, tuple[frozenset[LicenceStatus], LicenceStatus]] = {
    Transition.SUSPEND: (frozenset({LicenceStatus.VALID}), LicenceStatus.SUSPENDED),
    Transition.RESUME: (frozenset({LicenceStatus.SUSPENDED}), LicenceStatus.VALID),
    Transition.REVOKE: (
        frozenset({LicenceStatus.VALID, LicenceStatus.SUSPENDED, LicenceStatus.EXPIRED}),
        LicenceStatus.REVOKED,
    ),
}
REASON_REQUIRED = {Transition.SUSPEND, Transition.REVOKE}
MAX_REASON = 256


class Lifecycle:
    def __init__(self, audit: AuditLog, clock: Clock) -> None:
        self._audit = audit
        self._clock = clock

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
        """Apply ``transition``; ``department_code`` None means an operator acting for the domain."""
        licence = licence_by_identifier(session, identifier)
        if department_code is not None and licence.issuer_code != department_code:
            raise Forbidden(
                "只有发证部门可以变更证照状态 / only the issuing department may change it"
            )
        reason = (reason or "").strip() or None
        if transition in REASON_REQUIRED and not reason:
            raise InvalidInput("须说明原因 / a reason is required", field="reason")
        if reason is not None and len(reason) > MAX_REASON:
            raise InvalidInput(f"原因过长 / reason longer than {MAX_REASON}", field="reason")
        now = self._clock.now()
        current = effective_status(licence, now.date())
        sources, target = ALLOWED[transition]
        if current not in sources:
            raise Conflict(
                f"当前状态为{current.label}，不能{transition.value} / cannot {transition.value} a "
                f"licence whose status is {current.value}",
                extra={"current_status": current.value},
            )
        previous = licence.status
        licence.status = target.value
        licence.status_reason = reason
        licence.status_changed_at = now
        session.add(licence)
        self._audit.append(
            session,
            actor=actor,
            action=f"licence.{transition.value}",
            object_type="licence",
            object_id=identifier,
            request_id=request_id,
            detail={"from": previous, "to": target.value, "reason": reason},
        )
        return licence
