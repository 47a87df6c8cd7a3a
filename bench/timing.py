"""Time-bounded loops and what they report: throughput over wall time, p50/p99 latencies."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def settle() -> None:
    """Collect, then freeze, what this process holds so far (``gc.freeze``): the rows measured
    in this process — the raw baselines, the in-process rows, the load generator — then pay no
    collection of the harness's own objects. Before, a full collection walked ~390,000 of them
    (the domains, the captured pages, the status-list fixture) for 180–300 ms every few
    seconds while the B-LTA rows ran: a pause of the baseline's or the product's call, by
    turns, that neither of them caused."""
    gc.collect()
    gc.freeze()


@dataclass
class Rate:
    name: str
    n: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    baseline: str | None = None
    server_cpu: float | None = None  # CPU seconds of the server process over the run (HTTP)
    client_cpu: float | None = None  # CPU seconds of the load generator (this process), HTTP

    @property
    def per_second(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        out: dict[str, Any] = {
            "name": self.name,
            "n": self.n,
            "seconds": round(self.seconds, 3),
            "per_second": round(self.per_second, 2),
            "p50_ms": round(pct(lat, 50) * 1000, 3) if lat else None,
            "p99_ms": round(pct(lat, 99) * 1000, 3) if lat else None,
            "baseline": self.baseline,
        }
        if self.server_cpu is not None and self.n:
            out["server_cpu_ms_per_request"] = round(self.server_cpu / self.n * 1000, 3)
            out["server_cpu_percent"] = round(self.server_cpu / self.seconds * 100, 1)
        if self.client_cpu is not None and self.n:
            out["client_cpu_ms_per_request"] = round(self.client_cpu / self.n * 1000, 3)
        return out


def pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def timed(
    name: str,
    fn: Callable[[], object],
    seconds: float,
    baseline: str | None = None,
    *,
    warm: bool = True,
) -> Rate:
    if warm:
        fn()
    latencies: list[float] = []
    start = time.perf_counter()
    end = start + seconds
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        latencies.append(t1 - t0)
        if t1 >= end and len(latencies) >= (3 if warm else 1):
            break
    return Rate(name, len(latencies), time.perf_counter() - start, latencies, baseline)


def timed_together(
    rows: list[tuple[str, Callable[[], object], str | None]], seconds: float, rounds: int
) -> list[Rate]:
    """Each row for ``seconds`` in all, in ``rounds`` turns taken one after another (A B C A B C
    …): a measurement and its baseline then share whatever the machine was doing — on a shared
    virtual machine the same loop runs up to twice as fast or as slow from one minute to the
    next."""
    for _, fn, _ in rows:
        fn()  # warm
    found = {name: Rate(name, 0, 0.0, [], baseline) for name, _, baseline in rows}
    for _ in range(rounds):
        for name, fn, baseline in rows:
            turn = timed(name, fn, seconds / rounds, baseline, warm=False)
            total = found[name]
            total.n += turn.n
            total.seconds += turn.seconds
            total.latencies += turn.latencies
    return list(found.values())
