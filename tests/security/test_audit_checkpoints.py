"""Signed, numbered, timestamped audit checkpoints (keys/audit.py ``AuditCheckpointer``) and the
checkpoint functions of core/audit.py, on an in-memory database with an in-memory audit key and
the product's own RFC 3161 TSA unit: when a checkpoint is made, exactly what it signs and what
its token stamps, and every way a checkpoint can fail — a gap in the numbers, a bad signature, a
token moved, stripped or from another TSA, an entry whose hash changed, checkpoints out of
order, the audit key gone — each with its exact reason; the anchor check (``anchor_problem``)
of a chain truncated, rewritten or robbed of its checkpoint; checkpoints from before numbering."""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from sqlmodel import Session, select

from core.audit import (
    AuditCheckpoint,
    AuditLog,
    Pending,
    checkpoint_digest,
    checkpoint_json,
    checkpoint_message,
    latest_checkpoint,
    next_checkpoint_number,
    verify_chain,
)
from core.clock import FixedClock
from core.db import as_utc
from core.errors import Unavailable
from keys.audit import AuditCheckpointer, CheckpointReport
from keys.store import KeyRef
from tests.security.audit_support import (
    AUDIT_KEY,
    LATER,
    ROGUE,
    Audited,
    Timestamps,
    audited,
    imprint,
    message,
    sign_with_audit_key,
)
from tests.security.support import NOW, MemoryKeyStore, memory_engine, rfc3161_token, tsa_unit
from trust.audit_anchor import token_problem

# --- the messages and the small functions of core/audit.py ------------------------------------

def test_the_signed_messages_and_the_stamped_digest() -> None:
    head = "ab" * 32
    assert checkpoint_message(7, head) == b"elicence-audit-checkpoint:7:" + head.encode()
    assert checkpoint_message(7, head, 3) == b"elicence-audit-checkpoint/2:3:7:" + head.encode()
    assert checkpoint_message(7, head, 0) == b"elicence-audit-checkpoint/2:0:7:" + head.encode()
    assert checkpoint_digest(3, 7, head) == hashlib.sha256(
        b"elicence-audit-checkpoint/2:3:7:" + head.encode()).digest()


def checkpoint_row(number: int, seq: int, token: bytes | None = b"t") -> AuditCheckpoint:
    return AuditCheckpoint(seq=seq, number=number, hash=f"{seq:064x}", at=NOW, key_ref="k",
                           signature=b"s", timestamp_token=token)


def test_the_next_number_is_one_more_than_the_highest() -> None:
    engine = memory_engine()
    with Session(engine) as session:
        assert next_checkpoint_number(session) == 1
        session.add(checkpoint_row(1, 10))
        session.add(checkpoint_row(5, 20))
        session.add(checkpoint_row(2, 30))
        session.flush()
        assert next_checkpoint_number(session) == 6


def test_the_latest_checkpoint_is_the_highest_numbered_with_a_token() -> None:
    engine = memory_engine()
    with Session(engine) as session:
        assert latest_checkpoint(session) is None
        session.add(checkpoint_row(1, 10, None))
        session.flush()
        assert latest_checkpoint(session) is None
        session.add(checkpoint_row(2, 20))
        session.add(checkpoint_row(3, 30))
        session.add(checkpoint_row(4, 40, None))
        session.flush()
        latest = latest_checkpoint(session)
        assert latest is not None and (latest.number, latest.seq) == (3, 30)


def test_a_checkpoint_as_published() -> None:
    beijing = timezone(timedelta(hours=8))
    row = AuditCheckpoint(seq=40, number=4, hash="c" * 64, key_ref="k", signature=b"s",
                          at=datetime(2026, 3, 14, 10, 0, 5, 123456, tzinfo=beijing),
                          timestamp_token=b"\x01\x02\xff")
    assert checkpoint_json(row) == {"sequence": 4, "entry": 40, "hash": "c" * 64,
                                    "at": "2026-03-14T02:00:05Z", "timestamp": "AQL/"}
    row.timestamp_token = None
    row.at = datetime(2026, 3, 14, 2, 0, 5)  # naive, as SQLite hands it back: UTC
    assert checkpoint_json(row) == {"sequence": 4, "entry": 40, "hash": "c" * 64,
                                    "at": "2026-03-14T02:00:05Z", "timestamp": None}


# --- making checkpoints -----------------------------------------------------------------------

