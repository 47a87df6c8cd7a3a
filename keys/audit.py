"""Every key use leaves an audit entry, written in the same transaction as the work it signs."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session, col, select

from core.audit import (
    AuditCheckpoint,
    AuditEntry,
    AuditLog,
    Pending,
    checkpoint_digest,
    checkpoint_message,
    next_checkpoint_number,
)
from core.clock import Clock
from core.errors import Unavailable
from keys.store import HashAlgorithm, KeyRef, KeyStore, in_this_process

_log = logging.getLogger(__name__)


def key_use_entry(ref: KeyRef, purpose: str, actor: str, request_id: str | None) -> Pending:
    return Pending(
        actor=actor,
        action="key.sign",
        object_type="key",
        object_id=str(ref),
        detail={"purpose": purpose, "version": ref.version},
        request_id=request_id,
    )


class AuditedKeyUse:
    def __init__(
        self, audit: AuditLog, session: Session, actor: str, request_id: str | None = None
    ) -> None:
        self._audit = audit
        self._session = session
        self._actor = actor
        self._request_id = request_id

    def key_used(self, ref: KeyRef, purpose: str) -> None:
        self._audit.append_many(
            self._session, [key_use_entry(ref, purpose, self._actor, self._request_id)]
        )


class KeyUseRecorder:
    """Collects key uses made outside a transaction (sealing is slow; the write lock is not held
    while it runs) so they are written to the audit chain with the record they produced."""

    def __init__(self) -> None:
        self.uses: list[tuple[KeyRef, str]] = []

    def key_used(self, ref: KeyRef, purpose: str) -> None:
        self.uses.append((ref, purpose))

    def flush(
        self,
        audit: AuditLog,
        session: Session,
        actor: str,
        request_id: str | None = None,
        then: Sequence[Pending] = (),
    ) -> None:
        """Appends the uses, in the order they were made, and then ``then`` (the entry of what
        they produced) in one ``append_many``: one advance of the chain's head, not one each."""
        pending = [key_use_entry(ref, purpose, actor, request_id) for ref, purpose in self.uses]
        audit.append_many(session, [*pending, *then])
        self.uses.clear()


class CheckpointTimestamps(Protocol):
    """The domain's RFC 3161 TSA, as the checkpointer needs it (made in ``trust/``, handed in
    by the API's container: this layer does not import trust)."""

    def stamp(self, session: Session, digest: bytes) -> bytes:
        """A DER TimeStampToken whose message imprint is the SHA-256 ``digest``."""
        ...

    def check(self, session: Session, digest: bytes, token: bytes) -> str | None:
        """Why ``token`` is not this domain's TSA's token over ``digest``, or None."""
        ...


@dataclass(frozen=True)
class CheckpointReport:
    checked: int
    broken_number: int | None = None  # the first checkpoint that does not hold
    broken_entry: int | None = None  # the audit entry it names, when there is one
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_number is None


