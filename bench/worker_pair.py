"""``python -m bench.worker_pair``: QR verification on one SQLite worker and one PostgreSQL
worker alone, in turns, with each party's CPU a request — the per-worker rows of ``python -m
bench`` without the other servers, to see their spread and what moves them (issue 21); and
:func:`saturated_rates`, the rows the bench's per-worker target is taken from.

Two load generators: the bench's own (httpx, asyncio), which costs more CPU a request than the
worker, so both rows share the cores with it; and ``--light``, raw HTTP/1.1 on kept
connections with the request's bytes built once (~0.1 ms a request), which leaves the worker
itself as the limit. A verification counts only when its answer is PASSED.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.domain import build, issue_request
from bench.scale import PgDomain, pg_domain
from bench.timing import Rate
from bench.web import Row, Server, elicence_server, interleaved, passed
from verify.desk import BATCH

SQLITE, POSTGRES = "QR, SQLite", "QR, PostgreSQL"
# The per-worker target's rows in ``python -m bench`` (``saturated_rates``).
SQLITE_SATURATED = "QR per worker saturated, SQLite"
PG_SATURATED = "QR per worker saturated, PostgreSQL"
# Requests in flight that keep a worker busy through its desk's round trips: a full batch being
# checked and the next one queued behind it.
SATURATING = 2 * BATCH


def request_bytes(port: int, qr: str) -> bytes:
    body = json.dumps({"qr": qr}).encode()
    head = (
        f"POST /api/v1/verify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def light_load(port: int, request: bytes, seconds: float, concurrency: int) -> int:
    """Verifications answered PASSED in ``seconds``; anything else raises."""
    done = 0
    end = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < end:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = head.split(b" ", 2)[1]
                at = head.lower().index(b"content-length:") + len(b"content-length:")
                body = await reader.readexactly(int(head[at : head.index(b"\r\n", at)]))
                if status != b"200" or json.loads(body).get("indication") != "PASSED":
                    raise RuntimeError(f"verification answered {status!r}: {body[:200]!r}")
                done += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return done


def light_turns(
    rows: list[tuple[str, Server, str, Callable[[], float]]],
    seconds: float,
    rounds: int,
    concurrency: int,
    db_cpu: dict[str, float],
) -> list[Rate]:
    """Each row ``seconds`` in all, in ``rounds`` turns (A B A B …), as ``bench.web.interleaved``
    takes them and with what it reports (``db_cpu``: the database's CPU ms a request), with the
    light load generator."""
    port = {name: int(srv.base.rsplit(":", 1)[1]) for name, srv, _, _ in rows}
    body = {name: request_bytes(port[name], qr) for name, _, qr, _ in rows}
    for name, *_ in rows:  # warm
        asyncio.run(light_load(port[name], body[name], 0.3, concurrency))
    totals = {name: Rate(name, 0, 0.0, server_cpu=0.0, client_cpu=0.0) for name, *_ in rows}
    db_seconds = dict.fromkeys(totals, 0.0)
    for _ in range(rounds):
        for name, srv, _, database in rows:
            client, server, db = time.process_time(), srv.cpu_seconds(), database()
            started = time.perf_counter()
            n = asyncio.run(light_load(port[name], body[name], seconds / rounds, concurrency))
            total = totals[name]
            total.n += n
            total.seconds += time.perf_counter() - started
            total.client_cpu = (total.client_cpu or 0.0) + time.process_time() - client
            total.server_cpu = (total.server_cpu or 0.0) + srv.cpu_seconds() - server
            db_seconds[name] += database() - db
    for name, total in totals.items():
        db_cpu[name] = round(db_seconds[name] / total.n * 1000, 3) if total.n else 0.0
    return list(totals.values())


@dataclass(frozen=True)
class Pair:
    """The two workers under measurement, one on each database, and the code each verifies."""

    on_sqlite: Server
    qr: str
    on_pg: Server
    pg: PgDomain


def light_pair(
    pair: Pair,
    seconds: float,
    rounds: int,
    c: int,
    db_cpu: dict[str, float],
    names: tuple[str, str] = (SQLITE, POSTGRES),
) -> list[Rate]:
    """The pair in turns under the light load, ``c`` requests in flight; the PostgreSQL row's
    baseline is the SQLite row."""
    on_sqlite, on_pg = names
    rates = light_turns(
        [
            (on_sqlite, pair.on_sqlite, pair.qr, lambda: 0.0),
            (on_pg, pair.on_pg, pair.pg.qr, pair.pg.db_cpu),
        ],
        seconds,
        rounds,
        c,
        db_cpu,
    )
    rates[1].baseline = on_sqlite
    return rates


def saturated_rates(
    pair: Pair, seconds: float, rounds: int, db_cpu: dict[str, float]
) -> list[Rate]:
    """A worker's capacity on each database, in turns: the light load generator (not the
    limit) with :data:`SATURATING` requests in flight."""
    return light_pair(pair, seconds, rounds, SATURATING, db_cpu, (SQLITE_SATURATED, PG_SATURATED))


def measure(
    work: Path, seconds: float, rounds: int, concurrency: int | Sequence[int], light: bool
) -> dict[str, Any]:
    """The two rows in turns under ``work``: the demo domain on SQLite and on a fresh PostgreSQL
    database (dropped after), one licence each, one ``elicence serve`` worker each.

    ``concurrency`` a sequence: the same two servers measured at each, one after the other (a
    sweep, ``{"sweep": [...]}``). The ratio rises with it: at low concurrency every scan in
    flight is in the desk's batch, and the PostgreSQL worker waits out the batch's round trips
    with nothing to do (its ``server_cpu_percent`` under SQLite's); with more in flight the
    next batch's requests are parsed meanwhile."""
    levels = [concurrency] if isinstance(concurrency, int) else list(concurrency)
    data_dir = work / "sqlite"
    data_dir.mkdir(mode=0o700)
    services = build(data_dir)
    qr = services.issuance.issue(issue_request(services)).verify_url
    services.engine.dispose()
    found = []
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(pg_domain(build, issue_request, work))
        on_sqlite = stack.enter_context(elicence_server(data_dir))
        on_pg = stack.enter_context(elicence_server(pg.data_dir, 1, pg.url))
        pair = Pair(on_sqlite, qr, on_pg, pg)
        turns = light_pair if light else _httpx_turns
        for c in levels:
            db_cpu: dict[str, float] = {}
            rates = turns(pair, seconds, rounds, c, db_cpu)
            found.append(_summary(rates, db_cpu, c, light))
    if isinstance(concurrency, int):
        return found[0]
    return {"load_generator": "light" if light else "httpx", "sweep": found}


def _summary(rates: list[Rate], db_cpu: dict[str, float], c: int, light: bool) -> dict[str, Any]:
    by_name = {rate.name: rate for rate in rates}
    found = {
        name: rate.as_dict() | {"database_cpu_ms_per_request": db_cpu.get(name, 0.0)}
        for name, rate in by_name.items()
    }
    sqlite, postgres = found[SQLITE], found[POSTGRES]
    return {
        "load_generator": "light" if light else "httpx",
        "concurrency": c,
        "rows": found,
        "ratio": round(by_name[POSTGRES].per_second / by_name[SQLITE].per_second, 3),
        "worker_cpu_ratio": round(
            sqlite["server_cpu_ms_per_request"] / postgres["server_cpu_ms_per_request"], 3
        ),
    }


def _httpx_turns(
    pair: Pair, seconds: float, rounds: int, c: int, db_cpu: dict[str, float]
) -> list[Rate]:
    call = ("q", "POST", "/api/v1/verify")
    return interleaved(
        [
            Row(SQLITE, pair.on_sqlite, (*call, {"json": {"qr": pair.qr}}), c, None, passed),
            Row(
                POSTGRES,
                pair.on_pg,
                (*call, {"json": {"qr": pair.pg.qr}}),
                c,
                SQLITE,
                passed,
                pair.pg.db_cpu,
            ),
        ],
        seconds,
        rounds,
        db_cpu,
    )


def _levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",")]
    if min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency: positive integers, comma-separated")
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per row, over all turns")
    parser.add_argument("--rounds", type=int, default=6, help="turns")
    parser.add_argument(
        "--concurrency",
        type=_levels,
        default=[8],
        help="requests in flight; several, comma-separated, sweep the same two servers",
    )
    parser.add_argument("--light", action="store_true", help="the light load generator")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="elicence-bench-") as tmp:
        levels = args.concurrency
        out = measure(
            Path(tmp),
            args.seconds,
            args.rounds,
            levels[0] if len(levels) == 1 else levels,
            args.light,
        )
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
