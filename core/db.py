"""Database engine and transactions.

SQLite (one file in the data directory) by default, PostgreSQL in production. Every write of the
service happens inside :func:`transaction`, so an operation either lands whole — record, sealed
bytes, audit entry — or not at all.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, event, or_
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, SQLModel, col, create_engine
from sqlmodel.sql.expression import SelectOfScalar

from core.errors import InvalidInput, Unavailable
from core.pgpool import postgres_engine


def private_sqlite_file(url: str) -> None:
    """The SQLite database file exists and only its owner may read it (0600), before SQLite
    opens it: SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions.
    An existing file readable by others is made private; an in-memory database is left alone.

    An existing file is never opened here: closing any descriptor of a file drops every POSIX
    lock this process holds on it, SQLite's included."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return  # SQLite reports the missing directory itself
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for item in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if item.exists() and stat.S_IMODE(item.stat().st_mode) & 0o077:
            os.chmod(item, 0o600)


def create_db_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return postgres_engine(url)  # the pool and its checks: core.pgpool


def create_replica_engine(url: str | None) -> Engine | None:
    """The engine of a PostgreSQL streaming replica, for reads that tolerate replication lag
    (verification, search), or None when none is configured.

    Every connection is read-only (``default_transaction_read_only``): a replica URL that points
    at a primary by mistake still never takes a write. A replica that does not answer within two
    seconds is given up for the primary by its callers (``verify.service``), so the connection
    timeout is short."""
    if not url:
        return None
    if not url.startswith("postgresql"):
        raise InvalidInput(
            "只读副本须为 PostgreSQL 流复制备库 / the read replica must be a PostgreSQL "
            "streaming replica (postgresql+psycopg://...)",
            field="database_replica_url",
        )
    engine = postgres_engine(url, connect_args={"connect_timeout": 2})

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET default_transaction_read_only = on")
        cursor.close()
        dbapi_connection.commit()

    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits at the end of the block, or rolls back entirely."""
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
    except OperationalError as exc:
        raise Unavailable(
            "数据库暂不可用，请稍后重试 / the database is unavailable, please retry",
            cause=str(exc.orig),
        ) from exc


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A session for reads only: nothing is committed. ``engine`` may be a replica's."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    except OperationalError as exc:
        raise unavailable(exc) from exc


def unavailable(exc: OperationalError) -> Unavailable:
    """The answer to a database that cannot be reached or is locked: a 503 naming it."""
    return Unavailable(
        "数据库暂不可用，请稍后重试 / the database is unavailable, please retry",
        cause=str(exc.orig),
    )


@functools.cache
def _datetime_keys(table: Any) -> tuple[str, ...]:
    """A table's datetime columns, found once: every row loaded asks."""
    return tuple(c.key for c in table.columns if isinstance(c.type, DateTime))


def _utc_on_load(target: Any, *_: Any) -> None:
    """SQLite stores no offset: give every loaded datetime column back its UTC zone, so what the
    API prints is a proper RFC 3339 time on SQLite as on PostgreSQL."""
    table = getattr(target, "__table__", None)
    if table is None:
        return
    loaded = target.__dict__
    for key in _datetime_keys(table):
        value = loaded.get(key)
        if isinstance(value, datetime) and value.tzinfo is None:
            set_committed_value(target, key, value.replace(tzinfo=UTC))


event.listen(SQLModel, "load", _utc_on_load, propagate=True)
event.listen(SQLModel, "refresh", _utc_on_load, propagate=True)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything the service stores is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_Row = TypeVar("_Row", bound=SQLModel)


def newest_first(
    session: Session,
    query: SelectOfScalar[_Row],
    at: Any,
    row_id: Any,
    before: tuple[datetime, int | None] | None,
    limit: int,
) -> list[_Row]:
    """One page of a log, newest first by ``(at, id)``, read by keyset so a page neither repeats
    nor skips rows when many share one instant: ``before = (at, id)`` gives the rows after it in
    that order, ``(at, None)`` those at ``at`` or earlier."""
    if before is not None:
        moment, last_id = before
        query = query.where(
            col(at) <= moment
            if last_id is None
            else or_(col(at) < moment, (col(at) == moment) & (col(row_id) < last_id))
        )
    rows = list(session.exec(query.order_by(col(at).desc(), col(row_id).desc()).limit(limit)))
    for row in rows:
        setattr(row, at.key, as_utc(getattr(row, at.key)))
    return rows
