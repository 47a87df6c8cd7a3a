"""HTTP measurements: servers started as the product starts them, an asyncio load generator, and
the server's own CPU time per request (the figure that does not depend on the client).

The load generator (httpx, asyncio, one process) shares the machine with the server: on two
cores a trivial endpoint is limited by the client, not by the server, which is why every HTTP
row also reports the server's CPU milliseconds per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.timing import Rate, timed

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(sys.executable).parent
Call = tuple[str, str, str, dict[str, Any]]  # label, method, path, httpx kwargs


def env_for(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env |= {
        "ELICENCE_DATA_DIR": str(data_dir),
        "ELICENCE_KEY_PASSPHRASE": "bench",
        "ELICENCE_PUBLIC_BASE_URL": "https://licence.example.gov.cn",
        "ELICENCE_PUBLIC_RATE_LIMIT": "10000000/minute",
        "ELICENCE_CLIENT_RATE_LIMIT": "10000000/minute",
    }
    if database_url:
        env["ELICENCE_DATABASE_URL"] = database_url
    env["PYTHONPATH"] = str(ROOT)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU of the server: the process and its children (``--workers N``: the
        supervisor and its worker processes; the verification isolation workers)."""
        return sum(process_cpu(pid) for pid in process_tree(self.pid))

    def memory_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak resident) of the server process, in KiB."""
        found: dict[str, int] = {}
        with open(f"/proc/{self.pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
        return found

    def reset_peak(self) -> bool:
        """Start VmHWM again from the current RSS (Linux ``clear_refs`` 5)."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as handle:
                handle.write("5")
        except OSError:
            return False
        return True


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process, its reaped children's included (0 once gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(fields[k]) for k in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, as /proc lists them now."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    todo += [int(child) for child in handle.read().split()]
        except OSError:
            continue
    return found


