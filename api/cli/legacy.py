"""``elicence import --legacy FILE --department CODE``: convert a department's existing licences
(存量证照转换) from its earlier system, row by row, over the same service as
``POST /api/v1/licences:convert`` (``licences.legacy_desk``).

The file is read a line at a time and each row's report is written as it is done (one JSON
object a line on standard output), so a file of 100,000 rows is never held whole and an
interrupted run shows how far it got; running it again reports the rows done as ``unchanged``.
A ``.csv`` file is CSV, anything else NDJSON. The counts go to standard error; the exit code is
1 when any row was refused or in conflict.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from api.cli.context import OPERATOR, die, open_services


def convert_legacy(file: Path, department: str | None, data_dir: Path | None) -> None:
    from core.errors import ElicenceError
    from licences import legacy

    if not department:
        die("--legacy 须指明 --department（转换哪个部门的证照）/ --legacy needs --department")
    services = open_services(data_dir)
    desk = services.legacy
    counts = {outcome.value: 0 for outcome in legacy.Outcome}
    try:
        with file.open(encoding="utf-8", newline="") as handle:
            reader = legacy.read_csv if file.suffix.lower() == ".csv" else legacy.read_ndjson
            rows = reader(handle, desk.today())
            for report in desk.convert_all(
                rows, department_code=department.upper(), actor=OPERATOR, request_id=None
            ):
                counts[report.outcome.value] += 1
                typer.echo(json.dumps(report.as_json(), ensure_ascii=False))
    except OSError as exc:
        die(f"无法读取文件 / cannot read {file}: {exc}")
    except UnicodeDecodeError as exc:
        die(f"文件不是 UTF-8（已处理的行不受影响）/ {file} is not UTF-8 (rows before stand): {exc}")
    except ElicenceError as exc:  # a CSV header refused as a whole, or the service is down
        die(exc.message)
    total = sum(counts.values())
    typer.echo(
        f"存量证照转换 / legacy conversion: 共 {total} 行 / {total} rows — 转换 converted "
        f"{counts['converted']}，未变 unchanged {counts['unchanged']}，冲突 conflict "
        f"{counts['conflict']}，拒绝 refused {counts['refused']}",
        err=True,
    )
    if counts["conflict"] or counts["refused"]:
        raise typer.Exit(1)
