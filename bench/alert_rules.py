"""What the alert rules cost per triggering action: ``python -m bench.alert_rules [DATABASE_URL]``.

A demo domain (SQLite in a temporary directory, or the given PostgreSQL URL, whose schema it
fills) gets one department with ``HISTORY`` licences over the 28 days before the last hour and
``LAST_HOUR`` in it, above the default floor (50), so the burst rule reads its baseline: the
worst case. Timed, median of ``ROUNDS``, inside one transaction that is rolled back (what the
rules add to the action's transaction, whose commit is paid anyway), the tables analysed: the
burst rule for one issuance (the last hour counted, the baseline kept), the baseline's own count
(once per department every ten minutes), the off-hours check, and the failure rules for one
failed verification (insert, count by licence, tally by source) among ``FAILURES`` others.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

HISTORY = 100_000  # about 150 an hour for 28 days: a busy department
LAST_HOUR = 200
FAILURES = 20_000
ROUNDS = 300


def _timed(run: Callable[[], object]) -> float:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def main(database_url: str | None = None) -> dict[str, float]:
    from sqlalchemy import insert
    from sqlmodel import Session, select

    from bench.domain import build
    from core.db import transaction
    from licences.models import Licence
    from supervision import failures
    from supervision.alerts import Thresholds
    from supervision.rules_issuance import (
        BASELINE_DAYS,
        HOUR,
        Baselines,
        issued_between,
        off_hours,
    )

    services = build(Path(tempfile.mkdtemp()) / "data", database_url)
    engine, now = services.engine, services.clock.now()
    with transaction(engine) as session:
        model = session.exec(select(Licence)).first()
        assert model is not None
        department = model.issuer_code
        start = now - HOUR - timedelta(days=BASELINE_DAYS)
        step = (timedelta(days=BASELINE_DAYS) - timedelta(seconds=1)) / HISTORY
        rows: list[dict[str, Any]] = []
        for n in range(HISTORY + LAST_HOUR):
            at = start + step * n if n < HISTORY else now - timedelta(seconds=n - HISTORY + 1)
            row = model.model_dump()
            row.update(
                identifier=f"BENCH-{n:07d}", serial=f"B{n:07d}", verify_code=f"BENCH-{n:07d}",
                issued_at=at, previous=None, superseded_by=None, status_index=None,
            )  # fmt: skip
            rows.append(row)
        for first in range(0, len(rows), 5_000):
            session.execute(insert(Licence), rows[first : first + 5_000])
        for n in range(FAILURES):
            failures.record(
                session, at=now - timedelta(seconds=n % 3600), source=f"src_{n % 500:024x}",
                identifier=None, audit_seq=n,
            )  # fmt: skip

    baselines = Baselines()

    _settled(engine)
    session = Session(engine)  # one transaction, rolled back: what the rules add, no commit

    def burst() -> None:  # an issuance of a department above the floor: the usual case
        assert issued_between(session, department, now - HOUR, now) > 50
        baselines.mean(session, department, now)

    def baseline() -> None:  # once per department every ten minutes
        Baselines().mean(session, department, now)

    def failed() -> None:
        since = now - timedelta(minutes=10)
        source = "src_" + "f" * 24
        failures.record(session, at=now, source=source, identifier=None, audit_seq=10**9)
        failures.count_for_identifier(session, "no-such-licence", since, 10**9)
        failures.tally_for_source(session, source, since, 10**9)

    thresholds = Thresholds()
    figures = {
        "burst_us": _timed(burst),
        "baseline_miss_us": _timed(baseline),
        "failure_us": _timed(failed),
        "off_hours_us": _timed(lambda: off_hours(now, thresholds)),
    }
    session.rollback()
    session.close()
    services.close()
    return figures


def _settled(engine: Any) -> None:
    """Statistics and (PostgreSQL) the visibility map as autovacuum keeps them in service."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("VACUUM ANALYZE licence, failed_verification")
        else:
            conn.exec_driver_sql("ANALYZE")


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else None
    for name, value in main(url).items():
        print(f"{name:>16}: {value:10.1f}")
