"""The ``elicence`` command: a thin edge over the same services the HTTP API uses."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from api.cli.archive import archive_app
from api.cli.backup import backup_command, restore_command
from api.cli.catalogue import catalogue_app
from api.cli.context import OPERATOR, DataDir, die, open_services, option_date
from api.cli.expiry import expiry_app
from api.cli.federation import federation_app
from api.cli.holders import holders_app
from api.cli.keys import keys_app
from api.cli.licences import export_licences, import_licences, issue_batch
from api.cli.ops import clients_app, export_checkpoint_command, verify_chain_command
from api.cli.ops import export as export_audit
from api.cli.registry import departments_app
from api.cli.seals import seals_app
from api.cli.trust import trust_app
from api.cli.worker import worker_command
from core.errors import ElicenceError, ErrorKind

app = typer.Typer(
    help="elicence 电子证照与电子印章服务 / electronic licence and seal service",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
audit_app = typer.Typer(help="审计链 / the audit chain", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")
app.add_typer(seals_app, name="seals")
app.add_typer(departments_app, name="departments")
app.add_typer(archive_app, name="archive")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(federation_app, name="federation")
app.add_typer(holders_app, name="holders")
app.add_typer(trust_app, name="trust")
app.add_typer(expiry_app, name="expiry")
app.command("export")(export_licences)
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.command("import")(import_licences)
app.command("worker")(worker_command)
audit_app.command("export")(export_audit)
audit_app.command("verify")(verify_chain_command)
audit_app.command("checkpoint")(export_checkpoint_command)

VERIFY_EXIT = {"PASSED": 0, "FAILED": 1, "INDETERMINATE": 2}


@app.command()
def init(
    data_dir: DataDir = None,
    demo: Annotated[bool, typer.Option("--demo", help="添加示范数据 / add demo data")] = False,
) -> None:
    """创建信任域（幂等） / create the trust domain (idempotent)."""
    from api.ops.bootstrap import initialise

    result = initialise(open_services(data_dir, initialised=False), with_demo=demo)
    for line in result.messages:
        typer.echo(line)


@app.command()
def serve(
    data_dir: DataDir = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
) -> None:
    """提供HTTP服务 / serve the HTTP API and pages."""
    import os
    import shutil
    import tempfile

    import uvicorn

    services = open_services(data_dir)
    os.environ["ELICENCE_DATA_DIR"] = str(services.settings.data_dir.resolve())
    metrics_dir = None
    if workers > 1:  # /metrics sums every worker's files (api/edge/observability.py)
        metrics_dir = tempfile.mkdtemp(prefix="elicence-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "api.asgi:app",
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_level="info",
            proxy_headers=False,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@app.command()
def issue(
    licence_type: Annotated[
        str | None, typer.Option("--type", help="证照类型代码 / licence type code")
    ] = None,
    holder_id: Annotated[str | None, typer.Option("--holder-id")] = None,
    holder_name: Annotated[str | None, typer.Option("--holder-name")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="写出盖章PDF / where to write the sealed PDF")
    ] = None,
    field: Annotated[list[str] | None, typer.Option("--field", help="k=v")] = None,
    department: Annotated[str | None, typer.Option("--department")] = None,
    holder_id_type: Annotated[str | None, typer.Option("--holder-id-type")] = None,
    valid_from: Annotated[str | None, typer.Option("--valid-from")] = None,
    valid_until: Annotated[str | None, typer.Option("--valid-until")] = None,
    batch: Annotated[
        Path | None, typer.Option("--batch", help="CSV 批量签发（列见 README）/ issue every row")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """签发一份证照，或 --batch 批量签发 / issue one licence (prints JSON), or every row of a CSV."""
    from licences.batch import default_issuer
    from licences.issuance import IssueRequest

    if batch is not None:
        issue_batch(batch, department, data_dir)
        return
    if licence_type is None or holder_id is None or holder_name is None or out is None:
        die("须给出 --type --holder-id --holder-name --out，或 --batch / give them, or --batch")
    services = open_services(data_dir)
    fields = _fields(field or [])
    entry = services.catalogue_desk.entry(licence_type)
    result = services.issuance.issue(
        IssueRequest(
            department_code=department or default_issuer(entry),
            licence_type=licence_type,
            holder_id_type=holder_id_type or entry.holder_id_type,
            holder_id=holder_id,
            holder_name=holder_name,
            fields=fields,
            valid_from=option_date(valid_from, "--valid-from"),
            valid_until=option_date(valid_until, "--valid-until"),
            actor=OPERATOR,
        )
    )
    _write(out, services.licence_desk.document(result.licence.identifier))
    typer.echo(
        json.dumps(
            {
                "identifier": result.licence.identifier,
                "version": result.licence.version,
                "sha256": result.licence.sha256,
                "verify_url": result.verify_url,
            },
            ensure_ascii=False,
        )
    )


def _fields(pairs: list[str]) -> dict[str, str]:
    """``--field k=v`` options as the licence's fields."""
    fields: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            die(f"--field 须为 k=v / --field must be k=v, got {item!r}")
        fields[key] = value
    return fields


def _write(out: Path, data: bytes) -> None:
    """Write a file whole or not at all: a partial file never has the final name."""
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(out)


