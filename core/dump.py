"""The database as portable rows and back, for backup and restore (``api/ops/backup.py``).

- SQLite is copied with its online backup API, so writers may keep going while it runs;
- PostgreSQL (or a SQLite copy bound for PostgreSQL) is read table by table as JSON lines, all
  in one REPEATABLE READ transaction, so every table shows the same moment — a licence never
  without its PDF or its audit entry;
- a load goes into an *empty* database: the caller's ``migrate`` brings it to the schema the
  rows were taken from (Alembic lives above this layer), then every row is inserted with the
  foreign-key checks off (rows may point forward, e.g. ``superseded_by``), and PostgreSQL's
  serial columns continue after the restored rows.

Bytes, datetimes, dates and decimals travel as one-member objects (``$b64``, ``$dt``, ``$d``,
``$dec``), so the lines are plain JSON.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import tempfile
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, MetaData, create_engine, func, select, text

from core.errors import InvalidInput


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


def revisions(url: str) -> list[str]:
    """The Alembic revisions the database is at (one per independent branch)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version ORDER BY 1"))
            return [str(row[0]) for row in rows]
    finally:
        engine.dispose()


def sqlite_snapshot(path: Path) -> bytes:
    """A consistent copy of the SQLite file at ``path``, taken while the service runs."""
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


def table_rows(url: str) -> dict[str, bytes]:
    """Every table of a PostgreSQL database as JSON lines, keyed by table name, all read in
    one REPEATABLE READ snapshot."""
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    tables: dict[str, bytes] = {}
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn, conn.begin():
            for table in metadata.sorted_tables:
                lines = [
                    json.dumps({k: _encode(v) for k, v in row._mapping.items()}, ensure_ascii=False)
                    for row in conn.execute(select(table))
                ]
                tables[table.name] = "\n".join(lines).encode()
    finally:
        engine.dispose()
    return tables


def sqlite_rows(snapshot: bytes) -> dict[str, bytes]:
    """The tables of a SQLite snapshot as JSON lines (a SQLite backup bound for PostgreSQL)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "db.sqlite"
        path.write_bytes(snapshot)
        engine = create_engine(f"sqlite:///{path}")
        try:
            metadata = MetaData()
            metadata.reflect(engine)
            with engine.connect() as conn:
                return {
                    table.name: "\n".join(
                        json.dumps({k: _encode(v) for k, v in r._mapping.items()})
                        for r in conn.execute(select(table))
                    ).encode()
                    for table in metadata.sorted_tables
                }
        finally:
            engine.dispose()


def load_rows(url: str, tables: Mapping[str, bytes], migrate: Callable[[], None]) -> None:
    """Refuses a database that has tables; else ``migrate`` makes the schema and every row of
    ``tables`` (JSON lines by table name) is inserted, with the foreign-key checks off."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            existing = MetaData()
            existing.reflect(conn)
            if existing.tables:
                raise InvalidInput("目标数据库不为空 / the target database already has tables")
        migrate()
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SET session_replication_role = replica"))
            else:
                conn.execute(text("PRAGMA foreign_keys=OFF"))
            for table in metadata.sorted_tables:
                raw = tables.get(table.name, b"")
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


def _reset_sequences(conn: Connection, metadata: MetaData) -> None:
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
