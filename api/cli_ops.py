"""Operator commands for API clients and the audit trail (电子监察)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import col, or_, select

clients_app = typer.Typer(help="部门API客户端 / department API clients", no_args_is_help=True)
OPERATOR = "operator:cli"
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="数据目录 / data directory")]


def _services(data_dir: Path | None):  # type: ignore[no-untyped-def]
    from api.cli import _services as services

    return services(data_dir)


@clients_app.command("create")
def create(
    department: Annotated[str, typer.Option("--department")],
    name: Annotated[str, typer.Option("--name")],
    data_dir: DataDir = None,
) -> None:
    """新建客户端，密钥只显示这一次 / create a client; its key is shown once."""
    from core.db import transaction
    from seals.clients import create_client

    services = _services(data_dir)
    with transaction(services.engine) as session:
        services.seals.department(session, department)
        client, key = create_client(
            session,
            services.audit,
            services.clock,
            department_code=department,
            name=name,
            actor=OPERATOR,
        )
    typer.echo(
        json.dumps(
            {"client_id": client.id, "department": department, "api_key": key}, ensure_ascii=False
        )
    )


@clients_app.command("list")
def list_(data_dir: DataDir = None) -> None:
    """列出客户端 / list clients (never their keys)."""
    from core.db import reading
    from seals.clients import list_clients

    services = _services(data_dir)
    with reading(services.engine) as session:
        for client in list_clients(session):
            state = "revoked" if client.revoked_at else "active"
            typer.echo(f"{client.id}\t{client.department_code}\t{client.name}\t{state}")


@clients_app.command("rotate")
def rotate(client_id: str, data_dir: DataDir = None) -> None:
    """换发客户端密钥，旧密钥立即失效 / new key for a client; the old one stops working at once."""
    from core.db import transaction
    from seals.clients import rotate_client_key

    services = _services(data_dir)
    with transaction(services.engine) as session:
        client, key = rotate_client_key(
            session, services.audit, client_id=client_id, actor=OPERATOR
        )
    typer.echo(json.dumps({"client_id": client.id, "api_key": key}, ensure_ascii=False))


@clients_app.command("revoke")
def revoke(client_id: str, data_dir: DataDir = None) -> None:
    """吊销客户端 / revoke a client at once."""
    from core.db import transaction
    from seals.clients import revoke_client

    services = _services(data_dir)
    with transaction(services.engine) as session:
        revoke_client(session, services.audit, services.clock, client_id=client_id, actor=OPERATOR)
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
    from core.audit import AuditEntry
    from core.db import as_utc, reading

    services = _services(data_dir)
    query = select(AuditEntry).order_by(col(AuditEntry.seq))
    if action:
        query = query.where(col(AuditEntry.action).startswith(action))
    if department:
        query = query.where(
            or_(
                col(AuditEntry.actor).contains(f"department:{department}"),
                AuditEntry.object_id == department,
            )
        )
    if since:
        query = query.where(col(AuditEntry.at) >= as_utc(since))
    if until:
        query = query.where(col(AuditEntry.at) < as_utc(until))
    with reading(services.engine) as session:
        for entry in session.exec(query):
            row = entry.model_dump()
            row["at"] = as_utc(entry.at).isoformat()
            typer.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))
