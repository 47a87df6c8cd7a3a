"""Soft key store: each key a PKCS#8 file encrypted under a passphrase stretched with scrypt.

For development and the demo. Files are created readable by the owner only, and the store refuses
to open a directory or key file that others can read. Unlocked keys are cached in memory so a key
is parsed once per process, not once per seal. Each version of a key is its own file,
``<label>.v<N>.p8``; rotation adds a file and never rewrites one.
"""

from __future__ import annotations

import builtins
import json
import os
import stat
from pathlib import Path
from threading import Lock

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from core.errors import Conflict, InvalidInput, NotFound, Unavailable
from keys.sm2 import Sm2PrivateKey
from keys.store import HashAlgorithm, KeyAlgorithm, KeyInfo, KeyRef, check_label

_Private = PrivateKeyTypes | Sm2PrivateKey

_HASHES: dict[HashAlgorithm, hashes.HashAlgorithm] = {
    HashAlgorithm.SHA256: hashes.SHA256(),
    HashAlgorithm.SHA384: hashes.SHA384(),
    HashAlgorithm.SHA512: hashes.SHA512(),
}
_SCRYPT_N = 2**15


def hash_for(algorithm: HashAlgorithm) -> hashes.HashAlgorithm:
    return _HASHES[algorithm]


def _read_private(pem: bytes, secret: bytes) -> _Private:
    """An ECDSA/RSA key through ``cryptography``; an SM2 key (a curve it does not know) through
    OpenSSL. Raises ``ValueError`` on a wrong passphrase."""
    try:
        return serialization.load_pem_private_key(pem, password=secret)
    except UnsupportedAlgorithm:
        return Sm2PrivateKey.from_encrypted_pem(pem, secret)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise Unavailable(
            f"密钥文件权限过宽 / key store path {path} is readable by others; "
            f"fix with: chmod go-rwx {path}",
            cause=f"mode {oct(mode)}",
        )


class SoftKeyStore:
    name = "soft"
    in_process = True

    def __init__(self, directory: Path, passphrase: bytes) -> None:
        if not passphrase:
            raise Unavailable("密钥口令为空 / the key store passphrase is empty")
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _check_private(self._dir)
        self._lock = Lock()
        self._cache: dict[KeyRef, _Private] = {}
        self._secret = self._derive(passphrase)

    def _derive(self, passphrase: bytes) -> bytes:
        salt_file = self._dir / "kdf.json"
        if salt_file.exists():
            _check_private(salt_file)
            params = json.loads(salt_file.read_text())
            salt = bytes.fromhex(params["salt"])
            n = int(params["n"])
        else:
            salt, n = os.urandom(16), _SCRYPT_N
            self._write_private(
                salt_file, json.dumps({"kdf": "scrypt", "salt": salt.hex(), "n": n}).encode()
            )
        return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase).hex().encode()

    @staticmethod
    def _write_private(path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def _path(self, ref: KeyRef) -> Path:
        return self._dir / f"{ref.label}.v{ref.version}.p8"

    def exists(self, label: str) -> bool:
        return bool(self.versions(label))

    def versions(self, label: str) -> builtins.list[KeyRef]:
        found = []
        for path in self._dir.glob(f"{label}.v*.p8"):
            stem, _, version = path.name[: -len(".p8")].rpartition(".v")
            if stem == label and version.isdigit():
                found.append(KeyRef(self.name, label, int(version)))
        return sorted(found, key=lambda ref: ref.version)

    def create(self, label: str, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> KeyRef:
        check_label(label)
        if self.exists(label):
            raise Conflict(f"密钥已存在 / key {label} exists")
        return self._generate(KeyRef(self.name, label, 1), algorithm)

    def rotate(self, label: str) -> KeyRef:
        """A new version in a new file; the older files stay, so older signatures verify."""
        versions = self.versions(check_label(label))
        if not versions:
            raise NotFound(f"密钥不存在 / no key {label}")
        latest = versions[-1]
        return self._generate(KeyRef(self.name, label, latest.version + 1), self.algorithm(latest))

    def _generate(self, ref: KeyRef, algorithm: KeyAlgorithm) -> KeyRef:
        key: PrivateKeyTypes
        if algorithm is KeyAlgorithm.SM2:
            # The same encrypted PKCS#8 file, written by OpenSSL (cryptography has no SM2).
            pem = Sm2PrivateKey.generate().to_encrypted_pem(self._secret)
        else:
            if algorithm is KeyAlgorithm.EC_P256:
                key = ec.generate_private_key(ec.SECP256R1())
            else:
                key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(self._secret),
            )
        try:
            # O_EXCL: of two concurrent rotations only one gets a given version number.
            self._write_private(self._path(ref), pem)
        except FileExistsError:
            raise Conflict(
                f"密钥版本已存在 / key version {ref} exists; another rotation ran at the same time"
            ) from None
        return ref

    def _load(self, ref: KeyRef) -> _Private:
        with self._lock:
            key = self._cache.get(ref)
            if key is not None:
                return key
            path = self._path(ref)
            if not path.exists():
                raise NotFound(f"密钥不存在 / no key {ref}")
            _check_private(path)
            pem = path.read_bytes()
            try:
                key = _read_private(pem, self._secret)
            except ValueError as exc:
                raise Unavailable(
                    "无法解密密钥，口令错误 / cannot unlock the key store: wrong passphrase",
                    cause=str(exc),
                ) from exc
            self._cache[ref] = key
            return key

    def public_key(self, ref: KeyRef) -> PublicKeyTypes:
        key = self._load(ref)
        if isinstance(key, Sm2PrivateKey):
            raise InvalidInput(
                f"SM2 密钥无 cryptography 公钥，请用 public_key_der / "
                f"SM2 key {ref} has no cryptography public key; use public_key_der"
            )
        return key.public_key()

    def public_key_der(self, ref: KeyRef) -> bytes:
        key = self._load(ref)
        if isinstance(key, Sm2PrivateKey):
            return key.public_key().spki_der()
        return key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def algorithm(self, ref: KeyRef) -> KeyAlgorithm:
        key = self._load(ref)
        if isinstance(key, Sm2PrivateKey):
            return KeyAlgorithm.SM2
        return (
            KeyAlgorithm.EC_P256
            if isinstance(key, ec.EllipticCurvePrivateKey)
            else KeyAlgorithm.RSA_3072
        )

    def sign_digest(self, ref: KeyRef, digest: bytes, hash_algorithm: HashAlgorithm) -> bytes:
        key = self._load(ref)
        if isinstance(key, Sm2PrivateKey) or hash_algorithm is HashAlgorithm.SM3:
            # An SM2 key signs only SM3 digests, and an SM3 digest only with an SM2 key.
            if not isinstance(key, Sm2PrivateKey) or hash_algorithm is not HashAlgorithm.SM3:
                raise InvalidInput(
                    f"SM2 只签 SM3 摘要 / SM2 keys sign SM3 digests only, and only SM2 keys do "
                    f"({ref}, {hash_algorithm.value})"
                )
            return key.sign_digest(digest)
        prehashed = utils.Prehashed(hash_for(hash_algorithm))
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(digest, ec.ECDSA(prehashed))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(digest, padding.PKCS1v15(), prehashed)
        raise NotFound(f"unsupported key type for {ref}")

    def list(self) -> list[KeyInfo]:
        infos = []
        labels = {path.name[: -len(".p8")].rpartition(".v")[0] for path in self._dir.glob("*.p8")}
        for label in sorted(labels):
            for ref in self.versions(label):
                infos.append(KeyInfo(ref, self.algorithm(ref)))
        return infos
