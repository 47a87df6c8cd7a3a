"""What converting a department's existing licences costs: ``python -m bench.legacy [--smoke]
[--rows N] [--sealed N] [DATABASE_URL]``.

Sealing is what a conversion spends its time on (render, PAdES seal with the domain's timestamp
and validation data, store), so a run of 100,000 sealed conversions would take hours on this
machine; this module measures what is honest instead, each through the real path
(``licences.legacy`` reading a file a line at a time, ``LegacyConversion.convert_all``):

* ``sealed``: ``--sealed`` rows (1,000; smoke 3) converted for real — rows per second with
  sealing, then the same file again (every row ``unchanged``);
* ``read``: ``--rows`` rows (100,000; smoke 200) of NDJSON read and checked — rows per second;
* ``bookkeeping``: the same ``--rows`` rows through ``convert_all`` once the domain already holds
  them (licence and ``legacy_licence`` rows inserted in bulk beforehand, as an earlier run would
  have left them): the idempotency look-up per row, every row ``unchanged`` — rows per second;
* ``peak_mib``: the peak of Python allocations (tracemalloc) while the ``--rows`` file is read
  and re-run, which stays flat in the row count because nothing holds the file or the reports.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SMOKE_ROWS, SMOKE_SEALED = 200, 3
ROWS, SEALED = 100_000, 1_000


def _records(services: Any, count: int, prefix: str) -> Iterator[dict[str, Any]]:
    from api.ops import demo
    from licences.identifiers import make_uscc, organisation_code_check

    sample = demo.SAMPLE_LICENCES[0]
    for n in range(count):
        org = f"{n:08d}"
        yield {
            "original_number": f"{prefix}-{n:07d}",
            "licence_type": sample["licence_type"],
            "holder_id_type": "001",
            "holder_id": make_uscc("91350100" + org + organisation_code_check(org)),
            "holder_name": f"存量企业{n}号有限公司",
            "fields": sample["fields"],
            "original_issue_date": "2021-03-01",
            "valid_until": "2031-02-28",
            "status": "revoked" if n % 50 == 0 else "valid",
        }


def _write(path: Path, records: Iterator[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def _run(services: Any, path: Path, department: str) -> tuple[dict[str, int], float, float]:
    """The counts, the wall seconds and the CPU seconds of this process (the machine may be
    shared: CPU per row is the figure that does not depend on what else runs)."""
    from licences import legacy

    desk = services.legacy
    started, cpu = time.perf_counter(), time.process_time()
    with path.open(encoding="utf-8") as lines:
        rows = legacy.read_ndjson(lines, desk.today())
        counts = legacy.tally(
            desk.convert_all(rows, department_code=department, actor="bench", request_id=None)
        )
    return counts, time.perf_counter() - started, time.process_time() - cpu


def _preload(services: Any, path: Path, department: str) -> None:
    """Licence and legacy rows for every record of ``path``, inserted in bulk, as a finished
    conversion would have left them (the licence rows are copies of a demo licence)."""
    from sqlalchemy import insert
    from sqlmodel import select

    from core.db import transaction
    from licences import legacy
    from licences.legacy_records import LegacyLicence
    from licences.models import Licence

    now = services.clock.now()
    with transaction(services.engine) as session, path.open(encoding="utf-8") as lines:
        model = session.exec(select(Licence).where(Licence.issuer_code == department)).first()
        assert model is not None
        licences: list[dict[str, Any]] = []
        olds: list[dict[str, Any]] = []
        for row in legacy.read_ndjson(lines, services.legacy.today()):
            assert row.record is not None, row.error
            n = row.number
            identifier = f"BENCH-LEGACY-{n:07d}"
            licence = model.model_dump()
            licence.update(
                identifier=identifier, serial=f"L{n:07d}", verify_code=identifier,
                status_index=None, previous=None, superseded_by=None,
            )  # fmt: skip
            licences.append(licence)
            olds.append(
                {
                    "department_code": department,
                    "type_code": row.record.licence_type,
                    "original_number": row.record.original_number,
                    "identifier": identifier,
                    "original_issue_date": row.record.original_issue_date,
                    "original_status": row.record.status.value,
                    "content_sha256": row.record.digest(),
                    "converted_at": now,
                }
            )
            if len(licences) == 5_000:
                session.execute(insert(Licence), licences)
                session.execute(insert(LegacyLicence), olds)
                licences, olds = [], []
        if licences:
            session.execute(insert(Licence), licences)
            session.execute(insert(LegacyLicence), olds)


def main(rows: int, sealed: int, database_url: str | None = None) -> dict[str, Any]:
    from api.ops import demo
    from bench.domain import build
    from licences import legacy

    work = Path(tempfile.mkdtemp())
    services = build(work / "data", database_url)
    department = demo.SAMPLE_LICENCES[0]["department"]
    figures: dict[str, Any] = {"rows": rows, "sealed_rows": sealed}

    small = _write(work / "sealed.ndjson", _records(services, sealed, "SEALED"))
    counts, seconds, cpu = _run(services, small, department)
    assert counts["converted"] == sealed, counts
    figures["sealed_rows_per_s"] = round(sealed / seconds, 1)
    figures["sealed_cpu_ms_per_row"] = round(cpu / sealed * 1e3, 1)
    counts, seconds, cpu = _run(services, small, department)
    assert counts["unchanged"] == sealed, counts
    figures["sealed_rerun_rows_per_s"] = round(sealed / seconds, 1)

    big = _write(work / "rows.ndjson", _records(services, rows, "BULK"))
    figures["file_mib"] = round(big.stat().st_size / 2**20, 1)
    tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    with big.open(encoding="utf-8") as lines:
        read = sum(1 for row in legacy.read_ndjson(lines, services.legacy.today()) if row.record)
    figures["read_rows_per_s"] = round(read / (time.perf_counter() - started))
    figures["read_cpu_us_per_row"] = round((time.process_time() - cpu) / read * 1e6)
    tracemalloc.stop()
    _preload(services, big, department)
    tracemalloc.start()
    counts, seconds, cpu = _run(services, big, department)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert counts["unchanged"] == rows, counts
    figures["bookkeeping_rows_per_s"] = round(rows / seconds)
    figures["bookkeeping_cpu_us_per_row"] = round(cpu / rows * 1e6)
    figures["peak_mib"] = round(peak / 2**20, 1)
    services.close()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.legacy", description=__doc__)
    parser.add_argument("database_url", nargs="?")
    parser.add_argument("--smoke", action="store_true", help="a few rows: checks the path")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--sealed", type=int, default=SEALED)
    args = parser.parse_args()
    rows, sealed = (SMOKE_ROWS, SMOKE_SEALED) if args.smoke else (args.rows, args.sealed)
    result = main(rows, sealed, args.database_url)
    print(json.dumps(result, ensure_ascii=False))
