"""pyHanko's ``Signer`` extension point, driven through the key store."""

from __future__ import annotations

import hashlib

from pyhanko.sign.signers import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore

from keys.store import HashAlgorithm, KeyAlgorithm, KeyRef, KeyStore, KeyUseListener
from trust.parsed import certificate


class KeyStoreSigner(Signer):
    """Signs the CMS signed attributes by sending their digest to the key store."""

    def __init__(
        self,
        *,
        store: KeyStore,
        ref: KeyRef,
        certificate_der: bytes,
        chain_der: list[bytes],
        listener: KeyUseListener | None,
    ) -> None:
        cert = certificate(certificate_der)
        registry = SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [certificate(der) for der in chain_der]
        )
        super().__init__(signing_cert=cert, cert_registry=registry, embed_roots=False)
        self._store = store
        self._ref = ref
        self._listener = listener
        self._algorithm = store.algorithm(ref)

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if dry_run:
            # Placeholder of the largest size the real signature can take.
            return bytes(72 if self._algorithm is KeyAlgorithm.EC_P256 else 384)
        algorithm = HashAlgorithm(digest_algorithm.lower())
        digest = hashlib.new(algorithm.value, data).digest()
        signature = self._store.sign_digest(self._ref, digest, algorithm)
        if self._listener is not None:
            self._listener.key_used(self._ref, "seal")
        return signature
