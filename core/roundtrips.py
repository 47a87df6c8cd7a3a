"""Round trips on PostgreSQL: the statements of a verification sent in as few as its answers
allow.

Every verification is an audited write, and a worker's verifications are written by one
group-commit writer at a time (``verify.log``), so the round trips of that one transaction are
the worker's ceiling: each waits for the server, then for the GIL, which the worker's other
threads hold meanwhile. Where a statement's answer is not needed before the next one, the two
go together: the audit entries with the head's new hash (one statement, ``core.audit``), the
verification-log rows with COMMIT (one simple query, :func:`commit_with`). psycopg's pipeline
mode sends as few trips but cost more here than the trip it saved (measured: a pipelined
write 1.1 ms against 0.7 ms for the same statements merged). It is used for one pair only:
BEGIN with the append after the head a worker left (``core.audit_pg``), whose statement must
stay prepared, which a simple query is not.

SQLAlchemy runs one statement a call; what goes to the psycopg connection under it runs in its
transaction, and its errors come back as SQLAlchemy's (``Unavailable`` upstream still sees an
``OperationalError``), a lost connection invalidated as SQLAlchemy would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from threading import Lock
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import JSON, Column, DateTime, Integer, Table
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError


def psycopg_connection(connection: Connection) -> Any | None:
    """The psycopg (3) connection under ``connection`` on PostgreSQL, else None (SQLite,
    another driver): the caller then writes statement by statement, as before."""
    dialect = connection.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return None
    return connection.connection.driver_connection


_CURSORS: WeakKeyDictionary[Any, dict[bool, Any]] = WeakKeyDictionary()
_CURSORS_LOCK = Lock()


def kept_cursor(raw: Any, *, binary: bool = False) -> Any:
    """A cursor of the psycopg connection ``raw``, kept for the connection's next statement of
    the same format. ``Connection.execute`` builds a cursor for every statement (its adapters'
    map copied, its loaders looked up): 0.04 ms of client CPU, a third of what the record read
    costs the worker beyond the round trip. A connection serves one thread at a time (the
    pool's checkout), so its cursor does too; one whose connection closed is replaced."""
    with _CURSORS_LOCK:
        kept = _CURSORS.get(raw)
        if kept is None:
            kept = _CURSORS[raw] = {}
        cursor = kept.get(binary)
        if cursor is None or cursor.closed:
            cursor = kept[binary] = raw.cursor(binary=binary)
    return cursor


CONNECT_SECONDS = 5  # an asynchronous connection not made by then is given up


async def connect_async(engine: Engine, name: str) -> Any:
    """An asynchronous psycopg connection to ``engine``'s PostgreSQL database, in autocommit,
    made from the engine's own URL (host, database, user, options) as its pool connects: for
    an event loop that waits on the database without a thread (``verify.loop_desk``).
    ``name``: its ``application_name`` in ``pg_stat_activity``, unless the URL sets one."""
    import psycopg

    args, kwargs = engine.dialect.create_connect_args(engine.url)
    kwargs = {"connect_timeout": CONNECT_SECONDS, "application_name": name, **kwargs}
    kwargs["autocommit"] = True
    return await psycopg.AsyncConnection.connect(*args, **kwargs)


@contextmanager
def driver_errors(connection: Connection) -> Iterator[None]:
    """The driver's own errors (psycopg's, sqlite3's) raised in the block as SQLAlchemy's, as
    if SQLAlchemy had run the statements: a locked or unreachable database is an
    ``OperationalError`` the callers answer with a 503, and a disconnect invalidates the
    connection (the pool then drops it)."""
    base: type[Exception]
    if connection.dialect.name == "sqlite":
        import sqlite3

        base = sqlite3.Error
    else:
        import psycopg

        base = psycopg.Error
    try:
        yield
    except base as exc:
        raw = connection.connection.driver_connection
        lost = connection.dialect.is_disconnect(exc, raw, None)  # type: ignore[arg-type]
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            None, None, exc, base, connection_invalidated=lost, dialect=connection.dialect
        ) from exc


def commit_with(
    connection: Connection,
    table: Table,
    keys: Sequence[str],
    rows: Sequence[dict[str, Any]],
    *,
    wait_for_disk: bool = True,
) -> None:
    """Insert ``rows`` into ``table`` and COMMIT the transaction, in one round trip (one simple
    query, parameters bound by psycopg on this side). A refused row aborts the transaction:
    nothing of it commits, and the error is raised. The SQLAlchemy transaction's own commit
    afterwards finds nothing left to commit.

    ``wait_for_disk=False``: this commit does not wait for its WAL to reach the disk
    (``SET LOCAL synchronous_commit = off``, for this transaction only): the server flushes it
    within a few hundred milliseconds; a crash of the server or its machine before then loses
    the transaction whole (never part of it, and never one committed before a later durable
    commit, which flushes everything before it)."""
    import psycopg

    raw: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
    keys = tuple(keys)
    # The rows as one JSON parameter: one statement text whatever their number, which psycopg
    # converts once (a row of parameters each, a batch of 32 bound 192, past what it caches, and
    # parsing the statement again each time was most of the write's time in this process).
    query = f"{insert_from_json(table, keys)}; COMMIT"
    if not wait_for_disk:
        query = "SET LOCAL synchronous_commit = off; " + query
    with driver_errors(connection):
        psycopg.ClientCursor(raw).execute(query, [as_json(table, keys, list(rows))])


def _record_type(column: Column[Any]) -> str:
    if isinstance(column.type, DateTime):
        return "timestamptz"
    if isinstance(column.type, Integer):
        return "bigint"
    if isinstance(column.type, JSON):
        return "json"
    return "text"  # the strings, cast to their columns' types on insert


def insert_from_json(table: Table, keys: tuple[str, ...]) -> str:
    """INSERT of ``table``'s ``keys`` columns from one parameter, the rows as a JSON array of
    objects (:func:`as_json`), whatever the number of rows: one statement text, prepared by
    psycopg once it recurs. As one array parameter a column, each call cost psycopg a
    Python-level dump of every array (measured: most of a one-verification write's time in
    this process); a JSON text is one string to send, parsed by the server."""
    columns = [table.c[key] for key in keys]
    names = ", ".join(f'"{column.name}"' for column in columns)
    selected = ", ".join(f'r."{column.name}"' for column in columns)
    record = ", ".join(f'"{column.name}" {_record_type(column)}' for column in columns)
    return (
        f'INSERT INTO "{table.name}" ({names}) SELECT {selected} '  # noqa: S608 - model names
        f"FROM json_to_recordset(%s::json) AS r({record})"
    )


@cache
def _time_keys(table: Table, keys: tuple[str, ...]) -> tuple[str, ...]:
    """The date-time columns among ``keys``: looked up once a table, not once a write."""
    return tuple(key for key in keys if isinstance(table.c[key].type, DateTime))


def as_json(table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """``rows`` as :func:`insert_from_json` reads them: date-times as ISO 8601 text with their
    offset (every one stored is aware, ``core.clock``), JSON columns' values nested."""
    times = _time_keys(table, keys)
    out = []
    for row in rows:
        values = {key: row[key] for key in keys}
        for key in times:
            value = values[key]
            if value is not None:
                values[key] = value.isoformat()
        out.append(values)
    return json.dumps(out, separators=(",", ":"))
