"""What the workers of one service must agree on, in one narrow store: Redis for a fleet, this
process's memory for one node.

A worker is stateless except for a few short-lived facts that must hold for the whole service,
whichever worker a request reaches: a client's rate window (N workers must give a client its
allowance once, not N times), a signed-out session (refused by every worker, not only the one
that saw the sign-out), a single-use value such as an OpenID Connect ``state`` (used once in the
whole fleet), and the development identity provider's codes, tokens and signing key. Each is a
key with a lifetime; the store offers exactly the operations they need (:class:`SharedState`).

With ``ELICENCE_REDIS_URL`` the store is Redis (:class:`RedisState`): every operation is one
round trip, the rate window one Lua script over a sorted set (the same sliding log the memory
version keeps, timed by the Redis server's clock so workers on several machines agree). Without
it the store is this process's memory (:class:`MemoryState`) and the service says at start that
it runs as one node (:func:`announce`).

When Redis does not answer, an operation raises :class:`StoreUnavailable` (503, naming Redis);
the caller decides what that means for its route: rate windows fall back to the worker's own
window (``api.edge.limits``), sign-in and session checks refuse (``api.edge.holder_session``). One warning is logged when an outage
begins and one line when it ends, never one per request; while it lasts, Redis is tried again at
most every :data:`RETRY_SECONDS`, doubling up to :data:`MAX_RETRY_SECONDS` while it lasts, so a
dead Redis costs a request nothing but a clock read, and a hung one (each try waits out the
timeout, and the rate window's try holds the worker's event loop) at most 0.5 s in 8.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from core.errors import Unavailable

log = logging.getLogger("elicence.shared_state")
PREFIX = "elicence:"
RETRY_SECONDS = 1.0  # while Redis is down, it is tried again after this long, then 2, 4 ...
MAX_RETRY_SECONDS = 8.0
TIMEOUT_SECONDS = 0.5  # connect and reply, per round trip: loopback or a LAN answers in < 1 ms
UNAVAILABLE = (
    "共享状态存储（Redis）暂不可用，请稍后再试 / the shared state store (Redis) is unavailable; "
    "try again later"
)
_OUTAGE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)
T = TypeVar("T")

# KEYS[1] the window; ARGV: the rate's count, its length in microseconds, a unique member.
# A sliding log like api.edge.limits.SlidingWindow: hits at or before now - window are dropped;
# at the count, the answer is the microseconds until the oldest hit leaves, else the hit is kept
# and -1 returned. The time is the Redis server's, so every worker reads the same clock.
SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local horizon = now - tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', horizon)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(tonumber(first[2]) - horizon, 1000)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) / 1000))
return -1
"""


class StoreUnavailable(Unavailable):
    """Redis did not answer (refused, timed out, read-only): a 503 that names it."""


class SharedState(Protocol):
    """The facts the workers share, each under a key with a lifetime in seconds."""

    @property
    def kind(self) -> str:
        """``redis`` or ``memory``."""
        ...

    def hit(self, key: str, count: int, seconds: int) -> float | None:
        """One hit on a sliding window of ``count`` per ``seconds``: None when allowed, else
        the seconds until a hit would be."""
        ...

    def claim(self, key: str, seconds: float) -> bool:
        """True for the first claim of ``key`` within its lifetime, False for every later one
        (single use, sign-out)."""
        ...

    def exists(self, key: str) -> bool: ...

    def put(self, key: str, value: str, seconds: float) -> None: ...

    def get(self, key: str) -> str | None: ...

    def take(self, key: str) -> str | None:
        """The value, removed in the same step: two workers never both take it."""
        ...

    def put_once(self, key: str, value: str) -> str:
        """The first value ever put under ``key`` (kept without a lifetime): the one every
        worker uses, e.g. a signing key made by whichever worker started first."""
        ...

    def describe(self) -> dict[str, str]:
        """For ``/healthz``: what the store is and whether it answered last time."""
        ...


class MemoryState:
    """One process's store: the demo and a single node. Lifetimes are kept on the monotonic
    clock; expired keys are dropped as they are met, and all of them when the store grows."""

    kind = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[str, float]] = {}
        self._windows: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> str | None:
        found = self._values.get(key)
        if found is None:
            return None
        if found[1] <= now:
            del self._values[key]
            return None
        return found[0]

    def _set(self, key: str, value: str, until: float, now: float) -> None:
        if len(self._values) > 100_000:
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
        self._values[key] = (value, until)

    def hit(self, key: str, count: int, seconds: int) -> float | None:
        now = self._clock()
        horizon = now - seconds
        with self._lock:
            if len(self._windows) > 50_000:
                self._windows = {k: v for k, v in self._windows.items() if v and v[-1] > horizon}
            hits = self._windows.setdefault(key, deque())
            while hits and hits[0] <= horizon:
                hits.popleft()
            if len(hits) >= count:
                return max(hits[0] - horizon, 0.001)
            hits.append(now)
            return None

    def claim(self, key: str, seconds: float) -> bool:
        now = self._clock()
        with self._lock:
            if self._live(key, now) is not None:
                return False
            self._set(key, "1", now + seconds, now)
            return True

    def exists(self, key: str) -> bool:
        with self._lock:
            return self._live(key, self._clock()) is not None

    def put(self, key: str, value: str, seconds: float) -> None:
        now = self._clock()
        with self._lock:
            self._set(key, value, now + seconds, now)

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key, self._clock())

    def take(self, key: str) -> str | None:
        with self._lock:
            value = self._live(key, self._clock())
            self._values.pop(key, None)
            return value

    def put_once(self, key: str, value: str) -> str:
        now = self._clock()
        with self._lock:
            found = self._live(key, now)
            if found is not None:
                return found
            self._set(key, value, math.inf, now)
            return value

    def describe(self) -> dict[str, str]:
        return {"kind": "memory", "nodes": "one"}


