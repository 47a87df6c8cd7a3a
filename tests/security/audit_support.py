"""Collaborators of the audit checkpoint tests (``test_audit_checkpoints.py``): a chain written
with a checkpointer over an in-memory audit key and the product's own TSA unit, and ways to read
and tamper with it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asn1crypto import cms, tsp
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.audit import AuditCheckpoint, AuditEntry, AuditLog, Pending, anchor_problem
from core.clock import FixedClock
from keys.audit import AuditCheckpointer, CheckpointReport
from keys.store import HashAlgorithm, KeyRef
from tests.security.support import NOW, MemoryKeyStore, memory_engine, rfc3161_token, tsa_unit
from trust.audit_anchor import token_problem

AUDIT_KEY = KeyRef("memory", "audit-checkpoint", 1)
LATER = NOW + timedelta(minutes=5)  # the checkpointer's clock, apart from the entries'
ROGUE = "其他时间戳 Other TSA"


class Timestamps:
    """The checkpointer's TSA: the product's TSA unit stamps; the check is the product's own
    token check against this TSA's certificate only. Both note the session they were handed:
    the domain's TSA works in the caller's transaction (its key and certificates are rows)."""

    def __init__(self, stamping: str = "测试时间戳 Test TSA") -> None:
        self.unit = tsa_unit(stamping)[0]
        self.certificate = tsa_unit()[1]
        self.stamped: list[bytes] = []
        self.sessions: list[Session] = []

    def stamp(self, session: Session, digest: bytes) -> bytes:
        self.sessions.append(session)
        self.stamped.append(digest)
        return rfc3161_token(self.unit, digest)

    def check(self, session: Session, digest: bytes, token: bytes) -> str | None:
        self.sessions.append(session)
        return token_problem(token, digest, [self.certificate])


@dataclass
class Audited:
    engine: Engine
    store: MemoryKeyStore
    checkpointer: AuditCheckpointer
    timestamps: Timestamps | None

    def checker(self, *, timestamps: bool = True, store: MemoryKeyStore | None = None,
                ) -> AuditCheckpointer:
        return AuditCheckpointer(store or self.store, FixedClock(LATER), 2,
                                 Timestamps() if timestamps else None)

    def report(self, **kwargs: Any) -> CheckpointReport:
        with Session(self.engine) as session:
            return self.checker(**kwargs).check(session)

    def checkpoints(self) -> list[AuditCheckpoint]:
        with Session(self.engine) as session:
            return list(session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.number))))

    def entries(self) -> list[AuditEntry]:
        with Session(self.engine) as session:
            return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))))

    def tamper(self, sql: str, **params: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(sql), params)

    def anchor(self, number: int, seq: int, head: str) -> str | None:
        with Session(self.engine) as session:
            return anchor_problem(session, number, seq, head)


def audited(entries: int, every: int = 2, *, timestamps: bool = True, key: bool = True,
            one_by_one: bool = True) -> Audited:
    engine = memory_engine()
    store = MemoryKeyStore()
    stamps = Timestamps() if timestamps else None
    checkpointer = AuditCheckpointer(store, FixedClock(LATER), every, stamps)
    if key:
        assert checkpointer.ensure_key() == AUDIT_KEY
    log = AuditLog(FixedClock(NOW), checkpointer)
    pending = [Pending(f"a{i}", "licence.issue", "licence", f"L{i}") for i in range(1, entries + 1)]
    with Session(engine) as session:
        if stamps is not None:
            stamps.sessions.append(session)  # the session every stamp must be made in
        if one_by_one:
            for item in pending:
                log.append_many(session, [item])
        else:
            log.append_many(session, pending)
        session.commit()
    return Audited(engine, store, checkpointer, stamps)


def message(number: int, seq: int, head: str) -> bytes:
    return f"elicence-audit-checkpoint/2:{number}:{seq}:{head}".encode()


def imprint(token: bytes) -> tuple[str, bytes]:
    """The hash algorithm and hashed message a token stamps, read from its TSTInfo."""
    content = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"]
    found = tsp.TSTInfo.load(bytes(content.contents))["message_imprint"]
    return found["hash_algorithm"]["algorithm"].native, found["hashed_message"].native


def sign_with_audit_key(store: MemoryKeyStore, data: bytes) -> bytes:
    return store.sign_digest(AUDIT_KEY, hashlib.sha256(data).digest(), HashAlgorithm.SHA256)
