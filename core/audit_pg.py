"""The audit chain's statements on PostgreSQL, in as few round trips as the chain allows.

An append must know the head (the last entry's number and hash) before it can hash its own
entries, so the plain append is two trips: take the head's row lock and read it (with BEGIN),
then write the entries and the head's new hash. A worker is most often the only writer of its
chain, so the head it wrote last is most often the head still: :func:`append_after` hashes the
entries after that remembered head and sends them in one statement, which moves the head only
if it is still there — in the same row lock, re-checked after any wait for it — and inserts the
entries only if the head moved. When another writer came between (another worker, or a
transaction of this one that rolled back), nothing is written and the caller appends the plain
way. The chain is never written from a guess: the guess is checked by the database, under the
lock that orders every append.
"""

from __future__ import annotations

import json
from threading import Lock
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Engine

from core.roundtrips import driver_errors

ADVANCE = "UPDATE audit_head SET seq = seq + %s WHERE id = 1 RETURNING seq, hash"


def _array_type(key: str) -> str:
    if key == "seq":
        return "bigint"
    if key == "at":
        return "timestamptz"
    return "text"  # the strings, and the detail's JSON text, cast to its column below


class Statements:
    """The entry table's statements, built once from its columns."""

    def __init__(self, entry: Table) -> None:
        self.keys = tuple(column.key for column in entry.columns)
        self._detail = self.keys.index("detail")
        # Each column goes as one array, whatever the number of entries: one statement text,
        # prepared by psycopg once it recurs, and converted once (psycopg converts a statement
        # of more than 50 parameters afresh at every call).
        names = ", ".join(column.name for column in entry.columns)
        selected = ", ".join(
            f"u.c{n}::json" if key == "detail" else f"u.c{n}" for n, key in enumerate(self.keys)
        )
        arrays = ", ".join(f"%s::{_array_type(key)}[]" for key in self.keys)
        aliases = ", ".join(f"c{n}" for n in range(len(self.keys)))
        insert = (
            f"INSERT INTO audit_entry ({names}) SELECT {selected} "  # noqa: S608 - model names
            f"FROM unnest({arrays}) AS u({aliases})"
        )
        self.insert_and_set_head = (
            f"WITH entries AS ({insert}) UPDATE audit_head SET hash = %s WHERE id = 1"  # noqa: S608
        )
        # The head moves only from where it was remembered; the entries follow only if it did.
        self.append_after = (
            "WITH head AS (UPDATE audit_head SET seq = %s, hash = %s"  # noqa: S608
            " WHERE id = 1 AND seq = %s AND hash = %s RETURNING 1),"
            f" entries AS ({insert} WHERE EXISTS (SELECT FROM head))"
            " SELECT count(*) FROM head"
        )

    def columns(self, rows: list[dict[str, Any]]) -> list[list[Any]]:
        columns: list[list[Any]] = [[row[key] for row in rows] for key in self.keys]
        columns[self._detail] = [json.dumps(detail) for detail in columns[self._detail]]
        return columns


def _opens_transaction(raw: Any) -> bool:
    """Whether the caller left the transaction to the append (``verify.log``, in autocommit):
    BEGIN then goes in the append's first round trip, not one of its own."""
    from psycopg.pq import TransactionStatus

    return bool(raw.autocommit and raw.info.transaction_status == TransactionStatus.IDLE)


def advance(connection: Connection, count: int) -> Any:
    """The head's lock and the previous hash, in one round trip (``None``: no head yet)."""
    from psycopg import ClientCursor

    raw: Any = connection.connection.driver_connection
    with driver_errors(connection):
        if _opens_transaction(raw):
            cursor = ClientCursor(raw)
            cursor.execute("BEGIN; " + ADVANCE, (count,))
            cursor.nextset()
            return cursor.fetchone()
        return raw.execute(ADVANCE, (count,)).fetchone()


def insert_and_set_head(
    connection: Connection, statements: Statements, rows: list[dict[str, Any]]
) -> None:
    """The entries and the head's new hash in one statement, one round trip."""
    raw: Any = connection.connection.driver_connection
    with driver_errors(connection):
        raw.execute(statements.insert_and_set_head, [*statements.columns(rows), rows[-1]["hash"]])


def append_after(
    connection: Connection,
    statements: Statements,
    head: tuple[int, str],
    rows: list[dict[str, Any]],
) -> bool:
    """``rows``, numbered and hashed after ``head``, written if the head is still ``head``:
    one round trip (with BEGIN when the caller left it, the two pipelined). The statement is
    prepared on the server: psycopg keeps it, and prepares it again after a ROLLBACK has made
    it deallocate every statement. False: nothing was written."""
    raw: Any = connection.connection.driver_connection
    params = [rows[-1]["seq"], rows[-1]["hash"], head[0], head[1], *statements.columns(rows)]
    with driver_errors(connection):
        if _opens_transaction(raw):
            with raw.pipeline():
                raw.execute("BEGIN")
                cursor = raw.execute(statements.append_after, params, prepare=True)
        else:
            cursor = raw.execute(statements.append_after, params)
        found = cursor.fetchone()
    return bool(found and found[0] == 1)


class Heads:
    """The head each engine's chain had after this process's last append to it: a guess,
    which :func:`append_after` has the database check."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._heads: WeakKeyDictionary[Engine, tuple[int, str]] = WeakKeyDictionary()

    def get(self, engine: Engine) -> tuple[int, str] | None:
        with self._lock:
            return self._heads.get(engine)

    def put(self, engine: Engine, head: tuple[int, str]) -> None:
        with self._lock:
            self._heads[engine] = head
