"""Every key use leaves an audit entry, written in the same transaction as the work it signs."""

from __future__ import annotations

from sqlmodel import Session

from core.audit import AuditLog
from keys.store import KeyRef


class AuditedKeyUse:
    def __init__(
        self, audit: AuditLog, session: Session, actor: str, request_id: str | None = None
    ) -> None:
        self._audit = audit
        self._session = session
        self._actor = actor
        self._request_id = request_id

    def key_used(self, ref: KeyRef, purpose: str) -> None:
        self._audit.append(
            self._session,
            actor=self._actor,
            action="key.sign",
            object_type="key",
            object_id=str(ref),
            detail={"purpose": purpose, "version": ref.version},
            request_id=self._request_id,
        )


class KeyUseRecorder:
    """Collects key uses made outside a transaction (sealing is slow; the write lock is not held
    while it runs) so they are written to the audit chain with the record they produced."""

    def __init__(self) -> None:
        self.uses: list[tuple[KeyRef, str]] = []

    def key_used(self, ref: KeyRef, purpose: str) -> None:
        self.uses.append((ref, purpose))

    def flush(
        self, audit: AuditLog, session: Session, actor: str, request_id: str | None = None
    ) -> None:
        sink = AuditedKeyUse(audit, session, actor, request_id)
        for ref, purpose in self.uses:
            sink.key_used(ref, purpose)
        self.uses.clear()
