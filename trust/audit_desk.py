"""The audit trail (电子监察) as the operator's CLI reads it: the export for supervisors, the
check of the chain and its checkpoints (against a kept anchor, when given), the export of the
latest checkpoint, and the audited pin of a trust-list signer.

Each method opens its own read or transaction, so the CLI never holds a session. The checks
themselves stay in ``core.audit``, ``keys.audit`` and ``trust.audit_anchor``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, or_, select

from core.audit import AuditEntry, AuditLog
from core.db import as_utc, reading, transaction
from keys.audit import AuditCheckpointer
from trust.audit_anchor import Anchor, AuditVerdict, export_checkpoint, read_anchor, verify_audit
from trust.authority import TrustDomain


class AuditDesk:
    """Reads of the audit chain, one session per call."""

    def __init__(
        self,
        *,
        engine: Engine,
        audit: AuditLog,
        trust: TrustDomain,
        checkpoints: AuditCheckpointer,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._trust = trust
        self._checkpoints = checkpoints

    def entries(
        self,
        *,
        action: str | None = None,
        department: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditEntry]:
        """Entries in chain order: ``action`` a prefix, ``department`` the acting department or
        the department acted on, ``since`` inclusive and ``until`` exclusive, each ``at`` in
        UTC. Streamed from one read, so an export of the whole chain never sits in memory."""
        query = select(AuditEntry).order_by(col(AuditEntry.seq))
        if action:
            query = query.where(col(AuditEntry.action).startswith(action))
        if department:
            query = query.where(
                or_(
                    col(AuditEntry.actor).contains(f"department:{department}"),
                    AuditEntry.object_id == department,
                )
            )
        if since:
            query = query.where(col(AuditEntry.at) >= as_utc(since))
        if until:
            query = query.where(col(AuditEntry.at) < as_utc(until))
        with reading(self._engine) as session:
            for entry in session.exec(query):
                entry.at = as_utc(entry.at)
                yield entry

    def anchor(self, document: Any) -> Anchor:
        """The checkpoint a kept trust list or exported checkpoint vouches for; refuses a
        document this domain did not sign (``trust.audit_anchor.read_anchor``)."""
        with reading(self._engine) as session:
            return read_anchor(
                session, document, trust=self._trust, checkpoints=self._checkpoints
            )

    def verify(self, anchor: Anchor | None = None) -> AuditVerdict:
        """The chain from its first entry, every checkpoint, and the anchor when given."""
        with reading(self._engine) as session:
            return verify_audit(session, self._checkpoints, anchor)

    def latest_checkpoint(self) -> dict[str, Any]:
        """The latest timestamped checkpoint as a document to keep outside the database."""
        with reading(self._engine) as session:
            return export_checkpoint(session, self._trust.identity.name)

    def record_pin(
        self, fingerprint: str, *, actor: str, file: str, write: Callable[[], None]
    ) -> None:
        """The operator pinned a trust-list signer: the ``trust.pin`` entry and the pin file
        (``write``, run inside the transaction) land together or not at all."""
        with transaction(self._engine) as session:
            self._audit.append(
                session,
                actor=actor,
                action="trust.pin",
                object_type="trust-list",
                object_id=fingerprint,
                detail={"file": file},
            )
            write()
