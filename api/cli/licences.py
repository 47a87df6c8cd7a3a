"""``elicence issue --batch``, ``elicence export`` and ``elicence import``: the operator's bulk
paths, over the same services as the API.

A batch file is keyed row by row (the ``key`` column, else the file's SHA-256 and the line
number), so running the same file again after a crash replays the rows already issued instead
of issuing them twice. Failures are summarised by reason at the end and make the exit code 1.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.context import OPERATOR, DataDir, die, open_services, option_date

if TYPE_CHECKING:  # the domain is imported when a command runs, to keep the CLI's start quick
    from licences.batch import ItemResult


def _result_row(result: ItemResult, label: int) -> dict[str, Any]:
    if result.error is not None:
        return {
            "line": label,
            "ok": False,
            "field": result.error.field,
            "error": result.error.message,
        }
    assert result.issued is not None
    licence = result.issued.licence
    return {
        "line": label,
        "ok": True,
        "identifier": licence.identifier,
        "replayed": result.issued.replayed,
    }


def _report(results: list[ItemResult], label: Callable[[int], int], what: str) -> None:
    """Per-row JSON on stdout, a human summary of failures by reason on stderr, exit 1 if any
    failed."""
    from licences import batch

    summary = batch.summary(results, label)
    rows = [_result_row(r, label(r.index)) for r in results]
    typer.echo(json.dumps({"summary": summary, "rows": rows}, ensure_ascii=False, indent=2))
    typer.echo(
        f"{what}: 共 {summary['total']} 行，新签发 {summary['issued']}，重放 {summary['replayed']}，"
        f"失败 {summary['failed']} / {summary['total']} rows, {summary['issued']} issued, "
        f"{summary['replayed']} replayed, {summary['failed']} failed",
        err=True,
    )
    for reason, group in summary["failures_by_reason"].items():
        typer.echo(
            f"  {reason}: {group['count']} 行 / rows {group['rows']} — {group['example']}",
            err=True,
        )
    if summary["failed"]:
        raise typer.Exit(1)


def issue_batch(file: Path, department: str | None, data_dir: Path | None) -> None:
    """Issue every row of a CSV file (columns in README.md)."""
    from licences import batch

    try:
        raw = file.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        die(f"无法读取 UTF-8 CSV 文件 / cannot read {file} as UTF-8 CSV: {exc}")
        return
    services = open_services(data_dir)
    items = services.licence_desk.batch_items(
        text,
        department=department,
        actor=OPERATOR,
        key_prefix="csv-" + hashlib.sha256(raw).hexdigest()[:24],
    )
    with typer.progressbar(length=len(items), label="签发 / issuing", file=sys.stderr) as progress:
        results = batch.issue_all(services.issuance.issue, items, progress.update)
    _report(results, lambda index: index + 2, "批量签发 / batch")


def export_licences(
    identifier: Annotated[str | None, typer.Argument(help="证照标识；缺省按条件导出")] = None,
    department: Annotated[str | None, typer.Option("--department")] = None,
    licence_type: Annotated[str | None, typer.Option("--type")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    holder_id: Annotated[str | None, typer.Option("--holder-id")] = None,
    issued_from: Annotated[str | None, typer.Option("--issued-from")] = None,
    issued_to: Annotated[str | None, typer.Option("--issued-to")] = None,
    original_number: Annotated[
        str | None, typer.Option("--original-number", help="原证照编号 / a converted licence's")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="写入文件 / write to a file")] = None,
    data_dir: DataDir = None,
) -> None:
    """导出证照（国家标准字段名）/ export one licence, or every licence matching the filters,
    in the exchange format (docs/exchange-format.md)."""
    from licences.search import LicenceQuery

    desk = open_services(data_dir).exchange_desk
    if identifier is not None:
        document = desk.export_one(identifier, department_code=None)
    else:
        document = desk.export_all(
            LicenceQuery(
                issuer_code=department.upper() if department else None,
                holder_id=holder_id,
                type_code=licence_type,
                status=status,
                issued_from=option_date(issued_from, "--issued-from"),
                issued_to=option_date(issued_to, "--issued-to"),
                original_number=original_number,
            )
        )
    text = json.dumps(document, ensure_ascii=False, indent=2)
    if out is None:
        typer.echo(text)
        return
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(out)
    count = len(document.get("证照", [document]))
    typer.echo(f"已导出 {count} 份 / exported {count} licence(s) to {out}", err=True)


def import_licences(
    file: Annotated[Path, typer.Argument(help="导出文档、证照数组或一份证照 / the JSON file")],
    department: Annotated[
        str | None, typer.Option("--department", help="只导入该部门颁发的 / only this issuer's")
    ] = None,
    legacy: Annotated[
        bool,
        typer.Option(
            "--legacy",
            help="存量证照转换：NDJSON 或 .csv，见 docs/legacy-conversion.md / convert the "
            "department's existing licences from its earlier system",
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """导入其他系统的证照，由本库签发、盖章 / import records from another system: each is
    issued, rendered and sealed by this repository. Importing the same file again replays.
    With --legacy, convert a department's existing licences (api/cli/legacy.py)."""
    from licences import exchange

    if legacy:
        from api.cli.legacy import convert_legacy

        convert_legacy(file, department, data_dir)
        return

    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        die(f"无法读取 JSON 文件 / cannot read {file} as JSON: {exc}")
        return
    services = open_services(data_dir)
    items = services.exchange_desk.import_items(
        exchange.records_of(document),
        department_code=department.upper() if department else None,
        actor=OPERATOR,
        key="file-" + hashlib.sha256(file.read_bytes()).hexdigest()[:24],
    )
    with typer.progressbar(length=len(items), label="导入 / importing", file=sys.stderr) as bar:
        results = exchange.import_all(services.issuance.issue, items)
        bar.update(len(items))
    _report(results, lambda index: index + 1, "导入 / import")