@app.command()
def verify(
    file: Annotated[Path | None, typer.Argument(help="PDF文件 / the PDF")] = None,
    qr: Annotated[str | None, typer.Option("--qr", help="二维码内容 / the QR text")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="不连证照库，只用信任列表核验二维码 / check a QR against a trust list only",
        ),
    ] = False,
    trust_list: Annotated[
        Path | None,
        typer.Option("--trust-list", help="信任列表JSON（含 qr_keys） / trust-list JSON file"),
    ] = None,
    fingerprint: Annotated[
        str | None,
        typer.Option(
            "--fingerprint",
            help="信任列表签名者证书SHA-256 / the pinned SHA-256 of the trust-list signer",
        ),
    ] = None,
    status_list: Annotated[
        Path | None,
        typer.Option(
            "--status-list",
            help="状态列表（GET /pki/status-list 下载的JWS） / the status list downloaded from "
            "/pki/status-list",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """核验PDF或二维码 / verify a PDF or QR text. Exit 0 PASSED, 1 FAILED, 2 INDETERMINATE, 3 unreadable."""
    if (file is None) == (qr is None):
        die("须给出 FILE 或 --qr 之一 / give FILE or --qr", 3)
    if offline or trust_list is not None or status_list is not None:
        if qr is None or trust_list is None:
            die("离线核验须给出 --qr 和 --trust-list / --offline needs --qr and --trust-list", 3)
        _verify_offline(qr, trust_list, status_list, as_json, fingerprint, data_dir)
    services = open_services(data_dir)
    if file is not None:
        try:
            data = file.read_bytes()
        except OSError as exc:
            die(f"无法读取文件 / cannot read {file}: {exc.strerror}", 3)
        report = services.verification.verify_pdf(data, channel="cli", actor=OPERATOR)
        unreadable = report.sub_indication is not None and report.sub_indication.value in (
            "MALFORMED",
            "LIMIT_EXCEEDED",
        )
    else:
        assert qr is not None
        report = services.verification.verify_code(qr, channel="cli", actor=OPERATOR)
        unreadable = False
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(
            f"{report.indication.value}{' / ' + report.sub_indication.value if report.sub_indication else ''}: {report.message}"
        )
        if report.licence:
            typer.echo(
                f"  {report.licence.type_name} {report.licence.identifier} ({report.licence.status_label})"
            )
    raise typer.Exit(3 if unreadable else VERIFY_EXIT[report.indication.value])


def _verify_offline(
    qr: str,
    trust_list: Path,
    status_list: Path | None,
    as_json: bool,
    fingerprint: str | None,
    data_dir: Path | None,
) -> NoReturn:
    """No database or server: the payload's signature against the keys of a trust list anchored
    to the pinned signer (``--fingerprint``, else the pin saved by ``elicence trust pin``), and
    a printed licence's entry in the status list that trust list's credential key signed."""
    from api.cli.trust import saved_pin
    from core.clock import SystemClock
    from trust.trustlist import pin_from_text
    from verify.offline import load_qr_keys, verify_offline
    from verify.offline_status import load_status_list, read_status_list

    try:
        pinned = pin_from_text(fingerprint) if fingerprint is not None else saved_pin(data_dir)
        keys = load_qr_keys(trust_list, pinned)
        downloaded = None if status_list is None else read_status_list(status_list)
    except ElicenceError as exc:
        die(exc.message, 3)
    status = None if downloaded is None else load_status_list(downloaded, keys.status)
    report = verify_offline(qr, keys, SystemClock().now(), status=status)
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        sub = f" / {report.sub_indication.value}" if report.sub_indication else ""
        typer.echo(f"{report.indication.value}{sub}: {report.message}")
        claims = report.extra.get("claims")
        if claims:
            typer.echo(
                f"  {claims['identifier']} 发证机关代码 / issuer {claims['issuer_code']}, "
                f"有效至 / valid until {claims['valid_until'] or '长期 / indefinite'}"
            )
            if claims["expires_at"]:
                typer.echo(
                    f"  出示于 / presented at {claims['issued_at']}, "
                    f"过期于 / expires at {claims['expires_at']}"
                )
        if "status_as_of" in report.extra:
            typer.echo(f"  状态截至 / status as of {report.extra['status_as_of']}")
    raise typer.Exit(VERIFY_EXIT[report.indication.value])


@app.command()
def revoke(
    identifier: str,
    reason: Annotated[str, typer.Option("--reason")],
    cancel: Annotated[
        bool, typer.Option("--cancel", help="注销（非处罚）而非吊销 / cancel, not a penalty")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """吊销（或 --cancel 注销）证照 / revoke a licence as a penalty, or cancel it."""
    from licences.lifecycle import Transition

    changed = open_services(data_dir).licence_desk.change_status(
        identifier=identifier,
        transition=Transition.CANCEL if cancel else Transition.REVOKE,
        reason=reason,
        actor=OPERATOR,
        department_code=None,
    )
    licence = changed.record.licence
    typer.echo(
        json.dumps({"identifier": licence.identifier, "status": licence.status}, ensure_ascii=False)
    )


EXIT_FOR_KIND = {ErrorKind.UNAVAILABLE: 4}


def main() -> None:
    try:
        app()
    except ElicenceError as exc:
        field = f" [{exc.field}]" if exc.field else ""
        typer.echo(f"elicence: {exc.message}{field}", err=True)
        sys.exit(EXIT_FOR_KIND.get(exc.kind, 1) if sys.argv[1:2] != ["verify"] else 3)
