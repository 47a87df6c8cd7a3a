"""SM3 digests and SM2 signatures (GB/T 32918, GB/T 32905) for the national form of a licence.

SM3 is ``cryptography``'s. SM2 is the system OpenSSL 3 (``libcrypto.so.3``, kept up by Debian's
security team) through ctypes: ``cryptography`` has no SM2, and a pure-Python SM2 costs tens of
milliseconds a signature where OpenSSL takes about a hundred microseconds (the figures and the
other candidates are in the architecture notes). Only the narrow calls are bound: generate a key,
read and write a PKCS#8 key and an SPKI, sign and verify a 32-byte digest.

An SM2 signature is over ``e = SM3(Z || M)`` where ``Z`` binds the signer's distinguishing ID and
public key (GB/T 32918.2 §5.5, GM/T 0009); this module computes ``Z`` itself, so that stores sign
a digest as they do for ECDSA, and signatures are DER ``SEQUENCE { r, s }`` (GB/T 35276).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes

from keys.store import HashAlgorithm, KeyRef, KeyUseListener

SM2_DEFAULT_ID = b"1234567812345678"  # GB/T 35276 default distinguishing ID
SM2_CURVE_OID = "1.2.156.10197.1.301"
SM2_WITH_SM3_OID = "1.2.156.10197.1.501"
SM3_OID = "1.2.156.10197.1.401"
EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"
# The key stores (``KeyStore.name``) that hold SM2 keys. OpenBao/Vault transit has no SM2 key
# type and PKCS#11 no SM2 mechanism (SoftHSM2 2.6): both refuse SM2 (keys.vault, keys.pkcs11).
SM2_CUSTODIES = frozenset({"soft"})

# GB/T 32918.5 recommended curve parameters (sm2p256v1).
_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
_GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
_GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
_CURVE_PREFIX = b"".join(v.to_bytes(32, "big") for v in (_A, _B, _GX, _GY))


def sm3(data: bytes) -> bytes:
    """The 32-byte SM3 digest of ``data``."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


class Sm2Error(Exception):
    """OpenSSL refused an SM2 operation that should not fail (a key it cannot read, no SM2)."""


# --- libcrypto ----------------------------------------------------------------------------------


def _load_libcrypto() -> ctypes.CDLL:
    name = ctypes.util.find_library("crypto")
    for candidate in ("libcrypto.so.3", name):
        if candidate:
            try:
                lib = ctypes.CDLL(candidate)
            except OSError:
                continue
            if hasattr(lib, "EVP_PKEY_CTX_new_from_name"):  # OpenSSL 3
                return lib
    raise Sm2Error("OpenSSL 3 libcrypto (libcrypto.so.3) is needed for SM2")


_lib = _load_libcrypto()
_vp, _cp, _sz, _int = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int


def _bind(name: str, restype: object, *argtypes: object) -> Callable[..., Any]:
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn  # type: ignore[no-any-return]


_ctx_new_from_name = _bind("EVP_PKEY_CTX_new_from_name", _vp, _vp, _cp, _cp)
_ctx_new = _bind("EVP_PKEY_CTX_new", _vp, _vp, _vp)
_ctx_free = _bind("EVP_PKEY_CTX_free", None, _vp)
_keygen_init = _bind("EVP_PKEY_keygen_init", _int, _vp)
_generate = _bind("EVP_PKEY_generate", _int, _vp, ctypes.POINTER(_vp))
_pkey_free = _bind("EVP_PKEY_free", None, _vp)
_pkey_is_a = _bind("EVP_PKEY_is_a", _int, _vp, _cp)
_sign_init = _bind("EVP_PKEY_sign_init", _int, _vp)
_sign = _bind("EVP_PKEY_sign", _int, _vp, _cp, ctypes.POINTER(_sz), _cp, _sz)
_verify_init = _bind("EVP_PKEY_verify_init", _int, _vp)
_verify = _bind("EVP_PKEY_verify", _int, _vp, _cp, _sz, _cp, _sz)
_i2d_pubkey = _bind("i2d_PUBKEY", _int, _vp, ctypes.POINTER(_vp))
_d2i_pubkey = _bind("d2i_PUBKEY", _vp, _vp, ctypes.POINTER(_vp), ctypes.c_long)
_bio_new_mem_buf = _bind("BIO_new_mem_buf", _vp, _cp, _int)
_bio_s_mem = _bind("BIO_s_mem", _vp)
_bio_new = _bind("BIO_new", _vp, _vp)
_bio_free = _bind("BIO_free", _int, _vp)
_bio_ctrl = _bind("BIO_ctrl", ctypes.c_long, _vp, _int, ctypes.c_long, _vp)
_pem_write_pkcs8 = _bind("PEM_write_bio_PKCS8PrivateKey", _int, _vp, _vp, _vp, _cp, _int, _vp, _cp)
_pem_read_private = _bind("PEM_read_bio_PrivateKey", _vp, _vp, _vp, _vp, _cp)
_aes_256_cbc = _bind("EVP_aes_256_cbc", _vp)
_crypto_free = _bind("CRYPTO_free", None, _vp, _cp, _int)
_err_clear = _bind("ERR_clear_error", None)
_BIO_CTRL_INFO = 3


