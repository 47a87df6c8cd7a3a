"""Small, fast collaborators for the security unit tests: an in-memory database holding the
tables these checks read, an in-memory key store, a pinned clock. Nothing here builds a demo
domain, so each test runs in milliseconds (these tests are also the mutation run's test set)."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel, create_engine

from core.clock import FixedClock
from keys.soft import hash_for
from keys.store import HashAlgorithm, KeyAlgorithm, KeyInfo, KeyRef

NOW = datetime(2026, 3, 14, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


def clock() -> FixedClock:
    return FixedClock(NOW)


def memory_engine() -> Engine:
    """Every table of the product's models, in a private in-memory SQLite database."""
    import seals.clients
    import seals.models  # noqa: F401

    engine = create_engine("sqlite://", connect_args={"check_same_thread": False},
                           poolclass=StaticPool)
    SQLModel.metadata.create_all(engine)
    return engine


class MemoryKeyStore:
    """The key store protocol over keys kept in memory (P-256 only)."""

    name = "memory"

    def __init__(self) -> None:
        self._keys: dict[KeyRef, ec.EllipticCurvePrivateKey] = {}
        self.signed: list[tuple[KeyRef, bytes]] = []

    def create(self, label: str, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> KeyRef:
        ref = KeyRef(self.name, label, 1)
        assert ref not in self._keys
        self._keys[ref] = ec.generate_private_key(ec.SECP256R1())
        return ref

    def exists(self, label: str) -> bool:
        return any(ref.label == label for ref in self._keys)

    def versions(self, label: str) -> builtins.list[KeyRef]:
        return sorted((r for r in self._keys if r.label == label), key=lambda r: r.version)

    def list(self) -> builtins.list[KeyInfo]:
        return [KeyInfo(ref, KeyAlgorithm.EC_P256) for ref in self._keys]

    def algorithm(self, ref: KeyRef) -> KeyAlgorithm:
        return KeyAlgorithm.EC_P256

    def public_key(self, ref: KeyRef) -> PublicKeyTypes:
        return self._keys[ref].public_key()

    def sign_digest(self, ref: KeyRef, digest: bytes, hash_algorithm: HashAlgorithm) -> bytes:
        self.signed.append((ref, digest))
        return self._keys[ref].sign(digest, ec.ECDSA(Prehashed(hash_for(hash_algorithm))))
