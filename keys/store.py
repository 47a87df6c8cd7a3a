"""The one interface every key store implements.

The rest of the service never sees key material: it holds a :class:`KeyRef` and asks the store to
sign a digest. Certificates, CRLs, OCSP responses and seals are all signed through this protocol,
whatever the custody (encrypted file, Vault/OpenBao transit, PKCS#11 token).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes


class KeyAlgorithm(str, Enum):
    EC_P256 = "ec-p256"
    RSA_3072 = "rsa-3072"
    SM2 = "sm2"  # GB/T 32918; the soft store only (keys.sm2)


class HashAlgorithm(str, Enum):
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"
    SM3 = "sm3"  # GB/T 32905; an SM2 key signs e = SM3(Z || M) (keys.sm2.sign_message)


@dataclass(frozen=True)
class KeyRef:
    """Names a key version inside a store. Safe to store in a database row."""

    store: str
    label: str
    version: int = 1

    def __str__(self) -> str:
        return f"{self.store}:{self.label}:v{self.version}"

    @classmethod
    def parse(cls, text: str) -> KeyRef:
        store, label, version = text.rsplit(":", 2)
        if not version.startswith("v"):
            raise ValueError(f"bad key reference {text!r}")
        return cls(store=store, label=label, version=int(version[1:]))


def check_label(label: str) -> str:
    """Labels are ASCII letters, digits, ``-`` and ``_`` only: every store appends ``.v<N>`` or
    ``:v<N>`` to them, and that suffix must parse back without ambiguity."""
    bare = label.replace("-", "").replace("_", "")
    if not label or len(label) > 64 or not (bare.isascii() and bare.isalnum()):
        raise ValueError(f"bad key label {label!r}")
    return label


@dataclass(frozen=True)
class KeyInfo:
    ref: KeyRef
    algorithm: KeyAlgorithm


class KeyUseListener(Protocol):
    """Told of every signature, so each key use leaves an audit entry."""

    def key_used(self, ref: KeyRef, purpose: str) -> None: ...


class KeyStore(Protocol):
    name: str
    # Whether the keys are used without leaving this process (the soft store's files); Vault
    # and PKCS#11 are calls to a service or a token. See :func:`in_this_process`.
    in_process: bool

    def create(self, label: str, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> KeyRef:
        """Create a new key; refuses a label that exists."""
        ...

    def public_key(self, ref: KeyRef) -> PublicKeyTypes:
        """A ``cryptography`` public key; SM2 keys have none (``cryptography`` has no SM2):
        raises ``InvalidInput`` for them, use :meth:`public_key_der`."""
        ...

    def public_key_der(self, ref: KeyRef) -> bytes:
        """The SubjectPublicKeyInfo DER of any key, SM2 included."""
        ...

    def algorithm(self, ref: KeyRef) -> KeyAlgorithm: ...

    def sign_digest(self, ref: KeyRef, digest: bytes, hash_algorithm: HashAlgorithm) -> bytes:
        """Sign a prehashed digest. ECDSA signatures are DER; RSA is PKCS#1 v1.5; SM2 signs the
        SM3 digest e = SM3(Z || M) (``HashAlgorithm.SM3``) and returns DER ``SEQUENCE {r, s}``."""
        ...

    def exists(self, label: str) -> bool: ...

    def list(self) -> list[KeyInfo]:
        """Every version of every key. Raises ``Unavailable`` when the store cannot be reached,
        which is how ``/readyz`` probes it."""
        ...

    def versions(self, label: str) -> builtins.list[KeyRef]:
        """The versions of one key, oldest first; the last is the newest."""
        ...

    def rotate(self, label: str) -> KeyRef:
        """Make a new version of the key, of the same algorithm, and return its reference.

        Older versions stay: their public keys and signatures remain usable, so certificates
        and seals made with them still verify. The store signs with the version a KeyRef names,
        never silently with the newest.
        """
        ...


def in_this_process(store: KeyStore) -> bool:
    """Whether ``store`` is used without leaving this process, so that an event loop may call
    it (``verify.desk``): a key service or a token may keep it waiting."""
    return bool(getattr(store, "in_process", False))
