"""Writes on SQLite sent to sqlite3 itself, with the conversions SQLAlchemy would apply.

Every verification is an audited write: the head's advance, its entries, the head's new hash
and the verification-log rows. On SQLite these are calls inside this process, and through
SQLAlchemy each cost several times sqlite3's own work (the compiled-statement cache, parameter
processing, a result object per statement): measured on the QR desk, the write was half of a
one-scan batch's time. Here each statement is compiled once per table and columns, its values
converted by the same bind processors SQLAlchemy uses (a date-time as SQLite's text, JSON as
its serialiser writes it), and handed to the driver connection under the caller's SQLAlchemy
connection: the same transaction, the same rows as SQLAlchemy would write
(``tests/test_sqlite_writes.py`` reads them back through the ORM).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect

from core.roundtrips import driver_errors

Processor = Callable[[Any], Any] | None
_INSERTS: dict[tuple[str, str, tuple[str, ...]], tuple[str, tuple[Processor, ...]]] = {}


def sqlite_connection(connection: Connection) -> Any | None:
    """The sqlite3 connection under ``connection`` on SQLite, else None (PostgreSQL)."""
    if connection.dialect.name != "sqlite":
        return None
    return connection.connection.driver_connection


def _insert(
    dialect: Dialect, table: Table, keys: tuple[str, ...]
) -> tuple[str, tuple[Processor, ...]]:
    """Built once per table and columns (not per engine: tests make thousands)."""
    cache_key = (dialect.name, table.name, keys)
    found = _INSERTS.get(cache_key)
    if found is None:
        columns = [table.c[key] for key in keys]
        names = ", ".join(f'"{column.name}"' for column in columns)
        marks = ", ".join("?" * len(columns))
        sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608 - model names
        processors = tuple(column.type._cached_bind_processor(dialect) for column in columns)
        found = _INSERTS[cache_key] = (sql, processors)
    return found


def insert_rows(
    connection: Connection, table: Table, keys: tuple[str, ...], rows: Sequence[dict[str, Any]]
) -> None:
    """``rows`` (each with every one of ``keys``) into ``table``, in the caller's transaction."""
    raw = sqlite_connection(connection)
    assert raw is not None, "only on SQLite"
    sql, processors = _insert(connection.dialect, table, keys)
    values = [
        tuple(
            row[key] if process is None else process(row[key])
            for key, process in zip(keys, processors, strict=True)
        )
        for row in rows
    ]
    with driver_errors(connection):
        if len(values) == 1:
            raw.execute(sql, values[0])
        else:
            raw.executemany(sql, values)


def execute(connection: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """One statement of fixed text (``?`` parameters of plain values), its rows."""
    raw = sqlite_connection(connection)
    assert raw is not None, "only on SQLite"
    with driver_errors(connection):
        return list(raw.execute(sql, tuple(params)).fetchall())
