"""The secrets of a data directory on disk — the directory itself, the soft key store's
passphrase file, secrets read from owner-only files (a Vault token, a PKCS#11 PIN) — and the
key custody they open (``build_keystore``, the only place the stores' settings are read).

Every file here is owner-only: one readable by others is refused with the ``chmod`` that fixes
it (``Unavailable``, so the service does not start on it), never silently used. The container
calls these once, at start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from api.settings import Settings
from core.errors import Unavailable
from keys.soft import SoftKeyStore
from keys.store import KeyStore

PASSPHRASE_FILE = Path("secrets") / "keystore-passphrase"


def private_directory(path: Path) -> None:
    """The data directory, owner-only (0700): it holds the database, keys and secrets. One made
    earlier with a wider mode is narrowed, when this account owns it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
        os.chmod(path, 0o700)


def keystore_passphrase(settings: Settings) -> bytes:
    """``ELICENCE_KEY_PASSPHRASE``, else ``secrets/keystore-passphrase`` in the data directory,
    made with a random passphrase on first use (a laptop or demo needs no setup)."""
    if settings.key_passphrase is not None:
        return settings.key_passphrase.get_secret_value().encode()
    path = settings.data_dir / PASSPHRASE_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    if path.stat().st_mode & 0o077:
        raise Unavailable(
            f"口令文件权限过宽 / {path} is readable by others; fix with: chmod 600 {path}"
        )
    return path.read_text().strip().encode()


def domain_secret(settings: Settings, name: str) -> bytes:
    """``secrets/<name>`` in the data directory: 32 random bytes (hex), made on first use and
    kept, so what it keys (verification sources) stays comparable across restarts."""
    path = settings.data_dir / "secrets" / name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: read theirs
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    if path.stat().st_mode & 0o077:
        raise Unavailable(
            f"密钥文件权限过宽 / {path} is readable by others; fix with: chmod 600 {path}"
        )
    return bytes.fromhex(path.read_text().strip())


def secret(value: SecretStr | None, path: Path | None, what: str) -> str:
    """A secret from its variable, else from an owner-only file (re-read at each start, so a
    token sink kept fresh by an agent works); empty when neither is set."""
    if value is not None:
        return value.get_secret_value()
    if path is None:
        return ""
    if not path.exists():
        raise Unavailable(f"{what}文件不存在 / {what} file {path} does not exist")
    if path.stat().st_mode & 0o077:
        raise Unavailable(
            f"{what}文件权限过宽 / {path} is readable by others; fix with: chmod 600 {path}"
        )
    return path.read_text().strip()


def build_keystore(settings: Settings) -> KeyStore:
    """``ELICENCE_KEYSTORE`` picks the custody; the others' libraries are not even imported."""
    if settings.keystore == "vault":
        from keys.vault import VaultKeyStore

        return VaultKeyStore(
            addr=settings.vault_addr or "",
            token=secret(settings.vault_token, settings.vault_token_file, "Vault 令牌 token"),
            mount=settings.vault_mount,
        )
    if settings.keystore == "pkcs11":
        from keys.pkcs11 import Pkcs11KeyStore

        return Pkcs11KeyStore(
            module=settings.pkcs11_module or "",
            token_label=settings.pkcs11_token_label or "",
            pin=secret(settings.pkcs11_pin, settings.pkcs11_pin_file, "PIN "),
        )
    return SoftKeyStore(settings.data_dir / "keys", keystore_passphrase(settings))
