"""Operator commands for API clients and the audit trail (电子监察)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from api.cli.context import OPERATOR, DataDir, open_services

clients_app = typer.Typer(help="部门API客户端 / department API clients", no_args_is_help=True)


@clients_app.command("create")
def create(
    department: Annotated[str, typer.Option("--department")],
    name: Annotated[str, typer.Option("--name")],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="权限范围，可重复；缺省为部门常用范围 / a scope, repeatable (default: the "
            "department scopes); holders:correct:<category> only for the registry of that "
            "category; supervise alone, for a supervision office; events:reminders for the "
            "message service",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """新建客户端，密钥只显示这一次 / create a client; its key is shown once."""
    from seals.clients import DEPARTMENT_SCOPES

    client, key = open_services(data_dir).clients.create(
        department,
        name=name,
        actor=OPERATOR,
        scopes=tuple(scope) if scope else DEPARTMENT_SCOPES,
    )
    typer.echo(
        json.dumps(
            {
                "client_id": client.id,
                "department": department,
                "api_key": key,
                "scopes": list(client.scopes),
            },
            ensure_ascii=False,
        )
    )


@clients_app.command("list")
def list_(data_dir: DataDir = None) -> None:
    """列出客户端 / list clients (never their keys)."""
    for client in open_services(data_dir).clients.clients():
        state = "revoked" if client.revoked_at else "active"
        typer.echo(f"{client.id}\t{client.department_code}\t{client.name}\t{state}")


@clients_app.command("rotate")
def rotate(client_id: str, data_dir: DataDir = None) -> None:
    """换发客户端密钥，旧密钥立即失效 / new key for a client; the old one stops working at once."""
    client, key = open_services(data_dir).clients.rotate(client_id, actor=OPERATOR)
    typer.echo(json.dumps({"client_id": client.id, "api_key": key}, ensure_ascii=False))


@clients_app.command("revoke")
def revoke(client_id: str, data_dir: DataDir = None) -> None:
    """吊销客户端 / revoke a client at once."""
    open_services(data_dir).clients.revoke(client_id, actor=OPERATOR)
    typer.echo(f"revoked {client_id}")


def export(
    department: Annotated[str | None, typer.Option("--department")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="e.g. licence.issue, or a prefix like licence.")
    ] = None,
    since: Annotated[datetime | None, typer.Option("--since")] = None,
    until: Annotated[datetime | None, typer.Option("--until")] = None,
    data_dir: DataDir = None,
) -> None:
    """导出审计记录（JSON Lines） / export audit entries as JSON lines for supervisors."""
    desk = open_services(data_dir).audit_desk
    for entry in desk.entries(action=action, department=department, since=since, until=until):
        row = entry.model_dump()
        row["at"] = entry.at.isoformat()  # in UTC (trust.audit_desk)
        typer.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))


def verify_chain_command(
    anchor: Annotated[
        Path | None,
        typer.Option(
            "--anchor",
            help="保存的信任列表或导出的检查点 / a saved trust list or an exported checkpoint",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """核对审计链 / check the audit chain; exit 1 at the first broken entry or checkpoint, or
    when the chain no longer holds the checkpoint in --anchor FILE."""
    from core.errors import ElicenceError

    desk = open_services(data_dir).audit_desk
    document = _read_json(anchor) if anchor is not None else None
    pinned = None
    if anchor is not None:
        try:
            pinned = desk.anchor(document)
        except ElicenceError as exc:
            _fail(exc.message)
    verdict = desk.verify(pinned)
    chain, checkpoints = verdict.chain, verdict.checkpoints
    if not chain.intact:
        _fail(
            f"审计链在第 {chain.first_broken} 条断开 / audit chain broken at entry "
            f"{chain.first_broken}: {chain.reason}"
        )
    if not checkpoints.intact:
        _fail(
            f"审计检查点 {checkpoints.broken_number} 不成立 / the audit checkpoints do not hold: "
            f"{checkpoints.reason}"
        )
    if pinned is not None and verdict.anchor_problem is not None:
        _fail(
            f"审计链不再包含锚定的检查点 {pinned.number}（第 {pinned.entry} 条）/ the audit chain "
            f"no longer holds anchored checkpoint {pinned.number} (entry {pinned.entry}, "
            f"{pinned.source}): {verdict.anchor_problem}"
        )
    anchored = (
        f"; anchored at checkpoint {pinned.number} (entry {pinned.entry}, {pinned.source})"
        if pinned is not None
        else ""
    )
    typer.echo(
        f"审计链完整 / audit chain intact: {chain.entries} entries, {checkpoints.checked} signed "
        f"checkpoints{anchored}"
    )


def export_checkpoint_command(
    out: Annotated[Path, typer.Option("--out", help="写出的文件 / where to write it")],
    data_dir: DataDir = None,
) -> None:
    """导出最新的带时间戳审计检查点 / export the latest timestamped audit checkpoint, to keep
    outside the database and check later with `audit verify --anchor`."""
    from core.errors import ElicenceError

    try:
        document = open_services(data_dir).audit_desk.latest_checkpoint()
    except ElicenceError as exc:
        _fail(exc.message)
    part = out.with_name(out.name + ".part")
    part.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    part.replace(out)
    typer.echo(
        f"检查点 {document['sequence']} / checkpoint {document['sequence']} "
        f"(entry {document['entry']}) -> {out}"
    )


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _fail(f"无法读取锚定文件 / cannot read the anchor file {path}: {exc}")


def _fail(message: str) -> NoReturn:
    typer.echo(f"elicence: {message}", err=True)
    raise typer.Exit(1)
