"""pyHanko's ``Signer`` extension point, driven through the key store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from asn1crypto import cms
from pyhanko.sign.attributes import CMSAttributeProvider, SigningCertificateV2Provider
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute
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

    # asn1crypto encodes a value it built again each time it is dumped or nested, and pyHanko
    # nests the signed attributes (with the ESS signing-certificate-v2 attribute and the seal's
    # issuer name in it) and the timestamp token several levels deep: ~40 encodings of the
    # same attribute per seal, most of the seal's time. Each part is encoded once here and
    # handed on parsed, which asn1crypto copies as bytes. The DER is the same.

    def _signed_attr_providers(self, *args: Any, **kwargs: Any) -> Iterator[CMSAttributeProvider]:
        for provider in super()._signed_attr_providers(*args, **kwargs):
            yield _EncodedOnce(provider)

    async def signed_attrs(self, *args: Any, **kwargs: Any) -> cms.CMSAttributes:
        attrs = await super().signed_attrs(*args, **kwargs)
        return cms.CMSAttributes.load(attrs.dump())

    async def unsigned_attrs(self, *args: Any, **kwargs: Any) -> cms.CMSAttributes | None:
        attrs = await super().unsigned_attrs(*args, **kwargs)
        return None if attrs is None else cms.CMSAttributes.load(attrs.dump())

    def signer_info(self, *args: Any, **kwargs: Any) -> cms.SignerInfo:
        info = super().signer_info(*args, **kwargs)
        return cms.SignerInfo.load(info.dump())

    def _package_signature(self, **kwargs: Any) -> cms.ContentInfo:
        return cms.ContentInfo.load(super()._package_signature(**kwargs).dump())


class _EncodedOnce(CMSAttributeProvider):
    """A signed attribute from pyHanko's provider, handed on parsed; the ESS
    signing-certificate-v2 attribute, which depends on the seal certificate alone, encoded
    once per certificate."""

    def __init__(self, inner: CMSAttributeProvider) -> None:
        self._inner = inner
        self.attribute_type = inner.attribute_type

    async def build_attr_value(self, dry_run: bool = False) -> Any:
        return await self._inner.build_attr_value(dry_run=dry_run)  # type: ignore[no-untyped-call]

    async def get_attribute(self, dry_run: bool = False) -> cms.CMSAttribute | None:
        if isinstance(self._inner, SigningCertificateV2Provider):
            return cms.CMSAttribute.load(_signing_certificate(self._inner.signing_cert.dump()))
        attr = await self._inner.get_attribute(dry_run=dry_run)
        return None if attr is None else cms.CMSAttribute.load(attr.dump())


@lru_cache(maxsize=64)
def _signing_certificate(certificate_der: bytes) -> bytes:
    value = as_signing_certificate_v2(certificate(certificate_der))
    return bytes(simple_cms_attribute("signing_certificate_v2", value).dump())  # type: ignore[no-untyped-call]
