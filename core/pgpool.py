"""The PostgreSQL engine's pool: how many connections, and when one is checked before use.

SQLAlchemy's ``pool_pre_ping`` sends a statement on every checkout, so that a connection the
server dropped (a restart, an idle timeout) is replaced before a request fails on it. A QR
verification checks out a connection twice (its read, and its group commit), and the ping was
a sixth of its round trips. Here the check costs a ``select()`` on the connection's socket
instead: a server that ended a connection (shutdown, restart, ``pg_terminate_backend``, an
idle timeout) closes it or sends a FATAL message, and either makes an idle socket readable — an
idle connection has nothing else to read. Only such a connection, or one idle longer than
``IDLE_PING_SECONDS`` (a peer that vanished without a word: a network partition, a failover
behind a virtual address), is pinged; a failed ping makes the pool open a fresh connection, as
``pool_pre_ping`` did.
"""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlmodel import create_engine

IDLE_PING_SECONDS = 10.0
POOL_SIZE = 10  # the threads a worker runs verifications on hold one each, briefly
MAX_OVERFLOW = 10
_IDLE_SINCE = "elicence_idle_since"


def postgres_engine(url: str, connect_args: dict[str, Any] | None = None) -> Engine:
    """An engine for PostgreSQL with the pool above (``pool_pre_ping`` off: see the module)."""
    engine = create_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_pre_ping=False,
        connect_args=connect_args or {},
    )
    check_on_checkout(engine)
    return engine


def check_on_checkout(engine: Engine, idle_seconds: float = IDLE_PING_SECONDS) -> None:
    """Ping a pooled connection before use only when it may be dead (see the module)."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None:  # opened just now
            return
        if time.monotonic() - since <= idle_seconds and not _readable(dbapi_connection):
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection failed its ping")


def _readable(dbapi_connection: Any) -> bool:
    """Whether the idle connection's socket has something to read (or is gone): the server
    closed it or told it why; a live idle connection has nothing to say."""
    try:
        fileno = dbapi_connection.fileno()
    except Exception:  # closed on our side, or no socket: check it the slow way
        return True
    try:
        readable, _, broken = select.select([fileno], [], [fileno], 0)
    except (OSError, ValueError):
        return True
    return bool(readable or broken)
