"""Vault / OpenBao transit key store: the keys live in the transit engine and never leave it.

Keys are created non-exportable and without plaintext backup, so not even an operator with a
root token can read them out. The service sends the SHA-256 (or -384/-512) digest it wants
signed (``prehashed=True``) and names the key version, so a rotation in another process never
changes which key a given certificate's seal is made with. Every failure to reach the server
(sealed, down, token refused) becomes :class:`core.errors.Unavailable`: the caller answers 503
and writes nothing.

The transit engine must be mounted by the operator (``bao secrets enable -path=MOUNT transit``);
the service's token needs only the ``transit/keys/*`` and ``transit/sign/*`` paths of its mount.
"""

from __future__ import annotations

import base64
import builtins
from collections.abc import Callable
from threading import Lock
from typing import Any, NoReturn, TypeVar

import hvac
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from hvac import exceptions as vault_errors

from core.errors import Conflict, InvalidInput, NotFound, Unavailable
from keys.store import HashAlgorithm, KeyAlgorithm, KeyInfo, KeyRef, check_label

_KEY_TYPES = {KeyAlgorithm.EC_P256: "ecdsa-p256", KeyAlgorithm.RSA_3072: "rsa-3072"}
_ALGORITHMS = {v: k for k, v in _KEY_TYPES.items()}
_HASH_NAMES = {
    HashAlgorithm.SHA256: "sha2-256",
    HashAlgorithm.SHA384: "sha2-384",
    HashAlgorithm.SHA512: "sha2-512",
}
_T = TypeVar("_T")
# OpenBao/Vault transit key types: aes*, chacha20-poly1305, ed25519, ecdsa-p256/p384/p521,
# rsa-2048/3072/4096, hmac, managed_key (and ML-DSA/SLH-DSA in newer releases) — no SM2.
_NO_SM2 = (
    "Vault/OpenBao 转运引擎不支持 SM2，SM2 密钥请用软件密钥库 / "
    "the Vault/OpenBao transit engine has no SM2 keys; keep SM2 keys in the soft key store"
)


def _refuse_sm2() -> NoReturn:
    raise InvalidInput(_NO_SM2)


