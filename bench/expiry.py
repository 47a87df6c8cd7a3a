"""What the daily expiry scan costs over 100,000 licences: ``python -m bench.expiry [DATABASE_URL]``.

A demo domain (SQLite in a temporary directory, or the given PostgreSQL URL, whose schema it
fills) gets ``LICENCES`` licences whose last days are spread evenly over ten years centred on
today (about 27 a day), all still ``valid`` as stored, as a domain without the scan would have
them. Timed, with the figures each run wrote:

* ``first``: the first scan ever — a month of expiries to catch up (``catch_up_days``), the
  reminder window's licences and a month of overdue notices: the worst day;
* ``again``: the same day once more, writing nothing: what each of the worker's periodic runs
  costs once the day is done;
* ``next_day``: the next China day, one day's worth of each kind.

The scan never reads the table whole: each query is a range of ``ix_licence_valid_until``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

LICENCES = 100_000
SPREAD_DAYS = 3_650


def main(database_url: str | None = None) -> dict[str, Any]:
    from sqlalchemy import insert
    from sqlmodel import func, select

    from bench.domain import build
    from core.clock import china_today
    from core.db import reading, transaction
    from licences.models import Licence

    services = build(Path(tempfile.mkdtemp()) / "data", database_url)
    engine, now = services.engine, services.clock.now()
    today = china_today(now)
    with transaction(engine) as session:
        model = session.exec(select(Licence)).first()
        assert model is not None
        first_day = today - timedelta(days=SPREAD_DAYS // 2)
        rows: list[dict[str, Any]] = []
        for n in range(LICENCES):
            row = model.model_dump()
            row.update(
                identifier=f"BENCH-{n:07d}", serial=f"B{n:07d}", verify_code=f"BENCH-{n:07d}",
                valid_until=first_day + timedelta(days=n * SPREAD_DAYS // LICENCES),
                status="valid", previous=None, superseded_by=None, status_index=None,
            )  # fmt: skip
            rows.append(row)
        for start in range(0, len(rows), 5_000):
            session.execute(insert(Licence), rows[start : start + 5_000])
    with reading(engine) as session:
        total = session.exec(select(func.count()).select_from(Licence)).one()

    figures: dict[str, Any] = {"licences": total}
    for name, at in (("first", now), ("again", now), ("next_day", now + timedelta(days=1))):
        started = time.perf_counter()
        result = services.expiry.scan(at)
        figures[f"{name}_ms"] = round((time.perf_counter() - started) * 1e3, 1)
        figures[f"{name}_wrote"] = result.line()
    services.close()
    return figures


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else None
    for name, value in main(url).items():
        print(f"{name:>16}: {value}")