@contextlib.contextmanager
def server(args: list[str], env: dict[str, str], port: int) -> Iterator[Server]:
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(log.read().decode(errors="replace")[-2000:])
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code in (200, 404):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield Server(base, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def elicence_server(data_dir: Path, workers: int = 1, db: str | None = None) -> Any:
    """``elicence serve``: uvicorn, no access log, log level info, JSON log lines on stderr."""
    port = free_port()
    args = [str(BIN / "elicence"), "serve", "--data-dir", str(data_dir), "--port", str(port)]
    return server([*args, "--workers", str(workers)], env_for(data_dir, db), port)


def trivial_server(data_dir: Path, *, stacked: bool) -> Any:
    """The trivial endpoint (``bench/trivial.py``). ``stacked``: inside the elicence application
    — the same middleware, logging and uvicorn options as ``elicence serve`` — so the ratio of a
    route to it is that route's own cost. Otherwise a bare FastAPI app (uvicorn defaults, no
    access log): the framework's ceiling."""
    port = free_port()
    common = [PY, "-m", "uvicorn", "--port", str(port), "--no-access-log"]
    if stacked:
        args = [*common, "--factory", "bench.trivial:stacked", "--log-level", "info"]
        args.append("--no-proxy-headers")
    else:
        args = [*common, "bench.trivial:app", "--log-level", "warning"]
    return server(args, env_for(data_dir, None), port)


async def load(
    base: str,
    calls: Callable[[int], Call],
    seconds: float,
    concurrency: int,
    max_requests: int,
    check: Callable[[str, Any], None] | None = None,
) -> dict[str, Rate]:
    import httpx

    rates: dict[str, Rate] = {}
    counter = 0
    errors: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        start = time.perf_counter()
        end = start + seconds

        async def worker() -> None:
            nonlocal counter
            while time.perf_counter() < end and counter < max_requests:
                i = counter
                counter += 1
                label, method, path, kwargs = calls(i)
                t0 = time.perf_counter()
                response = await client.request(method, path, **kwargs)
                elapsed = time.perf_counter() - t0
                if response.status_code >= 400:
                    errors.append(f"{label}: {response.status_code} {response.text[:200]}")
                    continue
                if check is not None:
                    check(label, response)
                rates.setdefault(label, Rate(label, 0, 0.0)).latencies.append(elapsed)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        total = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    for rate in rates.values():
        rate.n, rate.seconds = len(rate.latencies), total
    return rates


def passed(label: str, response: Any) -> None:
    """A verification that did not pass is not counted as one."""
    indication = response.json().get("indication")
    if indication != "PASSED":
        raise RuntimeError(f"{label}: {indication}")


def http_rate(
    name: str,
    srv: Server,
    call: Call,
    seconds: float,
    concurrency: int,
    baseline: str | None = None,
    check: Callable[[str, Any], None] | None = None,
) -> Rate:
    asyncio.run(load(srv.base, lambda i: call, 0.3, concurrency, 10**9, check))  # warm
    cpu = srv.cpu_seconds()
    rates = asyncio.run(load(srv.base, lambda i: call, seconds, concurrency, 10**9, check))
    rate = rates[call[0]]
    rate.name, rate.baseline = name, baseline
    rate.server_cpu = srv.cpu_seconds() - cpu
    return rate


@dataclass
class Row:
    """One HTTP measurement for :func:`interleaved`. ``db``: the server's database backends'
    CPU seconds so far (PostgreSQL: its work is not in the server's own processes)."""

    name: str
    srv: Server
    call: Call
    concurrency: int
    baseline: str | None = None
    check: Callable[[str, Any], None] | None = None
    db: Callable[[], float] | None = None


@dataclass
class Local:
    """An in-process measurement taking its turns among HTTP rows (:func:`interleaved`): a
    baseline such as raw pyHanko validation, measured while the same machine load lasts."""

    name: str
    fn: Callable[[], object]
    baseline: str | None = None


def always(call: Call) -> Callable[[int], Call]:
    """The same call for every request number."""
    return lambda _i: call


def interleaved(
    rows: list[Row | Local], seconds: float, rounds: int, db_cpu: dict[str, float] | None = None
) -> list[Rate]:
    """Each row for ``seconds`` in all, in ``rounds`` turns taken one after another (A B C A B C
    …), so a change in the machine's load during the run falls on every row alike; the servers
    are all up the whole time (an idle one costs nothing). ``db_cpu``: filled with each row's
    database CPU milliseconds per request, for rows that name their database. An HTTP row's
    rate carries the server's CPU and the load generator's (this process), both per request:
    on a machine whose cores they share, what a request costs it all told."""
    for row in rows:  # warm
        if isinstance(row, Local):
            row.fn()
        else:
            asyncio.run(load(row.srv.base, always(row.call), 0.3, row.concurrency, 10**9))
    totals = {row.name: Rate(row.name, 0, 0.0, [], row.baseline, 0.0) for row in rows}
    db_seconds = dict.fromkeys(totals, 0.0)
    for _ in range(rounds):
        for row in rows:
            total = totals[row.name]
            if isinstance(row, Local):
                cpu = time.process_time()  # this process: the row's CPU, to set beside srv ms
                found = timed(row.name, row.fn, seconds / rounds, warm=False)
                total.server_cpu = (total.server_cpu or 0.0) + time.process_time() - cpu
            else:
                cpu = row.srv.cpu_seconds()
                db = row.db() if row.db else 0.0
                own = time.process_time()  # the load generator's, this process
                found = asyncio.run(
                    load(
                        row.srv.base,
                        always(row.call),
                        seconds / rounds,
                        row.concurrency,
                        10**9,
                        row.check,
                    )
                )[row.call[0]]
                total.client_cpu = (total.client_cpu or 0.0) + time.process_time() - own
                total.server_cpu = (total.server_cpu or 0.0) + row.srv.cpu_seconds() - cpu
                if row.db:
                    db_seconds[row.name] += row.db() - db
            total.n += found.n
            total.seconds += found.seconds
            total.latencies += found.latencies
    if db_cpu is not None:
        for row in rows:
            if isinstance(row, Row) and row.db and totals[row.name].n:
                db_cpu[row.name] = round(db_seconds[row.name] / totals[row.name].n * 1000, 3)
    return list(totals.values())
