"""Memory: resident size while issuing many licences in one process, and the peak while a
maximum-size upload is verified — in the service alone (a fresh process) and over HTTP (the
server's peak resident size, request body included)."""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.web import Server, elicence_server


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_while_issuing(issue: Callable[[], object], counts: tuple[int, ...]) -> dict[str, Any]:
    """RSS (after ``gc.collect()``) at the start and after each count of issuances, with the
    issuance rate of each interval; progress goes to stderr, as a long run takes minutes."""
    gc.collect()
    readings: dict[str, float] = {"start": round(rss_mb(), 1)}
    rates: dict[str, float] = {}
    done, last = 0, time.perf_counter()
    for count in counts:
        while done < count:
            issue()
            done += 1
        now = time.perf_counter()
        gc.collect()
        readings[str(count)] = round(rss_mb(), 1)
        previous = max((c for c in counts if c < count), default=0)
        rates[str(count)] = round((count - previous) / (now - last), 2)
        last = now
        print(f"bench: {count} issued, RSS {readings[str(count)]} MB", file=sys.stderr, flush=True)
    values = [v for k, v in readings.items() if k != "start"]
    return {
        "rss_mb": readings,
        "issued_per_second_by_interval": rates,
        "growth_mb_first_to_last_reading": round(values[-1] - values[0], 1) if values else 0.0,
    }


def padded(pdf: bytes, size: int) -> bytes:
    """The sealed licence with a PDF comment of padding after it, ``size`` bytes in all (it then
    fails as modified, after the whole file has been read and hashed)."""
    return pdf + b"\n%" + b"x" * (size - len(pdf) - 3) + b"\n"


def upload_probe(services: Any, pdf: bytes, size: int) -> dict[str, Any]:
    """Verify a small licence, then one padded to ``size``, sampling RSS every millisecond (run it
    in a fresh process for a meaningful peak: ``--upload-probe``)."""
    services.verification.verify_pdf(pdf, channel="upload", actor="bench")
    big = padded(pdf, size)
    gc.collect()
    before = rss_mb()
    peak = before
    running = True

    def sample() -> None:
        nonlocal peak
        while running:
            peak = max(peak, rss_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    report = services.verification.verify_pdf(big, channel="upload", actor="bench")
    seconds = time.perf_counter() - t0
    running = False
    sampler.join()
    return {
        "upload_bytes": len(big),
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(peak, 1),
        "peak_delta_mb": round(peak - before, 1),
        "multiple_of_upload": round((peak - before) * 2**20 / len(big), 2),
        "seconds": round(seconds, 2),
        "indication": report.indication.value,
        "sub_indication": report.sub_indication.value if report.sub_indication else None,
    }


def upload_over_http(data_dir: Path, pdf: bytes, size: int) -> dict[str, Any]:
    """A fresh ``elicence serve``: one small upload to warm it, then the peak resident size
    (VmHWM, reset just before) while it answers one upload of ``size`` bytes."""
    import httpx

    big = padded(pdf, size)
    srv: Server
    with elicence_server(data_dir) as srv:

        def post(data: bytes) -> dict[str, Any]:
            response = httpx.post(
                srv.base + "/api/v1/verify",
                files={"file": ("l.pdf", data, "application/pdf")},
                timeout=120,
            )
            response.raise_for_status()
            return dict(response.json())

        post(pdf)
        gc.collect()
        before = srv.memory_kb()
        reset = srv.reset_peak()
        t0 = time.perf_counter()
        report = post(big)
        seconds = time.perf_counter() - t0
        after = srv.memory_kb()
    base_kb = before["VmRSS"] if reset else max(before["VmRSS"], before["VmHWM"])
    delta_mb = max(0, after["VmHWM"] - base_kb) / 1024
    return {
        "upload_bytes": len(big),
        "server_rss_before_mb": round(before["VmRSS"] / 1024, 1),
        "server_peak_mb": round(after["VmHWM"] / 1024, 1),
        "peak_delta_mb": round(delta_mb, 1),
        "multiple_of_upload": round(delta_mb * 2**20 / len(big), 2),
        "peak_reset": reset,
        "seconds": round(seconds, 2),
        "indication": report.get("indication"),
        "sub_indication": report.get("sub_indication"),
    }
