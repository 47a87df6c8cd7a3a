"""``elicence archive refresh``: re-timestamp sealed licences before their last timestamp's
certificate expires (PAdES-LTA), so they keep verifying for decades. Run it from cron, say
monthly; it is idempotent and only touches licences that are due."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Annotated

import typer

from api.cli.context import DataDir, open_services

archive_app = typer.Typer(help="长期保存 / long-term preservation", no_args_is_help=True)
OPERATOR = "operator:archive"


@archive_app.command("refresh")
def refresh(
    margin_days: Annotated[
        int,
        typer.Option("--margin-days", help="到期前多少天更新 / refresh this long before expiry"),
    ] = 365,
    limit: Annotated[int | None, typer.Option("--limit", help="最多处理数 / at most")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只列出 / only list")] = False,
    data_dir: DataDir = None,
) -> None:
    """为临近到期的证照追加文档时间戳 / add a document timestamp to licences whose newest
    timestamp certificate expires within the margin; prints one JSON line per licence."""

    services = open_services(data_dir)
    archive = services.trust_services.archive
    margin = timedelta(days=margin_days)
    if dry_run:
        archive.index()
        for identifier in archive.due(margin)[:limit]:
            typer.echo(json.dumps({"identifier": identifier, "due": True}))
        return
    done = archive.refresh_due(OPERATOR, margin=margin, limit=limit)
    for item in done:
        typer.echo(json.dumps(dataclasses.asdict(item), ensure_ascii=False))
    typer.echo(f"已更新 / refreshed: {len(done)}", err=True)
