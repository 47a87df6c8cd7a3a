"""The shared store (``core.shared_state``) and the rate windows over it (``api.edge.limits``):
the same contract in memory and in Redis, two workers sharing one allowance, keys that hold no
address or credential, and a Redis that refuses connections (limits fail open to the worker's
own window, every other use answers 503, one warning per outage)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.edge.limits import EdgeLimits
from api.settings import Settings
from core.errors import ErrorKind
from core.shared_state import (
    RETRY_SECONDS,
    MemoryState,
    RedisState,
    SharedState,
    StoreUnavailable,
    connect,
)
from tests.redis_server import (
    SHARED_URL,
    RedisServer,
    closed_port_url,
    redis_server,
    shared_redis_prefix,
)

TOKEN = "ek_live_0123456789abcdefghijklmnopqrstuv"
ADDRESS = "203.0.113.77"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest) -> Iterator[SharedState]:
    if request.param == "memory":
        yield MemoryState()
        return
    with shared_redis_prefix() as prefix:
        state = RedisState(SHARED_URL, prefix=prefix)
        yield state
        state.close()


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as started:
        yield started


def test_a_claim_is_granted_once_within_its_lifetime(store: SharedState) -> None:
    assert store.claim("once:a", 0.3) is True
    assert store.claim("once:a", 0.3) is False  # a replay, from this worker or another
    assert store.exists("once:a")
    assert store.claim("once:b", 0.3) is True  # another key is another claim
    time.sleep(0.45)
    assert not store.exists("once:a")
    assert store.claim("once:a", 0.3) is True  # lapsed: the key is free again


def test_a_value_is_taken_once(store: SharedState) -> None:
    store.put("code:1", "grant", 5)
    assert store.get("code:1") == "grant"
    assert store.take("code:1") == "grant"
    assert store.take("code:1") is None  # the second worker to try gets nothing
    assert store.get("code:1") is None
    store.put("code:2", "short", 0.2)
    time.sleep(0.35)
    assert store.get("code:2") is None


def test_the_first_value_put_once_is_everyones(store: SharedState) -> None:
    assert store.put_once("key:signing", "first worker's") == "first worker's"
    assert store.put_once("key:signing", "second worker's") == "first worker's"


def test_a_window_allows_its_count_then_says_when(store: SharedState) -> None:
    answers = [store.hit("rate:w", 3, 60) for _ in range(4)]
    assert answers[:3] == [None, None, None]
    retry = answers[3]
    assert retry is not None and 59 < retry <= 60  # the oldest hit leaves in about a minute
    assert store.hit("rate:other", 3, 60) is None  # another key's window is its own


def test_a_window_slides(store: SharedState) -> None:
    assert [store.hit("rate:s", 2, 1) for _ in range(3)][2] is not None
    time.sleep(1.1)
    assert store.hit("rate:s", 2, 1) is None


@pytest.mark.slow
def test_two_workers_give_a_client_its_allowance_once() -> None:
    """Two workers, each its own connection to one Redis: 20 hits alternating between them
    against 10/minute are 10 allowed — not 10 each, as two memories would give."""
    with shared_redis_prefix() as prefix:
        one, two = RedisState(SHARED_URL, prefix=prefix), RedisState(SHARED_URL, prefix=prefix)
        allowed = sum((one if i % 2 else two).hit("rate:c", 10, 60) is None for i in range(20))
        assert allowed == 10
        apart = MemoryState(), MemoryState()
        assert sum(apart[i % 2].hit("rate:c", 10, 60) is None for i in range(20)) == 20
        one.close()
        two.close()


def _limits(tmp_path: Path, url: str, **rates: str) -> EdgeLimits:
    settings = Settings(
        data_dir=tmp_path,
        redis_url=url,
        public_rate_limit=rates.get("public", "10/minute"),
        client_rate_limit=rates.get("client", "10/minute"),
    )
    return EdgeLimits(settings)


def _refused(limits: EdgeLimits, path: str, *, authorization: bytes | None = None) -> bool:
    refusal = limits.refuse(
        "GET",
        path,
        length=None,
        limit=1024,
        authorization=authorization,
        cookie=None,
        address=ADDRESS,
    )
    return refusal is not None and refusal.status == 429


@pytest.mark.slow
def test_the_edge_limits_of_two_workers_share_one_window(
    server: RedisServer, tmp_path: Path
) -> None:
    first, second = _limits(tmp_path, server.url), _limits(tmp_path, server.url)
    public = [_refused((first, second)[i % 2], "/api/v1/verify") for i in range(16)]
    assert public.count(False) == 10 and public[10:] == [True] * 6
    bearer = b"Bearer " + TOKEN.encode()
    client = [
        _refused((first, second)[i % 2], "/api/v1/licences", authorization=bearer)
        for i in range(14)
    ]
    assert client.count(False) == 10
    keys = server.keys()
    assert any(k.startswith("elicence:rate:public:") for k in keys)
    assert any(k.startswith("elicence:rate:client:") for k in keys)
    # Neither the address nor the credential is readable in Redis: the address is an HMAC, the
    # credential its SHA-256 (as the memory window keys it), and the dotted address is gone.
    assert not any(ADDRESS in k or TOKEN in k or "203.0.113" in k for k in keys), keys


@pytest.mark.slow
def test_a_window_survives_a_new_worker(server: RedisServer, tmp_path: Path) -> None:
    """A worker started later (or restarted) sees the hits the others made."""
    _limits(tmp_path, server.url, public="5/minute")  # same window name, same budget
    early = _limits(tmp_path, server.url, public="5/minute")
    assert [_refused(early, "/pki/licence-status/x") for _ in range(5)] == [False] * 5
    late = _limits(tmp_path, server.url, public="5/minute")
    assert _refused(late, "/pki/licence-status/x")


def test_an_unreachable_redis_is_a_503_naming_it_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = RedisState(closed_port_url())
    caplog.set_level(logging.WARNING, logger="elicence.shared_state")
    started = time.monotonic()
    for _ in range(50):
        with pytest.raises(StoreUnavailable) as caught:
            state.exists("revoked-session:x")
    assert caught.value.kind is ErrorKind.UNAVAILABLE  # 503 at the edge
    assert "Redis" in caught.value.message and "不可用" in caught.value.message
    assert time.monotonic() - started < 2  # refused at once, then not tried again each time
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    assert state.describe() == {"kind": "redis", "nodes": "shared", "redis": "unavailable"}
    with pytest.raises(StoreUnavailable):
        state.claim("oidc-state:x", 60)
    with pytest.raises(StoreUnavailable):
        state.put_once("dev-idp:signing-key", "k")


def test_limits_fail_open_to_the_workers_own_window(tmp_path: Path) -> None:
    """Redis refuses connections: public verification is still answered, and still limited by
    the worker's own window (a scraper gets no unlimited pass from an outage)."""
    limits = _limits(tmp_path, closed_port_url(), public="4/minute")
    answers = [_refused(limits, "/api/v1/verify") for _ in range(6)]
    assert answers == [False] * 4 + [True] * 2


@pytest.mark.slow
def test_redis_back_after_an_outage_is_used_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="elicence.shared_state")
    with redis_server() as server:
        state = RedisState(server.url)
        assert state.claim("k", 60)
        server.stop()
        with pytest.raises(StoreUnavailable):
            state.claim("k2", 60)
        server.start()  # same port, empty (no persistence)
        time.sleep(RETRY_SECONDS + 0.1)
        assert state.claim("k2", 60)
        assert state.describe()["redis"] == "ok"
        state.close()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("reachable again" in m for m in messages) == 1


def test_without_a_url_each_app_has_its_own_memory() -> None:
    one, two = connect(None), connect(None)
    assert one is not two and one.describe() == {"kind": "memory", "nodes": "one"}
    assert one.claim("x", 10) and two.claim("x", 10)


@pytest.mark.slow
def test_one_redis_state_per_url_in_a_process(server: RedisServer) -> None:
    """The edge's limits and the services share one connection pool and one outage state."""
    assert connect(server.url) is connect(server.url)
    assert connect(server.url).kind == "redis"