class AuditCheckpointer:
    """Signs the audit chain head every ``every`` entries with the audit key, numbers the
    checkpoints without gaps and has each one timestamped by the domain's TSA.

    Uses of the audit key (and of the TSA key for a checkpoint) are not themselves audited (that
    would recurse); the checkpoint row is the record of each use.
    """

    LABEL = "audit-checkpoint"

    def __init__(
        self,
        store: KeyStore,
        clock: Clock,
        every: int = 100,
        timestamps: CheckpointTimestamps | None = None,
    ) -> None:
        if every < 1:
            raise ValueError("checkpoint interval must be positive")
        self._store = store
        self._clock = clock
        self._every = every
        # Set once the TSA exists (the container builds it after the audit log).
        self.timestamps = timestamps

    def ensure_key(self) -> KeyRef:
        if not self._store.exists(self.LABEL):
            return self._store.create(self.LABEL)
        return KeyRef(self._store.name, self.LABEL, 1)

    @property
    def signs_in_process(self) -> bool:
        """Whether a checkpoint is signed and timestamped without leaving this process: the
        soft key store holds the audit and TSA keys here (the TSA uses the same store); Vault
        and PKCS#11 are calls to a service or a token, which an event loop must not wait on."""
        return in_this_process(self._store)

    def due(self, seq: int) -> bool:
        """Whether entry ``seq`` brings a checkpoint: told before the entry is written (a
        batch that brings none may be written in one statement, ``core.audit``)."""
        return seq % self._every == 0

    def __call__(self, session: Session, entry: AuditEntry) -> None:
        if not self.due(entry.seq) or not self._store.exists(self.LABEL):
            return
        ref = KeyRef(self._store.name, self.LABEL, 1)
        number = next_checkpoint_number(session)
        token = None
        if self.timestamps is not None:
            try:
                token = self.timestamps.stamp(
                    session, checkpoint_digest(number, entry.seq, entry.hash)
                )
            except Unavailable as exc:
                # No usable TSA certificate yet (a data directory initialised before the trust
                # services existed) or the TSA refused: the audited action still stands, and
                # this checkpoint is left to the next interval. Numbers stay without gaps.
                _log.warning("audit checkpoint at entry %s deferred: %s", entry.seq, exc.message)
                return
        message = checkpoint_message(entry.seq, entry.hash, number)
        signature = self._store.sign_digest(
            ref, hashlib.sha256(message).digest(), HashAlgorithm.SHA256
        )
        session.add(
            AuditCheckpoint(
                seq=entry.seq,
                number=number,
                hash=entry.hash,
                at=self._clock.now(),
                key_ref=str(ref),
                signature=signature,
                timestamp_token=token,
            )
        )
        session.flush()  # the next checkpoint of this append counts this one

    def signed(self, number: int, seq: int, head_hash: str, signature: bytes) -> bool:
        """Whether ``signature`` is the audit key's over the numbered checkpoint."""
        if not self._store.exists(self.LABEL):
            return False
        public = self._store.public_key(KeyRef(self._store.name, self.LABEL, 1))
        return _verifies(public, signature, checkpoint_message(seq, head_hash, number))

    def verify(self, session: Session) -> tuple[int, int | None]:
        """(checkpoints checked, first seq whose checkpoint does not hold, or None)."""
        report = self.check(session)
        if report.intact:
            return report.checked, None
        return report.checked, report.broken_entry

    def check(self, session: Session) -> CheckpointReport:
        """Every checkpoint in number order: numbers without gaps, entries in order, the audit
        key's signature, the entry still there with that hash, and the TSA token over it."""
        rows = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.number)))
        if not self._store.exists(self.LABEL):
            first = rows.first()
            if first is None:
                return CheckpointReport(0)
            lost = f"the audit key that signed checkpoint {first.number} is missing"
            return CheckpointReport(0, first.number, first.seq, lost)
        public = self._store.public_key(KeyRef(self._store.name, self.LABEL, 1))
        checked, last_seq = 0, 0
        for checkpoint in rows:
            checked += 1
            if checkpoint.number != checked:
                gap = f"checkpoint {checked} is missing (checkpoint numbers have no gaps)"
                return CheckpointReport(checked, checked, checkpoint.seq, gap)
            if checkpoint.seq <= last_seq:
                order = f"checkpoint {checked} (entry {checkpoint.seq}) is out of order"
                return CheckpointReport(checked, checked, checkpoint.seq, order)
            last_seq = checkpoint.seq
            reason = self._problem(session, public, checkpoint)
            if reason is not None:
                return CheckpointReport(checked, checked, checkpoint.seq, reason)
        return CheckpointReport(checked)

    def _problem(self, session: Session, public: object, checkpoint: AuditCheckpoint) -> str | None:
        number, seq, head = checkpoint.number, checkpoint.seq, checkpoint.hash
        named = f"checkpoint {number} (entry {seq})"
        numbered = _verifies(public, checkpoint.signature, checkpoint_message(seq, head, number))
        # A checkpoint from before numbering was signed over the first form and has no token;
        # a numbered one stripped of its token does not verify in that form.
        legacy = (
            not numbered
            and checkpoint.timestamp_token is None
            and _verifies(public, checkpoint.signature, checkpoint_message(seq, head))
        )
        if not numbered and not legacy:
            return f"the signature of {named} does not match"
        entry = session.get(AuditEntry, seq)
        if entry is None or entry.hash != head:
            return f"entry {seq} no longer has the hash {named} signed"
        if numbered and self.timestamps is not None:
            if checkpoint.timestamp_token is None:
                return f"{named} has no timestamp"
            problem = self.timestamps.check(
                session, checkpoint_digest(number, seq, head), checkpoint.timestamp_token
            )
            if problem is not None:
                return f"the timestamp of {named} does not verify: {problem}"
        return None


def _verifies(public: object, signature: bytes, message: bytes) -> bool:
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return False
    try:
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
