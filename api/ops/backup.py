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
Vault and PKCS#11 keys never leave their custody; a backup of such a domain says so, and the
restored directory uses the same Vault or token.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, func, select, text

from api.settings import Settings
from core.clock import SystemClock
from core.errors import InvalidInput

FORMAT = "elicence-backup/1"
SECRET_FIELDS = {"key_passphrase", "vault_token", "pkcs11_pin", "database_url"}


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, raw),) = value.items()
        if tag == "$b64":
            return base64.b64decode(raw)
        if tag == "$dt":
            return datetime.fromisoformat(raw)
        if tag == "$d":
            return date.fromisoformat(raw)
        if tag == "$dec":
            return Decimal(raw)
    return value


def _config(settings: Settings) -> dict[str, Any]:
    """The settings without secrets; the database URL only as its kind (it may hold a
    password)."""
    data = json.loads(settings.model_dump_json(exclude=SECRET_FIELDS))
    data["database"] = "sqlite" if _is_sqlite(settings) else "postgresql"
    return data  # type: ignore[no-any-return]


def _is_sqlite(settings: Settings) -> bool:
    return settings.resolved_database_url().startswith("sqlite")


def _revisions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version ORDER BY 1"))
            return [str(row[0]) for row in rows]
    finally:
        engine.dispose()


def backup(settings: Settings, out: Path) -> dict[str, Any]:
    """Write the archive to ``out`` (via a temporary file, so a crash leaves no half archive)."""
    members: dict[str, bytes] = {}
    url = settings.resolved_database_url()
    if _is_sqlite(settings):
        members["database.sqlite"] = _sqlite_snapshot(settings.data_dir / "elicence.db", url)
    else:
        members.update(_postgres_dump(url))
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
        "revisions": _revisions(url),
        "keystore": settings.keystore,
        "members": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(members.items())
        },
    }
    members["manifest.json"] = json.dumps(manifest, indent=2).encode()
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
    return manifest


def _sqlite_snapshot(path: Path, url: str) -> bytes:
    """The SQLite online backup API copies a consistent snapshot while the service runs."""
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "snapshot.db"
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            destination = sqlite3.connect(target)
            with destination:
                source.backup(destination)
            destination.execute("PRAGMA journal_mode=DELETE")
            destination.close()
        finally:
            source.close()
        return target.read_bytes()


def _postgres_dump(url: str) -> dict[str, bytes]:
    """Every table as JSON lines, all read in one REPEATABLE READ snapshot."""
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    members: dict[str, bytes] = {}
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn, conn.begin():
            for table in metadata.sorted_tables:
                lines = [
                    json.dumps({k: _encode(v) for k, v in row._mapping.items()}, ensure_ascii=False)
                    for row in conn.execute(select(table))
                ]
                members[f"database/{table.name}.jsonl"] = "\n".join(lines).encode()
    finally:
        engine.dispose()
    return members


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
            _load_rows(f"sqlite:///{target.resolve()}", members, manifest)
    else:
        if "database.sqlite" in members:
            _sqlite_to_rows(members)
        _load_rows(database_url, members, manifest)
    return manifest


def _sqlite_to_rows(members: dict[str, bytes]) -> None:
    """A SQLite backup restored into PostgreSQL: read its tables as rows first."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "db.sqlite"
        path.write_bytes(members.pop("database.sqlite"))
        engine = create_engine(f"sqlite:///{path}")
        try:
            metadata = MetaData()
            metadata.reflect(engine)
            with engine.connect() as conn:
                for table in metadata.sorted_tables:
                    rows = [
                        json.dumps({k: _encode(v) for k, v in r._mapping.items()})
                        for r in conn.execute(select(table))
                    ]
                    members[f"database/{table.name}.jsonl"] = "\n".join(rows).encode()
        finally:
            engine.dispose()


def _load_rows(url: str, members: dict[str, bytes], manifest: dict[str, Any]) -> None:
    """Migrate an empty database to the backup's revision, then insert every row with the
    foreign-key checks off for the load (rows may point forward, e.g. ``superseded_by``)."""
    from alembic import command

    from migrations.runner import alembic_config

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            existing = MetaData()
            existing.reflect(conn)
            if existing.tables:
                raise InvalidInput("目标数据库不为空 / the target database already has tables")
        # The schema exactly as it was at backup time; `elicence init` migrates it onward.
        for revision in manifest.get("revisions") or ["heads"]:
            command.upgrade(alembic_config(url), revision)
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SET session_replication_role = replica"))
            else:
                conn.execute(text("PRAGMA foreign_keys=OFF"))
            for table in metadata.sorted_tables:
                raw = members.get(f"database/{table.name}.jsonl", b"")
                rows = [
                    {k: _decode(v) for k, v in json.loads(line).items()}
                    for line in raw.decode().splitlines()
                    if line.strip()
                ]
                conn.execute(table.delete())  # alembic_version, seeded rows
                if rows:
                    conn.execute(table.insert(), rows)
            if engine.dialect.name == "postgresql":
                _reset_sequences(conn, metadata)
    finally:
        engine.dispose()


def _reset_sequences(conn: Any, metadata: MetaData) -> None:
    """Serial columns continue after the restored rows (names come from the reflected schema,
    quoted by the dialect)."""
    quote = conn.dialect.identifier_preparer.quote
    for table in metadata.sorted_tables:
        for column in table.columns:
            default = column.server_default
            if default is None or "nextval" not in str(getattr(default, "arg", "")):
                continue
            highest = conn.execute(select(func.max(column))).scalar() or 0
            sequence = conn.execute(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": quote(table.name), "column": column.name},
            ).scalar()
            if sequence:
                conn.execute(
                    text("SELECT setval(:sequence, :value, false)"),
                    {"sequence": sequence, "value": highest + 1},
                )