def test_a_checkpoint_every_n_entries_and_not_between() -> None:
    made = audited(7, every=3)
    entries = made.entries()
    assert [(c.number, c.seq, c.hash) for c in made.checkpoints()] == [
        (1, 3, entries[2].hash), (2, 6, entries[5].hash)]
    with Session(made.engine) as session:
        assert verify_chain(session).intact


def test_checkpoints_made_in_one_append_are_numbered_in_turn() -> None:
    made = audited(3, every=1, one_by_one=False)
    entries = made.entries()
    assert [(c.number, c.seq, c.hash) for c in made.checkpoints()] == [
        (1, 1, entries[0].hash), (2, 2, entries[1].hash), (3, 3, entries[2].hash)]
    assert made.report() == CheckpointReport(3)


def test_the_default_interval_is_a_hundred_entries() -> None:
    engine = memory_engine()
    store = MemoryKeyStore()
    checkpointer = AuditCheckpointer(store, FixedClock(NOW))
    checkpointer.ensure_key()
    log = AuditLog(FixedClock(NOW), checkpointer)
    with Session(engine) as session:
        log.append_many(session, [Pending("a", "b", "c", str(i)) for i in range(99)])
        assert session.exec(select(AuditCheckpoint)).all() == []
        log.append(session, actor="a", action="b", object_type="c", object_id="99")
        assert [c.seq for c in session.exec(select(AuditCheckpoint))] == [100]


@pytest.mark.parametrize("every", [0, -1])
def test_the_interval_must_be_positive(every: int) -> None:
    with pytest.raises(ValueError, match=r"^checkpoint interval must be positive$"):
        AuditCheckpointer(MemoryKeyStore(), FixedClock(NOW), every)


def test_the_audit_key_is_made_once() -> None:
    store = MemoryKeyStore()
    checkpointer = AuditCheckpointer(store, FixedClock(NOW), 1)
    assert not store.exists("audit-checkpoint")
    assert checkpointer.ensure_key() == AUDIT_KEY
    assert checkpointer.ensure_key() == AUDIT_KEY  # a second create would fail in this store
    assert store.versions("audit-checkpoint") == [AUDIT_KEY]


def test_a_checkpoint_signs_the_numbered_message_and_is_stamped_over_its_digest() -> None:
    made = audited(4, every=2)
    entries = made.entries()
    checkpoints = made.checkpoints()
    assert [(c.number, c.seq, c.hash, c.key_ref, as_utc(c.at)) for c in checkpoints] == [
        (1, 2, entries[1].hash, "memory:audit-checkpoint:v1", LATER),
        (2, 4, entries[3].hash, "memory:audit-checkpoint:v1", LATER)]
    public = made.store.public_key(AUDIT_KEY)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    digests = [hashlib.sha256(message(c.number, c.seq, c.hash)).digest() for c in checkpoints]
    assert made.store.signed == [(AUDIT_KEY, d) for d in digests]
    assert made.timestamps is not None and made.timestamps.stamped == digests
    for checkpoint, digest in zip(checkpoints, digests, strict=True):
        public.verify(checkpoint.signature, message(checkpoint.number, checkpoint.seq,
                                                     checkpoint.hash), ec.ECDSA(hashes.SHA256()))
        assert checkpoint.timestamp_token is not None
        assert imprint(checkpoint.timestamp_token) == ("sha256", digest)
        assert token_problem(checkpoint.timestamp_token, digest, [tsa_unit()[1]]) is None
    appending, *stamping = made.timestamps.sessions  # stamped in the append's transaction
    assert stamping == [appending, appending]
    with Session(made.engine) as session:
        checker = made.checker()
        assert checker.verify(session) == (2, None)
        assert isinstance(checker.timestamps, Timestamps)
        assert checker.timestamps.sessions == [session, session]


def test_without_a_tsa_checkpoints_have_no_token_and_are_checked_without_one() -> None:
    made = audited(4, every=2, timestamps=False)
    assert [(c.number, c.seq, c.timestamp_token) for c in made.checkpoints()] == [
        (1, 2, None), (2, 4, None)]
    assert made.report(timestamps=False) == CheckpointReport(2)
    assert made.report() == CheckpointReport(1, 1, 2, "checkpoint 1 (entry 2) has no timestamp")


class RefusingFirst(Timestamps):
    """A TSA that cannot stamp yet (no usable certificate): its first request is refused."""

    def __init__(self) -> None:
        super().__init__()
        self.refusals = 1

    def stamp(self, session: Session, digest: bytes) -> bytes:
        if self.refusals:
            self.refusals -= 1
            raise Unavailable("时间戳服务尚无证书 / the TSA has no certificate yet")
        return super().stamp(session, digest)


