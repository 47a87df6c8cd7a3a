"""Backup and restore (容灾备份): one consistent archive of everything a domain needs.

A backup is a tar.gz with
- ``database.sqlite`` (SQLite, copied with the online backup API, so writers may keep going), or
  ``database/<table>.jsonl`` (PostgreSQL: every table read in one REPEATABLE READ transaction,
  so all tables show the same moment — a licence never without its PDF or audit entry);
- ``keys/`` — the soft key store's files as they are (PKCS#8, encrypted under the passphrase);
  the passphrase itself is a secret and is *not* in the archive: keep it apart (escrow);
- ``config.json`` — the settings with every secret left out;
- ``manifest.json`` — format, time, database kind, the alembic revision, and the SHA-256 and
  size of every other member. Restore checks the manifest before it writes anything.

Restore builds a new data directory (it refuses one that is not empty) and, for PostgreSQL,
loads the rows into an empty database through the same migrations that made the original.
Reading and loading the database is ``core.dump``'s; this module makes and reads the archive.
Vault and PKCS#11 keys never leave their custody; a backup of such a domain says so, and the
restored directory uses the same Vault or token.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from api.settings import Settings
from core import dump
from core.clock import SystemClock
from core.errors import InvalidInput

FORMAT = "elicence-backup/1"
SECRET_FIELDS = {"key_passphrase", "vault_token", "pkcs11_pin", "database_url"}
ROWS = "database/{}.jsonl"  # a table's rows in the archive (PostgreSQL)


def _config(settings: Settings) -> dict[str, Any]:
    """The settings without secrets; the database URL only as its kind (it may hold a
    password)."""
    data = json.loads(settings.model_dump_json(exclude=SECRET_FIELDS))
    data["database"] = "sqlite" if _is_sqlite(settings) else "postgresql"
    return data  # type: ignore[no-any-return]


def _is_sqlite(settings: Settings) -> bool:
    return settings.resolved_database_url().startswith("sqlite")


def backup(settings: Settings, out: Path) -> dict[str, Any]:
    """Write the archive to ``out`` (via a temporary file, so a crash leaves no half archive)."""
    members: dict[str, bytes] = {}
    url = settings.resolved_database_url()
    if _is_sqlite(settings):
        members["database.sqlite"] = dump.sqlite_snapshot(settings.data_dir / "elicence.db")
    else:
        members.update({ROWS.format(t): rows for t, rows in dump.table_rows(url).items()})
    keys = settings.data_dir / "keys"
    if settings.keystore == "soft" and keys.is_dir():
        for path in sorted(keys.iterdir()):
            if path.is_file():
                members[f"keys/{path.name}"] = path.read_bytes()
    members["config.json"] = json.dumps(_config(settings), ensure_ascii=False, indent=2).encode()
    manifest = {
        "format": FORMAT,
        "created_at": SystemClock().now().isoformat(),
        "database": "sqlite" if _is_sqlite(settings) else "postgresql",
        "revisions": dump.revisions(url),
        "keystore": settings.keystore,
        "members": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(members.items())
        },
    }
    members["manifest.json"] = json.dumps(manifest, indent=2).encode()
    _write_archive(out, members)
    return manifest


def _write_archive(out: Path, members: dict[str, bytes]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=out.parent, prefix=".backup-")
    try:
        with os.fdopen(fd, "wb") as handle, tarfile.open(fileobj=handle, mode="w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o600
                info.mtime = int(SystemClock().now().timestamp())
                tar.addfile(info, io.BytesIO(data))
        os.chmod(temporary, 0o600)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_archive(archive: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The members of an archive, after checking each against the manifest."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members: dict[str, bytes] = {}
            for info in tar.getmembers():
                if not info.isfile() or info.name.startswith("/") or ".." in info.name:
                    raise InvalidInput(f"备份包含非法条目 / unexpected member {info.name!r}")
                handle = tar.extractfile(info)
                assert handle is not None
                members[info.name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidInput(f"备份文件无法读取 / the backup cannot be read: {exc}") from None
    try:
        manifest = json.loads(members.pop("manifest.json"))
    except (KeyError, ValueError):
        raise InvalidInput("备份缺少清单 / the backup has no manifest") from None
    if manifest.get("format") != FORMAT:
        raise InvalidInput(f"未知的备份格式 / unknown backup format {manifest.get('format')!r}")
    listed = manifest.get("members", {})
    if set(listed) != set(members):
        raise InvalidInput("备份内容与清单不符 / members differ from the manifest")
    for name, data in members.items():
        if hashlib.sha256(data).hexdigest() != listed[name]["sha256"]:
            raise InvalidInput(f"备份已损坏 / {name}: SHA-256 differs from the manifest")
    return manifest, members


def restore(archive: Path, data_dir: Path, database_url: str | None = None) -> dict[str, Any]:
    """Rebuild a data directory (and, with ``database_url``, a PostgreSQL database)."""
    manifest, members = read_archive(archive)
    if data_dir.exists() and any(data_dir.iterdir()):
        raise InvalidInput(f"目标目录不为空 / {data_dir} is not empty; restore needs a new one")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    keys = data_dir / "keys"
    for name, data in members.items():
        if name.startswith("keys/"):
            keys.mkdir(exist_ok=True, mode=0o700)
            path = keys / name.removeprefix("keys/")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
    (data_dir / "restored-config.json").write_bytes(members["config.json"])
    if database_url is None or database_url.startswith("sqlite"):
        target = data_dir / "elicence.db"
        if database_url is not None:
            target = Path(database_url.removeprefix("sqlite:///"))
        snapshot = members.get("database.sqlite")
        if snapshot is not None:
            target.write_bytes(snapshot)
        else:
            _load(f"sqlite:///{target.resolve()}", _tables(members), manifest)
    else:
        snapshot = members.get("database.sqlite")
        tables = dump.sqlite_rows(snapshot) if snapshot is not None else _tables(members)
        _load(database_url, tables, manifest)
    return manifest


def _tables(members: dict[str, bytes]) -> dict[str, bytes]:
    """The archive's table rows by table name."""
    prefix, suffix = ROWS.split("{}")
    return {
        name.removeprefix(prefix).removesuffix(suffix): data
        for name, data in members.items()
        if name.startswith(prefix) and name.endswith(suffix)
    }


def _load(url: str, tables: dict[str, bytes], manifest: dict[str, Any]) -> None:
    """The schema exactly as it was at backup time (``elicence init`` migrates it onward),
    then the rows."""
    from alembic import command

    from migrations.runner import alembic_config

    def migrate() -> None:
        for revision in manifest.get("revisions") or ["heads"]:
            command.upgrade(alembic_config(url), revision)

    dump.load_rows(url, tables, migrate)