class VaultKeyStore:
    name = "vault"
    in_process = False

    def __init__(
        self, *, addr: str, token: str, mount: str = "transit", timeout: float = 5.0
    ) -> None:
        if not addr:
            raise Unavailable("未配置 Vault 地址 / ELICENCE_VAULT_ADDR is not set")
        if not token:
            raise Unavailable(
                "未配置 Vault 令牌 / no Vault token: set ELICENCE_VAULT_TOKEN or "
                "ELICENCE_VAULT_TOKEN_FILE"
            )
        self._addr = addr
        self._mount = mount.strip("/")
        self._client = hvac.Client(url=addr, token=token, timeout=timeout)
        self._transit = self._client.secrets.transit
        # A key version's public key and a key's type never change: read each once.
        self._public: dict[KeyRef, PublicKeyTypes] = {}
        self._algorithms: dict[str, KeyAlgorithm] = {}
        self._lock = Lock()

    # -- errors ------------------------------------------------------------------------------

    def _unavailable(self, exc: Exception) -> NoReturn:
        if isinstance(exc, vault_errors.VaultDown):
            message = (
                f"密钥服务已封存，请先解封 / the Vault/OpenBao server at {self._addr} is sealed; "
                "unseal it (bao operator unseal) and retry"
            )
        elif isinstance(exc, vault_errors.Forbidden | vault_errors.Unauthorized):
            message = (
                f"密钥服务拒绝了令牌 / the Vault/OpenBao server at {self._addr} refused the "
                f"service's token for mount {self._mount}; renew the token or its policy"
            )
        elif isinstance(exc, vault_errors.InvalidPath):
            message = (
                f"密钥服务未挂载 transit 引擎 / no transit engine is mounted at {self._mount} on "
                f"{self._addr}; run: bao secrets enable -path={self._mount} transit"
            )
        elif isinstance(exc, vault_errors.VaultError):
            message = (
                f"密钥服务拒绝了请求 / the Vault/OpenBao server at {self._addr} refused the "
                "request; see the service log"
            )
        else:
            message = (
                f"无法连接密钥服务 / the Vault/OpenBao server at {self._addr} cannot be reached; "
                "retry later"
            )
        raise Unavailable(message, cause=f"{type(exc).__name__}: {exc}") from exc

    def _call(self, action: Callable[[], _T], *, missing: str | None = None) -> _T:
        """Run one request. ``InvalidPath`` means "no such key" when ``missing`` names one."""
        try:
            return action()
        except vault_errors.InvalidPath as exc:
            if missing is not None and "no handler for route" not in str(exc):
                raise NotFound(f"密钥不存在 / no key {missing} in {self._mount}") from exc
            self._unavailable(exc)
        except (vault_errors.VaultError, requests.RequestException) as exc:
            self._unavailable(exc)

    def _read(self, label: str) -> dict[str, Any]:
        response = self._call(
            lambda: self._transit.read_key(name=label, mount_point=self._mount), missing=label
        )
        data: dict[str, Any] = response["data"]
        return data

    # -- the protocol ------------------------------------------------------------------------

    def exists(self, label: str) -> bool:
        try:
            self._read(check_label(label))
        except NotFound:
            return False
        return True

    def create(self, label: str, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> KeyRef:
        if algorithm is KeyAlgorithm.SM2:
            _refuse_sm2()
        # Transit's create is an upsert; look first so an existing key is never "recreated".
        if self.exists(label):
            raise Conflict(f"密钥已存在 / key {label} exists")
        self._call(
            lambda: self._transit.create_key(
                name=label,
                key_type=_KEY_TYPES[algorithm],
                exportable=False,
                allow_plaintext_backup=False,
                mount_point=self._mount,
            )
        )
        return KeyRef(self.name, label, 1)

    def rotate(self, label: str) -> KeyRef:
        check_label(label)
        self._read(label)  # NotFound before asking for a rotation
        self._call(lambda: self._transit.rotate_key(name=label, mount_point=self._mount))
        return KeyRef(self.name, label, int(self._read(label)["latest_version"]))

    def versions(self, label: str) -> builtins.list[KeyRef]:
        try:
            data = self._read(check_label(label))
        except NotFound:
            return []
        self._remember(label, data)
        return [KeyRef(self.name, label, v) for v in sorted(int(k) for k in data["keys"])]

    def list(self) -> builtins.list[KeyInfo]:
        try:
            response = self._transit.list_keys(mount_point=self._mount)
        except vault_errors.InvalidPath as exc:
            if "no handler for route" in str(exc):
                self._unavailable(exc)
            return []  # a mounted engine with no keys yet answers 404
        except (vault_errors.VaultError, requests.RequestException) as exc:
            self._unavailable(exc)
        infos = []
        for label in sorted(response["data"]["keys"]):
            for ref in self.versions(label):
                infos.append(KeyInfo(ref, self.algorithm(ref)))
        return infos

    def _remember(self, label: str, data: dict[str, Any]) -> None:
        algorithm = _ALGORITHMS.get(data["type"])
        if algorithm is None:
            raise NotFound(f"密钥类型不支持 / key {label} has unsupported type {data['type']}")
        with self._lock:
            self._algorithms[label] = algorithm
            for version, info in data["keys"].items():
                ref = KeyRef(self.name, label, int(version))
                if ref not in self._public and isinstance(info, dict):
                    self._public[ref] = serialization.load_pem_public_key(
                        info["public_key"].encode()
                    )

    def algorithm(self, ref: KeyRef) -> KeyAlgorithm:
        algorithm = self._algorithms.get(ref.label)
        if algorithm is None:
            self._remember(ref.label, self._read(ref.label))
            algorithm = self._algorithms[ref.label]
        return algorithm

    def public_key(self, ref: KeyRef) -> PublicKeyTypes:
        public = self._public.get(ref)
        if public is None:
            self._remember(ref.label, self._read(ref.label))
            public = self._public.get(ref)
            if public is None:
                raise NotFound(f"密钥版本不存在 / no key version {ref}")
        return public

    def public_key_der(self, ref: KeyRef) -> bytes:
        return self.public_key(ref).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_digest(self, ref: KeyRef, digest: bytes, hash_algorithm: HashAlgorithm) -> bytes:
        if hash_algorithm is HashAlgorithm.SM3:
            _refuse_sm2()
        options: dict[str, Any] = {}
        if self.algorithm(ref) is KeyAlgorithm.RSA_3072:
            options["signature_algorithm"] = "pkcs1v15"
        response = self._call(
            lambda: self._transit.sign_data(
                name=ref.label,
                hash_input=base64.b64encode(digest).decode(),
                key_version=ref.version,
                hash_algorithm=_HASH_NAMES[hash_algorithm],
                prehashed=True,
                marshaling_algorithm="asn1",
                mount_point=self._mount,
                **options,
            ),
            missing=str(ref),
        )
        # "vault:v<N>:<base64 signature>": refuse a signature made with another version.
        prefix, version, signature = response["data"]["signature"].split(":", 2)
        if prefix != "vault" or version != f"v{ref.version}":
            raise Unavailable(
                "密钥服务返回了错误的密钥版本 / the transit engine signed with another key version",
                cause=f"asked {ref}, got {prefix}:{version}",
            )
        return base64.b64decode(signature)