def test_a_checkpoint_the_tsa_cannot_stamp_is_left_to_the_next_interval(
        caplog: pytest.LogCaptureFixture) -> None:
    engine, store, stamps = memory_engine(), MemoryKeyStore(), RefusingFirst()
    checkpointer = AuditCheckpointer(store, FixedClock(LATER), 2, stamps)
    checkpointer.ensure_key()
    log = AuditLog(FixedClock(NOW), checkpointer)
    with caplog.at_level(logging.WARNING, logger="keys.audit"), Session(engine) as session:
        for i in range(1, 5):
            log.append(session, actor="a", action="b", object_type="c", object_id=str(i))
        session.commit()
    made = Audited(engine, store, checkpointer, stamps)
    entries = made.entries()
    assert [e.object_id for e in entries] == ["1", "2", "3", "4"]  # the audited actions stand
    assert [(c.number, c.seq, c.hash) for c in made.checkpoints()] == [(1, 4, entries[3].hash)]
    # the audit key signs nothing for the deferred checkpoint
    assert store.signed == [(AUDIT_KEY, hashlib.sha256(message(1, 4, entries[3].hash)).digest())]
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("keys.audit", logging.WARNING,
         "audit checkpoint at entry 2 deferred: 时间戳服务尚无证书 / the TSA has no certificate yet")]
    assert made.report() == CheckpointReport(1)


def test_no_checkpoint_without_the_audit_key() -> None:
    made = audited(4, every=2, key=False)
    assert made.checkpoints() == []
    assert made.store.signed == []
    assert made.report() == CheckpointReport(0)


# --- checking checkpoints ---------------------------------------------------------------------

def test_a_checkpoint_whose_key_is_gone_is_reported() -> None:
    made = audited(4, every=2)
    assert made.report(store=MemoryKeyStore()) == CheckpointReport(
        0, 1, 2, "the audit key that signed checkpoint 1 is missing")
    with Session(made.engine) as session:
        assert made.checker(store=MemoryKeyStore()).verify(session) == (0, 2)


def test_a_gap_in_the_numbers_is_reported() -> None:
    made = audited(6, every=2)
    made.tamper("DELETE FROM audit_checkpoint WHERE number = 2")
    assert made.report() == CheckpointReport(
        2, 2, 6, "checkpoint 2 is missing (checkpoint numbers have no gaps)")
    made = audited(4, every=2)
    made.tamper("DELETE FROM audit_checkpoint WHERE number = 1")
    assert made.report() == CheckpointReport(
        1, 1, 4, "checkpoint 1 is missing (checkpoint numbers have no gaps)")


def test_checkpoints_out_of_order_are_reported() -> None:
    """Checkpoint 1 made over entry 6, after checkpoint 2 over entry 4 — each signed, stamped
    and naming its entry's hash: number order is not entry order, and checkpoint 2 is named."""
    made = audited(6, every=2)
    head = made.entries()[5].hash
    made.tamper("DELETE FROM audit_checkpoint WHERE number = 3")
    made.tamper("UPDATE audit_checkpoint SET seq = 6, hash = :h, signature = :s, "
                "timestamp_token = :t WHERE number = 1", h=head,
                s=sign_with_audit_key(made.store, message(1, 6, head)),
                t=rfc3161_token(tsa_unit()[0], checkpoint_digest(1, 6, head)))
    assert made.report() == CheckpointReport(2, 2, 4, "checkpoint 2 (entry 4) is out of order")


def test_the_first_checkpoint_may_name_the_first_entry() -> None:
    made = audited(2, every=1)
    assert made.report() == CheckpointReport(2)


def test_a_bad_signature_is_reported() -> None:
    made = audited(4, every=2)
    signature = made.checkpoints()[1].signature
    made.tamper("UPDATE audit_checkpoint SET signature = :s WHERE number = 2",
                s=signature[:-1] + bytes([signature[-1] ^ 1]))
    assert made.report() == CheckpointReport(
        2, 2, 4, "the signature of checkpoint 2 (entry 4) does not match")
    with Session(made.engine) as session:
        assert made.checker().verify(session) == (2, 4)


