"""The rate window's cost: one check in the worker's memory, in Redis as the product does it (one
Lua script over a sorted set: a sliding log), and in Redis as a fixed-window pair (two counters,
the previous window's count weighted by its overlap: approximate, constant memory per key) — µs
per check and Redis round trips per check; then, with ``--http``, QR verification over HTTP
with the Redis window against the memory one (two ``elicence serve`` processes on one demo
domain, interleaved turns).

    python -m bench.redis_window [--seconds 2] [--redis redis://127.0.0.1:6379/0] [--http]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis

from api.edge.limits import Rate, SlidingWindow
from core.shared_state import RedisState

# The alternative measured: KEYS[1] this window's counter, KEYS[2] the previous one; ARGV the
# count, the window in ms, the fraction of the previous window still inside the sliding one.
FIXED_PAIR = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if current + previous * tonumber(ARGV[3]) >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return 1
"""
BIN = Path(sys.executable).parent


def per_check(fn: Callable[[int], object], seconds: float) -> tuple[int, float]:
    """Checks made in ``seconds`` (each on one of 1,000 keys) and µs per check."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(n % 1000)
        n += 1
    return n, (time.perf_counter() - start) / n * 1e6


def round_trips(client: redis.Redis) -> tuple[int, int]:
    """Script calls (each one round trip) and all commands Redis ran, including those inside."""
    stats = client.info("commandstats")
    scripts = sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))
    return scripts, int(client.info("stats")["total_commands_processed"])


def micro(url: str, seconds: float) -> dict[str, Any]:
    memory = SlidingWindow(Rate(1_000_000, 60))
    prefix = f"elicence-bench:{secrets.token_hex(4)}:"
    state = RedisState(url, prefix=prefix)
    client = redis.Redis.from_url(url)
    pair = client.register_script(FIXED_PAIR)

    def fixed(i: int) -> object:
        now = time.time()
        slot = int(now // 60)
        weight = 1 - (now % 60) / 60
        keys = [f"{prefix}fixed:{i}:{slot}", f"{prefix}fixed:{i}:{slot - 1}"]
        return pair(keys=keys, args=[1_000_000, 60_000, weight])

    out: dict[str, Any] = {}
    for name, fn in (
        ("memory sliding log", lambda i: memory.hit(str(i))),
        ("redis sliding log (Lua, sorted set)", lambda i: state.hit(f"rate:{i}", 1_000_000, 60)),
        ("redis fixed-window pair (Lua, 2 counters)", fixed),
    ):
        scripts, ran = round_trips(client)
        n, micros = per_check(fn, seconds)
        scripts_after, ran_after = round_trips(client)
        out[name] = {
            "checks": n,
            "us_per_check": round(micros, 1),
            "round_trips_per_check": round((scripts_after - scripts) / n, 2),
            "redis_commands_per_check": round((ran_after - ran - 2) / n, 2),  # less the INFOs
        }
    stale = list(client.scan_iter(match=prefix + "*", count=1000))
    for start in range(0, len(stale), 500):
        client.delete(*stale[start : start + 500])
    client.close()
    state.close()
    return out


@contextmanager
def server(data_dir: Path, port: int, env: dict[str, str]) -> Iterator[str]:
    process = subprocess.Popen(
        [BIN / "elicence", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(15)


def load(base: str, qr: str, seconds: float, threads: int = 4) -> float:
    """QR verifications per second over ``seconds``, ``threads`` keep-alive clients."""
    end = time.monotonic() + seconds

    def run() -> int:
        done = 0
        with httpx.Client(base_url=base, timeout=30) as client:
            while time.monotonic() < end:
                answer = client.post("/api/v1/verify", json={"qr": qr})
                assert answer.status_code == 200, answer.text
                done += 1
        return done

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: run(), range(threads)))
    return total / (time.monotonic() - started)


def http(url: str, seconds: float, turns: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="elicence-bench-redis-") as tmp:
        data = Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ELICENCE_")}
        env |= {
            "ELICENCE_DATA_DIR": str(data),
            "ELICENCE_PUBLIC_RATE_LIMIT": "100000000/minute",
            "ELICENCE_CLIENT_RATE_LIMIT": "100000000/minute",
        }
        subprocess.run(
            [BIN / "elicence", "init", "--demo", "--data-dir", str(data)],
            env=env,
            check=True,
            capture_output=True,
        )
        credentials = json.loads((data / "demo-credentials.json").read_text())
        qr = credentials.get("sample_verify_url") or _a_qr(credentials, data, env)
        rates: dict[str, list[float]] = {"memory": [], "redis": []}
        with (
            server(data, 18731, env) as memory,
            server(data, 18732, env | {"ELICENCE_REDIS_URL": url}) as shared,
        ):
            load(memory, qr, 1.0)
            load(shared, qr, 1.0)  # warm both
            for _ in range(turns):
                rates["memory"].append(load(memory, qr, seconds))
                rates["redis"].append(load(shared, qr, seconds))
    best = {k: max(v) for k, v in rates.items()}
    return {
        "qr_per_second": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "ratio_redis_to_memory_best": round(best["redis"] / best["memory"], 3),
    }


def _a_qr(credentials: dict[str, Any], data: Path, env: dict[str, str]) -> str:
    """A demo licence's verification link, issued through the API of a short-lived server."""
    department = credentials["departments"][0]
    with server(data, 18733, env) as base:
        issued = httpx.post(
            f"{base}/api/v1/licences",
            json=department["sample_request"],
            headers={"Authorization": f"Bearer {department['api_key']}"},
            timeout=120,
        )
        issued.raise_for_status()
        return str(issued.json()["links"]["verify"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
    report: dict[str, Any] = {"micro": micro(args.redis, args.seconds)}
    if args.http:
        report["http"] = http(args.redis, args.seconds, args.turns)
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
