"""The published versions of one P-256 signing key in the key store, newest first.

The QR key (``licences.qrkeys``) and the credential key (``trust.jose``) are both one label whose
every version stays published, so a rotation does not break what was signed before, and whose
newest version signs. The store is listed again every few minutes, or at once when asked for a
key id it does not know, so a version rotated in by another process is found without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from threading import Lock
from typing import Generic, Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec

from core.errors import Conflict, Unavailable
from keys.store import (
    HashAlgorithm,
    KeyAlgorithm,
    KeyRef,
    KeyStore,
    KeyUseListener,
    in_this_process,
)

RELIST_SECONDS = 300.0  # a version rotated in by another process is picked up this soon
# An unknown key id lists the store again at most this often: a flood of forged payloads with
# made-up key ids costs one listing a second, not one each.
MISS_RELIST_SECONDS = 1.0


class Published(Protocol):
    @property
    def kid(self) -> Hashable: ...

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey: ...

    @property
    def ref(self) -> KeyRef | None: ...


K = TypeVar("K", bound=Published)


class P256Versions(Generic[K]):
    def __init__(
        self,
        store: KeyStore,
        label: str,
        published_as: Callable[[ec.EllipticCurvePublicKey, KeyRef], K],
        name: str,
    ) -> None:
        self._store = store
        self._label = label
        self._published_as = published_as
        self._name = name  # what the key is called in an error: "QR", "凭证"
        self._lock = Lock()
        self._keys: list[K] | None = None
        self._listed_at = 0.0

    def ensure(self) -> bool:
        """Create the key if the store has none; True when it was created now."""
        if self._store.exists(self._label):
            return False
        try:
            self._store.create(self._label, KeyAlgorithm.EC_P256)
        except Conflict:  # another process created it first
            return False
        finally:
            self._keys = None
        return True

    def published(self, *, refresh: bool = False) -> list[K]:
        """Every version, newest first."""
        with self._lock:
            stale = time.monotonic() - self._listed_at > RELIST_SECONDS
            if self._keys is None or refresh or stale:
                found = []
                label = self._label
                refs = self._store.versions(label) if self._store.exists(label) else []
                for ref in reversed(refs):  # newest first: that one signs
                    public = self._store.public_key(ref)
                    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
                        public.curve, ec.SECP256R1
                    ):
                        raise Unavailable(
                            f"{self._name}签名密钥须为 P-256 / {ref} is not a P-256 key"
                        )
                    found.append(self._published_as(public, ref))
                self._keys = found
                self._listed_at = time.monotonic()
            return list(self._keys)

    def public_key(self, kid: Hashable) -> ec.EllipticCurvePublicKey | None:
        """The key named by ``kid``; the store is listed again before giving up, unless it
        was listed within :data:`MISS_RELIST_SECONDS`."""
        for refresh in (False, True):
            if refresh and time.monotonic() - self._listed_at < MISS_RELIST_SECONDS:
                return None
            for key in self.published(refresh=refresh):
                if key.kid == kid:
                    return key.public_key
        return None

    def listed_key(self, kid: Hashable) -> ec.EllipticCurvePublicKey | None:
        """The key named by ``kid`` among the versions listed already, without asking the
        store (None: not listed, or not listed yet): for a thread that must not wait on it."""
        with self._lock:
            keys = self._keys
        for key in keys or ():
            if key.kid == kid:
                return key.public_key
        return None

    @property
    def in_process(self) -> bool:
        """Whether listing the versions never leaves this process (``keys.store``)."""
        return in_this_process(self._store)

    def signer(
        self, purpose: str, listener: KeyUseListener | None
    ) -> tuple[K, Callable[[bytes], bytes]]:
        """The newest version (created if the store has none) and a function that signs a
        SHA-256 digest with it (DER ECDSA), each use reported to ``listener``."""
        keys = self.published()
        if not keys:
            self.ensure()
            keys = self.published(refresh=True)
        key = keys[0]
        ref = key.ref
        assert ref is not None

        def sign_digest(digest: bytes) -> bytes:
            signature = self._store.sign_digest(ref, digest, HashAlgorithm.SHA256)
            if listener is not None:
                listener.key_used(ref, purpose)
            return signature

        return key, sign_digest
