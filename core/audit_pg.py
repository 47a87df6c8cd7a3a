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

from dataclasses import dataclass
from threading import Lock
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Engine

from core.roundtrips import as_json, driver_errors, insert_from_json, kept_cursor

ADVANCE = "UPDATE audit_head SET seq = seq + %s WHERE id = 1 RETURNING seq, hash"
START = "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, %s) ON CONFLICT (id) DO NOTHING"


def _moved_head(also_when: str = "") -> str:
    """The head moved from where it was remembered, only if it is still there: a CTE that
    returns one row if it moved (parameters: new seq and hash, remembered seq and hash)."""
    return (
        "head AS (UPDATE audit_head SET seq = %s, hash = %s"  # noqa: S608 - fixed text
        f" WHERE id = 1 AND seq = %s AND hash = %s{also_when} RETURNING 1)"
    )


class Statements:
    """The entry table's statements, built once from its columns."""

    def __init__(self, entry: Table) -> None:
        self.table = entry
        self.keys = tuple(column.key for column in entry.columns)
        insert = self.insert = insert_from_json(entry, self.keys)
        self.insert_and_set_head = (
            f"WITH entries AS ({insert}) UPDATE audit_head SET hash = %s WHERE id = 1"  # noqa: S608
        )
        # The head moves only from where it was remembered; the entries follow only if it did.
        self.append_after = (
            f"WITH {_moved_head()},"  # noqa: S608
            f" entries AS ({insert} WHERE EXISTS (SELECT FROM head))"
            " SELECT count(*) FROM head"
        )

    def rows(self, rows: list[dict[str, Any]]) -> str:
        return as_json(self.table, self.keys, rows)


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


def start_chain(connection: Connection, count: int, genesis: str) -> Any:
    """The head of a chain that has none yet, created if no other writer has just created it,
    then advanced as :func:`advance` does, in the transaction :func:`advance` opened. An
    UPDATE of a row that is not there locks nothing: writers arriving together at an empty
    chain would each insert the head, and all but one fail on its key."""
    raw: Any = connection.connection.driver_connection
    with driver_errors(connection):
        raw.execute(START, (genesis,))
        return raw.execute(ADVANCE, (count,)).fetchone()


def insert_and_set_head(
    connection: Connection, statements: Statements, rows: list[dict[str, Any]]
) -> None:
    """The entries and the head's new hash in one statement, one round trip."""
    raw: Any = connection.connection.driver_connection
    with driver_errors(connection):
        raw.execute(statements.insert_and_set_head, [statements.rows(rows), rows[-1]["hash"]])


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
    params = [rows[-1]["seq"], rows[-1]["hash"], head[0], head[1], statements.rows(rows)]
    with driver_errors(connection):
        if _opens_transaction(raw):
            with raw.pipeline():
                raw.execute("BEGIN")
                cursor = raw.execute(statements.append_after, params, prepare=True)
        else:
            cursor = raw.execute(statements.append_after, params)
        return moved(cursor.fetchone())


@dataclass(frozen=True)
class Rows:
    """Rows of another table written with a quiet batch of entries, in the same statement:
    the records of the same actions (``verify.log``: each verification's log row)."""

    table: Table
    keys: tuple[str, ...]
    rows: list[dict[str, Any]]
    wait_for_disk: bool = True


_QUIET: dict[tuple[str, tuple[str, ...], bool], str] = {}


def _quiet_statement(statements: Statements, also: Rows) -> str:
    """The head's move from where it was left, the entries and ``also``'s rows: one statement,
    so one transaction of its own in autocommit, nothing written unless the head moved.
    ``wait_for_disk=False``: the commit does not wait for the WAL's flush, as
    ``core.roundtrips.commit_with`` (``set_config(…, true)`` is ``SET LOCAL``, and the
    statement's own transaction is the one it commits)."""
    key = (also.table.name, also.keys, also.wait_for_disk)
    found = _QUIET.get(key)
    if found is not None:
        return found
    relaxed = (
        ""
        if also.wait_for_disk
        else ("relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS on_commit), ")
    )
    moved = "" if also.wait_for_disk else " AND (SELECT on_commit FROM relaxed) = 'off'"
    found = _QUIET[key] = (
        f"WITH {relaxed}{_moved_head(moved)},"  # noqa: S608
        f" entries AS ({statements.insert} WHERE EXISTS (SELECT FROM head)),"
        f" also AS ({insert_from_json(also.table, also.keys)} WHERE EXISTS (SELECT FROM head))"
        " SELECT count(*) FROM head"
    )
    return found


@dataclass(frozen=True)
class QuietWrite:
    """A quiet append (:func:`quiet_write`) as its statement and parameters, and the head it
    leaves: sent by :func:`write_quietly`, or by a caller with a connection of its own (an
    event loop's asynchronous one, ``verify.loop_desk``), which then reads :func:`moved`."""

    statement: str
    params: list[Any]
    head: tuple[int, str]


def quiet_write(
    statements: Statements, head: tuple[int, str], rows: list[dict[str, Any]], also: Rows
) -> QuietWrite:
    """``rows``, numbered and hashed after ``head``, and ``also``'s rows as one statement: its
    own transaction on a connection in autocommit, nothing written unless the head moved."""
    params = [rows[-1]["seq"], rows[-1]["hash"], head[0], head[1], statements.rows(rows)]
    params.append(as_json(also.table, also.keys, also.rows))
    return QuietWrite(
        _quiet_statement(statements, also), params, (rows[-1]["seq"], rows[-1]["hash"])
    )


def moved(found: Any) -> bool:
    """Whether the row a quiet write or :func:`append_after` answered says the head moved
    (False: it had moved from the remembered head meanwhile, and nothing was written)."""
    return bool(found and found[0] == 1)


def write_quietly(connection: Connection, write: QuietWrite) -> bool:
    """``write`` in one round trip, on a connection the caller left in autocommit (the
    statement is its own transaction). False: the head had moved, nothing was written."""
    raw: Any = connection.connection.driver_connection
    if not _opens_transaction(raw):
        return False  # inside a transaction of the caller's: it would not commit here
    with driver_errors(connection):
        return moved(kept_cursor(raw).execute(write.statement, write.params).fetchone())


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