def test_a_renumbered_checkpoint_does_not_verify() -> None:
    made = audited(4, every=2)
    made.tamper("DELETE FROM audit_checkpoint WHERE number = 1")
    made.tamper("UPDATE audit_checkpoint SET number = 1 WHERE number = 2")
    assert made.report() == CheckpointReport(
        1, 1, 4, "the signature of checkpoint 1 (entry 4) does not match")


def test_a_checkpoint_signed_by_another_key_does_not_verify() -> None:
    made = audited(2, every=2)
    other = MemoryKeyStore()
    other.create("audit-checkpoint")
    head = made.checkpoints()[0].hash
    made.tamper("UPDATE audit_checkpoint SET signature = :s",
                s=sign_with_audit_key(other, message(1, 2, head)))
    assert made.report() == CheckpointReport(
        1, 1, 2, "the signature of checkpoint 1 (entry 2) does not match")
    assert made.report(store=other) == CheckpointReport(1)


class Ed25519Store(MemoryKeyStore):
    """An audit key that is not P-256: nothing verifies under it."""

    def public_key(self, ref: KeyRef) -> PublicKeyTypes:
        return ed25519.Ed25519PrivateKey.generate().public_key()


def test_a_key_that_is_not_p256_verifies_nothing() -> None:
    made = audited(2, every=2)
    store = Ed25519Store()
    store.create("audit-checkpoint")
    assert made.report(store=store) == CheckpointReport(
        1, 1, 2, "the signature of checkpoint 1 (entry 2) does not match")
    cp = made.checkpoints()[0]
    assert not made.checker(store=store).signed(1, 2, cp.hash, cp.signature)


def test_an_entry_whose_hash_changed_is_reported() -> None:
    """The chain rewritten whole (every hash recomputed) links again, but the checkpoint's
    signed hash no longer names the entry."""
    made = audited(4, every=2)
    made.tamper("UPDATE audit_entry SET hash = :h WHERE seq = 4", h="e" * 64)
    assert made.report() == CheckpointReport(
        2, 2, 4, "entry 4 no longer has the hash checkpoint 2 (entry 4) signed")
    made = audited(4, every=2)
    made.tamper("DELETE FROM audit_entry WHERE seq = 2")
    assert made.report() == CheckpointReport(
        1, 1, 2, "entry 2 no longer has the hash checkpoint 1 (entry 2) signed")


def test_a_stripped_token_is_reported() -> None:
    made = audited(4, every=2)
    made.tamper("UPDATE audit_checkpoint SET timestamp_token = NULL WHERE number = 2")
    assert made.report() == CheckpointReport(2, 2, 4, "checkpoint 2 (entry 4) has no timestamp")
    assert made.report(timestamps=False) == CheckpointReport(2)


def test_a_token_moved_from_another_checkpoint_is_reported() -> None:
    made = audited(4, every=2)
    made.tamper("UPDATE audit_checkpoint SET timestamp_token = :t WHERE number = 1",
                t=made.checkpoints()[1].timestamp_token)
    assert made.report() == CheckpointReport(
        1, 1, 2, "the timestamp of checkpoint 1 (entry 2) does not verify: "
        "its message imprint is not this checkpoint's hash")


def test_a_token_of_another_tsa_is_reported() -> None:
    made = audited(4, every=2)
    cp = made.checkpoints()[1]
    rogue = rfc3161_token(tsa_unit(ROGUE)[0], checkpoint_digest(2, 4, cp.hash))
    made.tamper("UPDATE audit_checkpoint SET timestamp_token = :t WHERE number = 2", t=rogue)
    assert made.report() == CheckpointReport(
        2, 2, 4, "the timestamp of checkpoint 2 (entry 4) does not verify: "
        "it is not signed by a TSA certificate of this domain")


# --- checkpoints from before numbering ----------------------------------------------------------

def legacy(made: Audited) -> None:
    """Rewrite every checkpoint as made before numbering: signed over the first message form,
    no token (revision 0011 gave them their numbers)."""
    for cp in made.checkpoints():
        made.tamper("UPDATE audit_checkpoint SET signature = :s, timestamp_token = NULL "
                    "WHERE number = :n", n=cp.number,
                    s=sign_with_audit_key(made.store, checkpoint_message(cp.seq, cp.hash)))


def test_legacy_checkpoints_still_verify() -> None:
    made = audited(4, every=2, timestamps=False)
    legacy(made)
    assert made.report() == CheckpointReport(2)
    assert made.report(timestamps=False) == CheckpointReport(2)


