"""Adapters that let other libraries sign through the key store.

``cryptography``'s certificate, CRL and OCSP builders accept any object that *is* a private key
and has ``sign()``; these classes are such keys, but their ``sign()`` asks the store. The key
material stays wherever the store keeps it, and every use is reported to a listener for the audit.
"""

from __future__ import annotations

from typing import NoReturn

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from keys.store import HashAlgorithm, KeyAlgorithm, KeyRef, KeyStore, KeyUseListener

_BY_NAME = {h.value: h for h in HashAlgorithm}


Data = bytes | bytearray | memoryview


def _digest(data: Data, algorithm: object) -> tuple[bytes, HashAlgorithm]:
    if isinstance(algorithm, utils.Prehashed):
        return bytes(data), _BY_NAME[algorithm._algorithm.name]
    if not isinstance(algorithm, hashes.HashAlgorithm) or algorithm.name not in _BY_NAME:
        raise TypeError(f"unsupported hash {algorithm!r}")
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize(), _BY_NAME[algorithm.name]


def _no_export() -> NoReturn:
    raise TypeError("keys held by the key store cannot be exported")


class _Base:
    def __init__(
        self, store: KeyStore, ref: KeyRef, purpose: str, listener: KeyUseListener | None
    ) -> None:
        self._store = store
        self._ref = ref
        self._purpose = purpose
        self._listener = listener
        self._public = store.public_key(ref)

    @property
    def ref(self) -> KeyRef:
        return self._ref

    def _sign_digest(self, digest: bytes, algorithm: HashAlgorithm) -> bytes:
        signature = self._store.sign_digest(self._ref, digest, algorithm)
        if self._listener is not None:
            self._listener.key_used(self._ref, self._purpose)
        return signature


class StoreECKey(_Base, ec.EllipticCurvePrivateKey):
    def sign(self, data: Data, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise TypeError("only ECDSA is supported")
        digest, name = _digest(data, signature_algorithm.algorithm)
        return self._sign_digest(digest, name)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        assert isinstance(self._public, ec.EllipticCurvePublicKey)
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self.public_key().curve

    @property
    def key_size(self) -> int:
        return self.public_key().key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise TypeError("seal keys are for signing only")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _no_export()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _no_export()

    def __copy__(self) -> StoreECKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> StoreECKey:
        return self


class StoreRSAKey(_Base, rsa.RSAPrivateKey):
    def sign(
        self,
        data: Data,
        padding_: padding.AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo,
    ) -> bytes:
        if not isinstance(padding_, padding.PKCS1v15):
            raise TypeError("only PKCS#1 v1.5 is supported")
        digest, name = _digest(data, algorithm)
        return self._sign_digest(digest, name)

    def public_key(self) -> rsa.RSAPublicKey:
        assert isinstance(self._public, rsa.RSAPublicKey)
        return self._public

    @property
    def key_size(self) -> int:
        return self.public_key().key_size

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise TypeError("seal keys are for signing only")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _no_export()

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _no_export()

    def __copy__(self) -> StoreRSAKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> StoreRSAKey:
        return self


def private_key_for(
    store: KeyStore, ref: KeyRef, purpose: str, listener: KeyUseListener | None = None
) -> StoreECKey | StoreRSAKey:
    """A private-key object for ``cryptography`` builders, signing through the store."""
    if store.algorithm(ref) is KeyAlgorithm.EC_P256:
        return StoreECKey(store, ref, purpose, listener)
    return StoreRSAKey(store, ref, purpose, listener)
