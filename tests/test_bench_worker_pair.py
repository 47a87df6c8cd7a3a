"""bench/worker_pair.py: the light load generator counts only verifications answered PASSED, and
the pair's ratio is PostgreSQL's rate over SQLite's, with each party's CPU a request beside it."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bench.worker_pair import POSTGRES, SQLITE, light_load, measure, request_bytes


def run_against(status: int, body: dict[str, object]) -> int:
    async def scenario() -> int:
        server = await asyncio.start_server(_echo(status, body), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await light_load(port, request_bytes(port, "https://x/v/1"), 0.2, 2)

    return asyncio.run(scenario())


def _echo(
    status: int, body: dict[str, object]
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A loopback server's handler answering every request of a connection with ``body``."""
    payload = json.dumps(body).encode()
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\n\r\n".encode()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                at = request.lower().index(b"content-length:") + len(b"content-length:")
                await reader.readexactly(int(request[at : request.index(b"\r\n", at)]))
                writer.write(head + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return serve


def test_the_light_load_counts_passed_answers() -> None:
    assert run_against(200, {"indication": "PASSED"}) > 0


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, {"indication": "FAILED"}), (503, {"indication": "PASSED"}), (200, {})],
)
def test_the_light_load_refuses_an_answer_that_is_not_a_pass(
    status: int, body: dict[str, object]
) -> None:
    with pytest.raises(RuntimeError, match="verification answered"):
        run_against(status, body)


@pytest.mark.postgres  # two demo domains, one on PostgreSQL, and two `elicence serve`
@pytest.mark.parametrize("light", [True, False])
def test_the_pair_reports_each_party_and_the_ratio(tmp_path: Path, light: bool) -> None:
    out = measure(tmp_path, 0.4, 1, 2, light)
    sqlite, postgres = out["rows"][SQLITE], out["rows"][POSTGRES]
    assert sqlite["per_second"] > 0 and postgres["per_second"] > 0
    assert out["ratio"] == pytest.approx(postgres["per_second"] / sqlite["per_second"], abs=1e-3)
    assert sqlite["server_cpu_ms_per_request"] > 0 and postgres["server_cpu_ms_per_request"] > 0
    assert sqlite["database_cpu_ms_per_request"] == 0.0
    assert postgres["database_cpu_ms_per_request"] > 0  # PostgreSQL's backends did the reads
    assert out["load_generator"] == ("light" if light else "httpx")


@pytest.mark.postgres
def test_a_sweep_measures_the_same_pair_at_each_concurrency(tmp_path: Path) -> None:
    out = measure(tmp_path, 0.4, 1, [2, 5], True)
    assert out["load_generator"] == "light"
    assert [level["concurrency"] for level in out["sweep"]] == [2, 5]
    for level in out["sweep"]:
        sqlite, postgres = level["rows"][SQLITE], level["rows"][POSTGRES]
        assert sqlite["per_second"] > 0 and postgres["per_second"] > 0
        assert level["ratio"] == pytest.approx(
            postgres["per_second"] / sqlite["per_second"], abs=1e-3
        )
        assert postgres["database_cpu_ms_per_request"] > 0


def test_the_concurrency_option_takes_a_list() -> None:
    from bench.worker_pair import _levels

    assert _levels("8") == [8]
    assert _levels("8,16,64") == [8, 16, 64]
    with pytest.raises(argparse.ArgumentTypeError):
        _levels("8,0")