class _Pkey:
    """Owns one ``EVP_PKEY*`` and frees it with the Python object."""

    __slots__ = ("ptr",)

    def __init__(self, ptr: int | None) -> None:
        if not ptr:
            _err_clear()
            raise Sm2Error("OpenSSL could not make an SM2 key")
        self.ptr: int | None = ptr

    def __del__(self) -> None:
        # At interpreter exit the module's ctypes function may already be gone (None): the
        # process is ending and frees the key with it.
        if getattr(self, "ptr", None) and callable(_pkey_free):
            _pkey_free(self.ptr)
            self.ptr = None

    def spki_der(self) -> bytes:
        out = _vp()
        length = _i2d_pubkey(self.ptr, ctypes.byref(out))
        if length <= 0 or not out.value:
            _err_clear()
            raise Sm2Error("OpenSSL could not write the SM2 public key")
        try:
            return ctypes.string_at(out.value, length)
        finally:
            _crypto_free(out.value, None, 0)


def _sm2_pkey(ptr: int | None) -> _Pkey:
    pkey = _Pkey(ptr)
    if _pkey_is_a(pkey.ptr, b"SM2") != 1:
        raise Sm2Error("the key is not an SM2 key (curve 1.2.156.10197.1.301)")
    return pkey


# --- public keys --------------------------------------------------------------------------------


class Sm2PublicKey:
    """An SM2 public key: its point, its SPKI, its Z value and signature verification."""

    __slots__ = ("_pkey", "_spki", "_x", "_y", "_z_cache")

    def __init__(self, pkey: _Pkey, spki: bytes, x: int, y: int) -> None:
        self._pkey, self._spki, self._x, self._y = pkey, spki, x, y
        self._z_cache: dict[bytes, bytes] = {}

    @classmethod
    def from_spki_der(cls, der: bytes) -> Sm2PublicKey:
        """Read an SPKI (id-ecPublicKey with the SM2 curve OID as parameter, as OpenSSL writes
        it). Raises ``ValueError`` on anything else."""
        try:
            info = asn1_keys.PublicKeyInfo.load(bytes(der), strict=True)
            algorithm = info["algorithm"]
            if algorithm["algorithm"].dotted != EC_PUBLIC_KEY_OID:
                raise ValueError("not an EC public key")
            params = algorithm["parameters"]
            if params.name != "named" or params.chosen.dotted != SM2_CURVE_OID:
                raise ValueError("not on the SM2 curve")
            x, y = info["public_key"].to_coords()
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not an SM2 public key: {exc}") from exc
        canonical = info.dump()
        buffer = ctypes.create_string_buffer(canonical, len(canonical))
        cursor = _vp(ctypes.addressof(buffer))
        ptr = _d2i_pubkey(None, ctypes.byref(cursor), len(canonical))
        try:
            pkey = _sm2_pkey(ptr)
        except Sm2Error as exc:
            raise ValueError(f"not an SM2 public key: {exc}") from exc
        return cls(pkey, canonical, x, y)

    @classmethod
    def from_certificate_der(cls, cert_der: bytes) -> Sm2PublicKey:
        """The subject public key of an SM2 certificate. Raises ``ValueError``."""
        try:
            cert = asn1_x509.Certificate.load(bytes(cert_der), strict=True)
            spki = cert["tbs_certificate"]["subject_public_key_info"].dump()
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a certificate: {exc}") from exc
        return cls.from_spki_der(spki)

    def spki_der(self) -> bytes:
        return self._spki

    @property
    def point(self) -> tuple[int, int]:
        return self._x, self._y

    def z(self, distid: bytes = SM2_DEFAULT_ID) -> bytes:
        """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), GB/T 32918.2 §5.5."""
        cached = self._z_cache.get(distid)
        if cached is None:
            if len(distid) * 8 > 0xFFFF:
                raise ValueError("distinguishing ID too long")
            cached = sm3(
                (len(distid) * 8).to_bytes(2, "big")
                + distid
                + _CURVE_PREFIX
                + self._x.to_bytes(32, "big")
                + self._y.to_bytes(32, "big")
            )
            self._z_cache[distid] = cached
        return cached

    def digest(self, message: bytes, distid: bytes = SM2_DEFAULT_ID) -> bytes:
        """e = SM3(Z || M): what an SM2 signature over ``message`` signs."""
        return sm3(self.z(distid) + message)

    def verify_digest(self, signature_der: bytes, e: bytes) -> bool:
        """Whether ``signature_der`` is this key's over the digest ``e``. Never raises on a bad
        signature; non-canonical DER is refused (OpenSSL re-encodes and compares)."""
        if len(e) != 32 or not signature_der or len(signature_der) > 80:
            return False
        ctx = _ctx_new(self._pkey.ptr, None)
        if not ctx:
            _err_clear()
            return False
        try:
            if _verify_init(ctx) != 1:
                return False
            ok = _verify(ctx, bytes(signature_der), len(signature_der), e, len(e))
            return bool(ok == 1)
        finally:
            _ctx_free(ctx)
            _err_clear()

    def verify(self, signature_der: bytes, message: bytes, distid: bytes = SM2_DEFAULT_ID) -> bool:
        """Whether ``signature_der`` is this key's SM2 signature over ``message`` with ``distid``."""
        return self.verify_digest(signature_der, self.digest(message, distid))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sm2PublicKey) and other._spki == self._spki

    def __hash__(self) -> int:
        return hash(self._spki)


