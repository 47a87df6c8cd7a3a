"""PKCS#11 key store: keys generated inside a token (an HSM, or SoftHSM2 in tests) and used there.

Private keys are created ``SENSITIVE`` and not ``EXTRACTABLE``, so the token refuses to hand them
out, wrapped or not. Versions are separate key pairs labelled ``<label>.v<N>``: PKCS#11 has no
notion of key versions, and a label per version keeps every older public key on the token for
as long as certificates made with it are in use.

One logged-in session is shared under a lock: PKCS#11 sessions must not be used by two threads
at once, and a signature takes a fraction of a millisecond, so serialising costs little. The
session is opened on first use and reopened after the token went away, so the service starts
(and reports "unavailable" on ``/readyz``) while the token is absent.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
from collections.abc import Callable
from threading import Lock
from typing import Any, NoReturn, TypeVar

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import (
    encode_ec_public_key,
    encode_ecdsa_signature,
    encode_named_curve_parameters,
)

from core.errors import Conflict, InvalidInput, NotFound, Unavailable
from keys.store import HashAlgorithm, KeyAlgorithm, KeyInfo, KeyRef, check_label

# DER DigestInfo prefixes (RFC 8017, section 9.2, note 1): CKM_RSA_PKCS pads but does not hash.
_DIGEST_INFO = {
    HashAlgorithm.SHA256: bytes.fromhex("3031300d060960864801650304020105000420"),
    HashAlgorithm.SHA384: bytes.fromhex("3041300d060960864801650304020205000430"),
    HashAlgorithm.SHA512: bytes.fromhex("3051300d060960864801650304020305000440"),
}
_PRIVATE_TEMPLATE = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
}
# PKCS#11 (2.40 and 3.0) defines no SM2 mechanism and SoftHSM2 2.6 has none (its ECDSA on the
# SM2 curve is not an SM2 signature): SM2 keys are refused here, not made wrongly.
_NO_SM2 = (
    "PKCS#11 令牌不支持 SM2，SM2 密钥请用软件密钥库 / "
    "the PKCS#11 token has no SM2 mechanism; keep SM2 keys in the soft key store"
)
# Failures that mean the session is gone; the next call opens a new one.
_SESSION_LOST = (
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.DeviceRemoved,
    p11.TokenNotPresent,
    p11.DeviceError,
    p11.UserNotLoggedIn,
    p11.ObjectHandleInvalid,
    p11.KeyHandleInvalid,
)
_T = TypeVar("_T")
# PKCS#11 login state belongs to the process, not to a session; this mirrors it (module and
# token -> SHA-256 of the PIN that logged in) so a second store in the process is held to it.
_LOGINS: dict[tuple[str, str], bytes] = {}


def _pin_digest(pin: str) -> bytes:
    return hashlib.sha256(pin.encode()).digest()


def _object_label(label: str, version: int) -> str:
    return f"{label}.v{version}"


class Pkcs11KeyStore:
    name = "pkcs11"
    in_process = False

    def __init__(self, *, module: str, token_label: str, pin: str) -> None:
        if not module or not token_label:
            raise Unavailable(
                "未配置 PKCS#11 模块或令牌 / set ELICENCE_PKCS11_MODULE and "
                "ELICENCE_PKCS11_TOKEN_LABEL"
            )
        if not pin:
            raise Unavailable(
                "未配置 PKCS#11 PIN / set ELICENCE_PKCS11_PIN or ELICENCE_PKCS11_PIN_FILE"
            )
        self._module = module
        self._token_label = token_label
        self._pin = pin
        self._lock = Lock()
        self._session: Any = None
        self._private: dict[KeyRef, Any] = {}
        self._public: dict[KeyRef, PublicKeyTypes] = {}
        self._algorithms: dict[str, KeyAlgorithm] = {}

    # -- session and errors -------------------------------------------------------------------

    def _open(self) -> Any:
        if self._session is None:
            try:
                token = pkcs11.lib(self._module).get_token(token_label=self._token_label)
                key = (self._module, self._token_label)
                try:
                    self._session = token.open(rw=True, user_pin=self._pin)
                    _LOGINS[key] = _pin_digest(self._pin)
                except p11.UserAlreadyLoggedIn:
                    # Login is per process and token: another store in this process (the CLI
                    # next to the server's, a test) logged in already, and sessions share it.
                    # The token then checks no PIN, so compare with the one that logged in.
                    if not hmac.compare_digest(_LOGINS.get(key, b""), _pin_digest(self._pin)):
                        raise p11.PinIncorrect() from None
                    self._session = token.open(rw=True)
            except p11.NoSuchToken as exc:
                self._fail(exc, f"找不到令牌 / no PKCS#11 token labelled {self._token_label!r}")
            except (p11.PinIncorrect, p11.PinLocked, p11.PinExpired) as exc:
                self._fail(
                    exc,
                    f"令牌 PIN 被拒绝 / the token {self._token_label!r} refused the PIN "
                    f"({type(exc).__name__})",
                )
            except (RuntimeError, OSError) as exc:
                self._fail(exc, f"无法打开 PKCS#11 模块 / cannot open {self._module}")
        return self._session

    def _fail(self, exc: Exception, message: str) -> NoReturn:
        raise Unavailable(message, cause=f"{type(exc).__name__}: {exc}") from exc

    def _run(self, action: Callable[[Any], _T]) -> _T:
        with self._lock:
            session = self._open()
            try:
                return action(session)
            except _SESSION_LOST as exc:
                self._session = None
                self._private.clear()
                self._fail(
                    exc,
                    f"PKCS#11 令牌不可用 / the token {self._token_label!r} is not available; "
                    "retry when it is back",
                )
            except p11.NoSuchKey as exc:
                raise NotFound(f"密钥不存在 / no such key on {self._token_label}") from exc
            except p11.PKCS11Error as exc:
                self._fail(exc, f"PKCS#11 操作失败 / the token refused: {type(exc).__name__}")

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
                self._private.clear()

    # -- lookups ------------------------------------------------------------------------------

    def _labels(self, session: Any) -> dict[str, builtins.list[int]]:
        found: dict[str, builtins.list[int]] = {}
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
            label, _, version = str(obj.label).rpartition(".v")
            if label and version.isdigit():
                found.setdefault(label, []).append(int(version))
        return {label: sorted(versions) for label, versions in found.items()}

    def _key(self, session: Any, ref: KeyRef, object_class: ObjectClass) -> Any:
        return session.get_key(
            object_class=object_class, label=_object_label(ref.label, ref.version)
        )

    # -- the protocol -------------------------------------------------------------------------

    def versions(self, label: str) -> builtins.list[KeyRef]:
        check_label(label)
        numbers = self._run(lambda session: self._labels(session).get(label, []))
        return [KeyRef(self.name, label, n) for n in numbers]

    def exists(self, label: str) -> bool:
        return bool(self.versions(label))

    def list(self) -> builtins.list[KeyInfo]:
        labels = self._run(self._labels)
        return [
            KeyInfo(ref, self.algorithm(ref))
            for label in sorted(labels)
            for ref in (KeyRef(self.name, label, n) for n in labels[label])
        ]

    def create(self, label: str, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> KeyRef:
        if algorithm is KeyAlgorithm.SM2:
            raise InvalidInput(_NO_SM2)
        if self.exists(label):
            raise Conflict(f"密钥已存在 / key {label} exists")
        return self._generate(KeyRef(self.name, label, 1), algorithm)

    def rotate(self, label: str) -> KeyRef:
        versions = self.versions(label)
        if not versions:
            raise NotFound(f"密钥不存在 / no key {label}")
        latest = versions[-1]
        return self._generate(KeyRef(self.name, label, latest.version + 1), self.algorithm(latest))

    def _generate(self, ref: KeyRef, algorithm: KeyAlgorithm) -> KeyRef:
        object_label = _object_label(ref.label, ref.version)

        def generate(session: Any) -> None:
            query = {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: object_label}
            if any(True for _ in session.get_objects(query)):
                raise Conflict(f"密钥版本已存在 / key version {ref} exists")
            options: dict[str, Any] = {
                "label": object_label,
                "id": object_label.encode(),
                "store": True,
                "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
                "private_template": dict(_PRIVATE_TEMPLATE),
                "public_template": {Attribute.TOKEN: True, Attribute.PRIVATE: False},
            }
            if algorithm is KeyAlgorithm.EC_P256:
                params = session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                    local=True,
                )
                params.generate_keypair(**options)
            else:
                session.generate_keypair(KeyType.RSA, 3072, **options)

        self._run(generate)
        return ref

    def algorithm(self, ref: KeyRef) -> KeyAlgorithm:
        algorithm = self._algorithms.get(ref.label)
        if algorithm is None:
            public = self.public_key(ref)
            algorithm = (
                KeyAlgorithm.EC_P256
                if isinstance(public, ec.EllipticCurvePublicKey)
                else KeyAlgorithm.RSA_3072
            )
            self._algorithms[ref.label] = algorithm
        return algorithm

    def public_key(self, ref: KeyRef) -> PublicKeyTypes:
        public = self._public.get(ref)
        if public is not None:
            return public

        def read(session: Any) -> PublicKeyTypes:
            key = self._key(session, ref, ObjectClass.PUBLIC_KEY)
            if key.key_type == KeyType.EC:
                return serialization.load_der_public_key(encode_ec_public_key(key))
            if key.key_type == KeyType.RSA:
                return rsa.RSAPublicNumbers(
                    int.from_bytes(key[Attribute.PUBLIC_EXPONENT], "big"),
                    int.from_bytes(key[Attribute.MODULUS], "big"),
                ).public_key()
            raise NotFound(f"密钥类型不支持 / unsupported key type for {ref}")

        public = self._public[ref] = self._run(read)
        return public

    def public_key_der(self, ref: KeyRef) -> bytes:
        return self.public_key(ref).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_digest(self, ref: KeyRef, digest: bytes, hash_algorithm: HashAlgorithm) -> bytes:
        if hash_algorithm is HashAlgorithm.SM3:
            raise InvalidInput(_NO_SM2)
        algorithm = self.algorithm(ref)

        def sign(session: Any) -> bytes:
            key = self._private.get(ref)
            if key is None:
                key = self._private[ref] = self._key(session, ref, ObjectClass.PRIVATE_KEY)
            if algorithm is KeyAlgorithm.EC_P256:
                # The token returns r || s; CMS and X.509 want the DER SEQUENCE.
                return encode_ecdsa_signature(key.sign(digest, mechanism=Mechanism.ECDSA))
            data = _DIGEST_INFO[hash_algorithm] + digest
            return bytes(key.sign(data, mechanism=Mechanism.RSA_PKCS))

        return self._run(sign)