class RedisState:
    """The fleet's store: one Redis (``ELICENCE_REDIS_URL``), keys under ``prefix``. Each
    operation is one round trip with a short timeout and no client-side retries: a request
    waits for Redis at most :data:`TIMEOUT_SECONDS`, then the caller's rule for an outage
    applies."""

    kind = "redis"

    def __init__(self, url: str, *, prefix: str = PREFIX, timeout: float = TIMEOUT_SECONDS) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._prefix = prefix
        self._where = _where(url)
        self._window = self._client.register_script(SLIDING_WINDOW)
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._failures = 0  # tries failed in a row

    def _run(self, operation: Callable[[], T]) -> T:
        """One round trip; an outage is logged when it begins and when it ends."""
        now = time.monotonic()
        if self._down_since is not None and now < self._retry_at:
            raise StoreUnavailable(UNAVAILABLE)  # no cause: the edge would log it per request
        try:
            result = operation()
        except _OUTAGE as exc:
            failed = time.monotonic()  # after the timeout, when Redis hangs
            with self._lock:
                first = self._down_since is None
                if first:
                    self._down_since = now
                self._failures += 1
                wait = min(RETRY_SECONDS * 2 ** (self._failures - 1), MAX_RETRY_SECONDS)
                self._retry_at = failed + wait
            if first:
                log.warning(
                    "Redis %s unreachable (%s): rate windows fall back to this worker's own, "
                    "sign-in and session checks answer 503 until it is back",
                    self._where,
                    type(exc).__name__,
                )
            raise StoreUnavailable(UNAVAILABLE) from exc
        if self._down_since is not None:
            with self._lock:
                since, self._down_since, self._failures = self._down_since, None, 0
            if since is not None:
                log.warning("Redis %s reachable again after %.1f s", self._where, now - since)
        return result

    def hit(self, key: str, count: int, seconds: int) -> float | None:
        member = secrets.token_hex(8)
        keys = [self._prefix + key]
        args: list[str | int] = [count, seconds * 1_000_000, member]
        answer = self._run(lambda: self._window(keys=keys, args=args))
        micros = int(answer)
        return None if micros < 0 else micros / 1_000_000

    def claim(self, key: str, seconds: float) -> bool:
        millis = max(int(seconds * 1000), 1)
        return bool(
            self._run(lambda: self._client.set(self._prefix + key, b"1", nx=True, px=millis))
        )

    def exists(self, key: str) -> bool:
        return bool(self._run(lambda: self._client.exists(self._prefix + key)))

    def put(self, key: str, value: str, seconds: float) -> None:
        millis = max(int(seconds * 1000), 1)
        self._run(lambda: self._client.set(self._prefix + key, value.encode(), px=millis))

    def get(self, key: str) -> str | None:
        return _text(self._run(lambda: self._client.get(self._prefix + key)))

    def take(self, key: str) -> str | None:
        return _text(self._run(lambda: self._client.getdel(self._prefix + key)))

    def put_once(self, key: str, value: str) -> str:
        # SET NX GET (Redis 7): the former value when there was one, nil when this one is kept.
        former = self._run(
            lambda: self._client.set(self._prefix + key, value.encode(), nx=True, get=True)
        )
        found = _text(former)
        return value if found is None else found

    @property
    def where(self) -> str:
        return self._where

    def ping(self) -> None:
        self._run(self._client.ping)

    def describe(self) -> dict[str, str]:
        state = "unavailable" if self._down_since is not None else "ok"
        return {"kind": "redis", "nodes": "shared", "redis": state}

    def close(self) -> None:
        self._client.close()


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def _where(url: str) -> str:
    """Host, port and database of a Redis URL, for logs: never its password."""
    parts = urlsplit(url)
    return f"{parts.hostname or '?'}:{parts.port or 6379}{parts.path or '/0'}"


_fleet: dict[str, RedisState] = {}
_fleet_lock = threading.Lock()


def connect(url: str | None) -> SharedState:
    """The store for ``ELICENCE_REDIS_URL``: one :class:`RedisState` per URL in a process (so
    the edge's limits and the services share its connections and its outage state), or a new
    :class:`MemoryState` without one (so several apps in one process never share a window)."""
    if not url:
        return MemoryState()
    with _fleet_lock:
        state = _fleet.get(url)
        if state is None:
            state = _fleet[url] = RedisState(url)
        return state


def announce(state: SharedState) -> None:
    """The line a worker logs at start: one node in memory, or the Redis its fleet shares."""
    if state.kind == "memory":  # info: commands that build the graph need not hear it
        log.info(
            "单节点运行 / running as one node: no ELICENCE_REDIS_URL, so rate windows, signed-out "
            "sessions and single-use codes are this process's own; start one worker, or set "
            "ELICENCE_REDIS_URL for several"
        )
    elif isinstance(state, RedisState):
        log.info("shared state in Redis %s: this worker is one of a fleet", state.where)
