"""bench/report.py: the per-worker target carries the CPU a request cost every party, and the
ratio those figures predict, worked out here by hand from the same figures."""

from __future__ import annotations

from typing import Any

import pytest

from bench.report import cpu_accounting, targets

QR, QR_PG = "verify QR over HTTP", "verify QR over HTTP, PostgreSQL"


def row(
    name: str, client_ms: float | None, server_ms: float, ratio: float | None = None
) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "server_cpu_ms_per_request": server_ms}
    if client_ms is not None:
        found["client_cpu_ms_per_request"] = client_ms
    if ratio is not None:
        found["ratio"] = ratio
    return found


def test_the_prediction_counts_the_load_generator_the_worker_and_the_backends() -> None:
    by = {QR: row(QR, 1.5, 1.2), QR_PG: row(QR_PG, 1.6, 1.4, 0.85)}
    found = cpu_accounting(by, {QR_PG: 0.25})
    # SQLite: 1.5 + 1.2 = 2.7 ms; PostgreSQL: 1.6 + 1.4 + 0.25 = 3.25 ms; 2.7 / 3.25 = 0.8308
    assert found["cpu_all_told"] == pytest.approx(0.831, abs=0.0005)
    assert found["cpu_of_the_worker"] == pytest.approx(1.2 / 1.4, abs=0.0005)
    assert found["ms_per_request"]["database backends"] == [0.0, 0.25]


def test_a_run_without_the_load_generator_figures_predicts_nothing() -> None:
    by = {QR: row(QR, None, 1.2), QR_PG: row(QR_PG, 1.6, 1.4, 0.85)}
    assert cpu_accounting(by, {QR_PG: 0.25}) == {}


def test_the_target_is_still_judged_by_the_measured_ratio() -> None:
    """The prediction is printed beside the target; it never decides whether it holds."""
    rates = [
        row(QR, 1.5, 1.2, 0.75),
        row(QR_PG, 1.0, 1.2, 0.85),  # a prediction of (1.5 + 1.2) / 2.2 > 1
        {"name": "issue in-process B-B", "ratio": 1.0},
        {"name": "verify PDF in-process (B-LTA)", "ratio": 1.0},
        {"name": "verify PDF pipeline (PdfVerifier)", "ratio": 1.0},
        {"name": "verify PDF over HTTP", "ratio": 1.0},
        {"name": "verify QR offline (status list)", "ratio": 1.0},
    ]
    out = {
        "rates": rates,
        "status_list": {"gzip_bytes": 1},
        "qr_over_http_to_bare_fastapi": 1.0,
        "db_cpu_ms_per_request": {QR_PG: 0.0},
    }
    per_worker = targets(out)["verify QR over HTTP per worker, PostgreSQL / SQLite"]
    assert per_worker["ratio"] == 0.85 and per_worker["holds"] is False
    assert per_worker["cpu_all_told"] > 1