def test_a_legacy_signature_with_a_token_does_not_verify() -> None:
    made = audited(4, every=2)
    tokens = [cp.timestamp_token for cp in made.checkpoints()]
    legacy(made)
    made.tamper("UPDATE audit_checkpoint SET timestamp_token = :t WHERE number = 2", t=tokens[1])
    assert made.report() == CheckpointReport(
        2, 2, 4, "the signature of checkpoint 2 (entry 4) does not match")


def test_a_legacy_checkpoint_still_checks_its_entry() -> None:
    made = audited(4, every=2, timestamps=False)
    legacy(made)
    made.tamper("UPDATE audit_entry SET hash = :h WHERE seq = 2", h="e" * 64)
    assert made.report() == CheckpointReport(
        1, 1, 2, "entry 2 no longer has the hash checkpoint 1 (entry 2) signed")


# --- the signature of an exported checkpoint ----------------------------------------------------

def test_signed_holds_only_for_the_audit_keys_signature_over_that_checkpoint() -> None:
    made = audited(4, every=2)
    cp = made.checkpoints()[1]
    checker = made.checker()
    assert checker.signed(2, 4, cp.hash, cp.signature)
    assert not checker.signed(1, 4, cp.hash, cp.signature)
    assert not checker.signed(2, 3, cp.hash, cp.signature)
    assert not checker.signed(2, 4, "f" * 64, cp.signature)
    assert not checker.signed(2, 4, cp.hash, cp.signature[:-1] + bytes([cp.signature[-1] ^ 1]))
    legacy_signature = sign_with_audit_key(made.store, checkpoint_message(4, cp.hash))
    assert not checker.signed(2, 4, cp.hash, legacy_signature)
    assert not made.checker(store=MemoryKeyStore()).signed(2, 4, cp.hash, cp.signature)


# --- the anchor ------------------------------------------------------------------------------

def test_the_anchor_holds_on_an_untouched_chain() -> None:
    made = audited(6, every=2)
    for cp in made.checkpoints():
        assert made.anchor(cp.number, cp.seq, cp.hash) is None


def test_a_truncated_chain_loses_the_anchored_entry() -> None:
    made = audited(6, every=2)
    head = made.checkpoints()[1].hash
    made.tamper("DELETE FROM audit_entry WHERE seq >= 4")
    assert made.anchor(2, 4, head) == "the chain no longer holds entry 4 (truncated)"


def test_a_rewritten_entry_is_not_the_anchored_one() -> None:
    made = audited(6, every=2)
    head = made.checkpoints()[1].hash
    made.tamper("UPDATE audit_entry SET hash = :h WHERE seq = 4", h="e" * 64)
    assert made.anchor(2, 4, head) == "entry 4 was rewritten: its hash is not the anchored one"


def test_a_checkpoint_gone_or_replaced_is_reported() -> None:
    made = audited(6, every=2)
    head = made.checkpoints()[1].hash
    made.tamper("DELETE FROM audit_checkpoint WHERE number = 2")
    assert made.anchor(2, 4, head) == "checkpoint 2 is no longer in the database"
    made = audited(6, every=2)
    made.tamper("UPDATE audit_checkpoint SET seq = 5 WHERE number = 2")
    assert made.anchor(2, 4, head) == "checkpoint 2 in the database is not the anchored one"
    made = audited(6, every=2)
    head = made.checkpoints()[1].hash
    made.tamper("UPDATE audit_checkpoint SET hash = :h WHERE number = 2", h="e" * 64)
    assert made.anchor(2, 4, head) == "checkpoint 2 in the database is not the anchored one"


def test_the_anchor_does_not_trust_another_checkpoint_with_that_entry() -> None:
    made = audited(6, every=2)
    cps = made.checkpoints()
    assert made.anchor(3, 4, cps[1].hash) == "checkpoint 3 in the database is not the anchored one"
    assert made.anchor(4, 4, cps[1].hash) == "checkpoint 4 is no longer in the database"


def test_published_checkpoint_is_the_latest_stamped_one() -> None:
    made = audited(6, every=2)
    cps = made.checkpoints()
    with Session(made.engine) as session:
        latest = latest_checkpoint(session)
        assert latest is not None
        assert checkpoint_json(latest) == {
            "sequence": 3, "entry": 6, "hash": cps[2].hash, "at": "2026-03-14T02:05:00Z",
            "timestamp": base64.b64encode(cps[2].timestamp_token or b"").decode()}
    assert as_utc(cps[2].at) == datetime(2026, 3, 14, 2, 5, tzinfo=UTC)
