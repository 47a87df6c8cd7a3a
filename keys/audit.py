"""Every key use leaves an audit entry, written in the same transaction as the work it signs."""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session, col, select

from core.audit import AuditCheckpoint, AuditEntry, AuditLog, checkpoint_message
from core.clock import Clock
from keys.store import HashAlgorithm, KeyRef, KeyStore


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


class AuditCheckpointer:
    """Signs the audit chain head every ``every`` entries with the audit key.

    Uses of the audit key are not themselves audited (that would recurse); the checkpoint row
    is the record of each use.
    """

    LABEL = "audit-checkpoint"

    def __init__(self, store: KeyStore, clock: Clock, every: int = 100) -> None:
        if every < 1:
            raise ValueError("checkpoint interval must be positive")
        self._store = store
        self._clock = clock
        self._every = every

    def ensure_key(self) -> KeyRef:
        if not self._store.exists(self.LABEL):
            return self._store.create(self.LABEL)
        return KeyRef(self._store.name, self.LABEL, 1)

    def __call__(self, session: Session, entry: AuditEntry) -> None:
        if entry.seq % self._every or not self._store.exists(self.LABEL):
            return
        ref = KeyRef(self._store.name, self.LABEL, 1)
        digest = hashlib.sha256(checkpoint_message(entry.seq, entry.hash)).digest()
        signature = self._store.sign_digest(ref, digest, HashAlgorithm.SHA256)
        session.add(
            AuditCheckpoint(
                seq=entry.seq,
                hash=entry.hash,
                at=self._clock.now(),
                key_ref=str(ref),
                signature=signature,
            )
        )

    def verify(self, session: Session) -> tuple[int, int | None]:
        """(checkpoints checked, first seq whose checkpoint does not hold, or None)."""
        if not self._store.exists(self.LABEL):
            return 0, None
        public = self._store.public_key(KeyRef(self._store.name, self.LABEL, 1))
        assert isinstance(public, ec.EllipticCurvePublicKey)
        checked = 0
        for checkpoint in session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.seq))):
            checked += 1
            entry = session.get(AuditEntry, checkpoint.seq)
            try:
                public.verify(
                    checkpoint.signature,
                    checkpoint_message(checkpoint.seq, checkpoint.hash),
                    ec.ECDSA(hashes.SHA256()),
                )
            except InvalidSignature:
                return checked, checkpoint.seq
            if entry is None or entry.hash != checkpoint.hash:
                return checked, checkpoint.seq
        return checked, None
