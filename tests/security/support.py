"""Small, fast collaborators for the security unit tests: an in-memory database holding the
tables these checks read, an in-memory key store, a pinned clock. Nothing here builds a demo
domain, so each test runs in milliseconds (these tests are also the mutation run's test set)."""

from __future__ import annotations

import builtins
import functools
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
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
    in_process = True

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


def tsa_unit(name: str = "测试时间戳 Test TSA") -> tuple[Any, x509.Certificate]:
    """The product's RFC 3161 TSA unit (``trust/tsa.py``) with a throwaway P-256 key in a memory
    key store and a certificate for it under a throwaway root; made once per process per name.
    Returns (``trust.tsa.TimeStampUnit``, its certificate)."""
    return _tsa_unit(name)


@functools.cache
def _tsa_unit(name: str) -> tuple[Any, x509.Certificate]:
    from asn1crypto import x509 as asn1_x509

    from trust.tsa import TimeStampUnit

    store = MemoryKeyStore()
    ref = store.create("tsa")
    public = store.public_key(ref)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    root_key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "测试根 Test root")]))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    asn1 = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    return TimeStampUnit(store, clock(), ref, asn1), certificate


def rfc3161_token(unit: Any, digest: bytes) -> bytes:
    """A DER TimeStampToken of ``unit`` (a ``trust.tsa.TimeStampUnit``) over the SHA-256
    ``digest``, asked for as the product asks its own TSA."""
    from asn1crypto import tsp

    request = tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
        "nonce": 7,
        "cert_req": False,
    })
    response = unit.respond(request)
    assert response["status"]["status"].native == "granted"
    return bytes(response["time_stamp_token"].dump())
