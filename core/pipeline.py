"""Round trips on PostgreSQL: statements sent together through psycopg's pipeline mode.

Every verification is an audited write, and a worker's verifications are written by one
group-commit writer at a time (``verify.log``), so the round trips of that one transaction are
the worker's ceiling: each one waits for the server, and then for the GIL, which the worker's
other threads hold meanwhile. Written statement by statement it took seven (BEGIN, the log rows,
the head's advance, the entries, the head's hash, COMMIT, and the pool's ping); pipelined, the
statements whose answers are not needed before the next one go out together.

SQLAlchemy cannot run a pipeline (it reads each statement's result description at once), so
the few pipelined statements go to the psycopg connection under the SQLAlchemy one, in its
transaction; their errors come back as SQLAlchemy's (``Unavailable`` upstream still sees an
``OperationalError``), and a lost connection is invalidated as SQLAlchemy would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError


def pipelining(connection: Connection) -> Any | None:
    """The psycopg (3) connection under ``connection`` when it can pipeline, else None (SQLite,
    another driver, a libpq without pipeline mode): the caller then writes as before."""
    dialect = connection.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        return None
    import psycopg

    if not psycopg.Pipeline.is_supported():
        return None
    return connection.connection.driver_connection


@contextmanager
def driver_errors(connection: Connection) -> Iterator[None]:
    """psycopg's errors raised in the block as SQLAlchemy's, as if SQLAlchemy had run the
    statements: a disconnect invalidates the connection (the pool then drops it)."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raw = connection.connection.driver_connection
        lost = connection.dialect.is_disconnect(exc, raw, None)  # type: ignore[arg-type]
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, connection_invalidated=lost, dialect=connection.dialect
        ) from exc


def insert_sql(table: Table, keys: Iterable[str]) -> str:
    """``INSERT INTO table (keys) VALUES (%(key)s, ...)`` for psycopg's named parameters."""
    names = list(keys)
    columns = ", ".join(f'"{table.c[key].name}"' for key in names)
    values = ", ".join(f"%({key})s" for key in names)
    return f'INSERT INTO "{table.name}" ({columns}) VALUES ({values})'  # noqa: S608 - model names