# --- private keys (for the soft store only) -----------------------------------------------------


class Sm2PrivateKey:
    """An SM2 private key held in OpenSSL's memory. Only the soft key store makes these."""

    __slots__ = ("_pkey", "_public")

    def __init__(self, pkey: _Pkey) -> None:
        self._pkey = pkey
        self._public = Sm2PublicKey.from_spki_der(pkey.spki_der())

    @classmethod
    def generate(cls) -> Sm2PrivateKey:
        ctx = _ctx_new_from_name(None, b"SM2", None)
        if not ctx:
            _err_clear()
            raise Sm2Error("this OpenSSL has no SM2")
        try:
            out = _vp()
            if _keygen_init(ctx) != 1 or _generate(ctx, ctypes.byref(out)) != 1:
                _err_clear()
                raise Sm2Error("OpenSSL could not generate an SM2 key")
            return cls(_sm2_pkey(out.value))
        finally:
            _ctx_free(ctx)

    @classmethod
    def from_encrypted_pem(cls, pem: bytes, passphrase: bytes) -> Sm2PrivateKey:
        """Read an encrypted PKCS#8 PEM. Raises ``ValueError`` on a wrong passphrase."""
        bio = _bio_new_mem_buf(pem, len(pem))
        try:
            ptr = _pem_read_private(bio, None, None, passphrase + b"\0")
        finally:
            _bio_free(bio)
        if not ptr:
            _err_clear()
            raise ValueError("cannot decrypt the SM2 key (wrong passphrase or not a key)")
        return cls(_sm2_pkey(ptr))

    def to_encrypted_pem(self, passphrase: bytes) -> bytes:
        """PKCS#8 encrypted with PBES2/AES-256-CBC, readable by ``openssl pkey``."""
        bio = _bio_new(_bio_s_mem())
        try:
            ok = _pem_write_pkcs8(
                bio, self._pkey.ptr, _aes_256_cbc(), None, 0, None, passphrase + b"\0"
            )
            if ok != 1:
                _err_clear()
                raise Sm2Error("OpenSSL could not write the SM2 key")
            data = _vp()
            length = _bio_ctrl(bio, _BIO_CTRL_INFO, 0, ctypes.byref(data))
            if length <= 0 or not data.value:
                raise Sm2Error("OpenSSL wrote an empty SM2 key")
            return ctypes.string_at(data.value, length)
        finally:
            _bio_free(bio)

    def public_key(self) -> Sm2PublicKey:
        return self._public

    def sign_digest(self, e: bytes) -> bytes:
        """The DER SM2 signature of the 32-byte digest ``e`` (= SM3(Z || M))."""
        if len(e) != 32:
            raise ValueError("an SM2 signature is over a 32-byte SM3 digest")
        ctx = _ctx_new(self._pkey.ptr, None)
        if not ctx:
            _err_clear()
            raise Sm2Error("OpenSSL could not start an SM2 signature")
        try:
            size = _sz(80)
            out = ctypes.create_string_buffer(80)
            if _sign_init(ctx) != 1 or _sign(ctx, out, ctypes.byref(size), e, 32) != 1:
                _err_clear()
                raise Sm2Error("OpenSSL could not make an SM2 signature")
            return out.raw[: size.value]
        finally:
            _ctx_free(ctx)


# --- signing through a key store ----------------------------------------------------------------


class Sm2SigningStore(Protocol):
    """What :func:`sign_message` needs of a key store."""

    def public_key_der(self, ref: KeyRef) -> bytes: ...

    def sign_digest(self, ref: KeyRef, digest: bytes, hash_algorithm: HashAlgorithm) -> bytes: ...


@lru_cache(maxsize=256)
def cached_public_key(spki: bytes) -> Sm2PublicKey:
    """The parsed key (and its Z) of a key the domain holds, once per process: a key
    version's public key never changes, and parsing costs more than half a signature. Not for
    keys from uploaded files (``Sm2PublicKey.from_spki_der``): the cache is for our own."""
    return Sm2PublicKey.from_spki_der(spki)


def sign_message(
    keystore: Sm2SigningStore,
    ref: KeyRef,
    message: bytes,
    distid: bytes = SM2_DEFAULT_ID,
    *,
    listener: KeyUseListener | None = None,
    purpose: str = "sm2",
) -> bytes:
    """The store's SM2 signature (DER) over ``message``: computes Z from the store's public key
    and e = SM3(Z || M), has the store sign e, and tells ``listener`` of the key use."""
    public = cached_public_key(keystore.public_key_der(ref))
    signature = keystore.sign_digest(ref, public.digest(message, distid), HashAlgorithm.SM3)
    if listener is not None:
        listener.key_used(ref, purpose)
    return signature
