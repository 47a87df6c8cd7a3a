"""``elicence backup`` and ``elicence restore``: the operator's side of api/ops/backup.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.settings import Settings


def backup_command(
    out: Annotated[Path, typer.Option("--out", help="备份文件 / archive to write (.tar.gz)")],
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="数据目录 / data directory")
    ] = None,
) -> None:
    """备份数据库、密钥库与配置 / write a consistent backup (database, key store, settings)."""
    from api.ops.backup import backup

    settings = Settings()
    if data_dir is not None:
        settings.data_dir = data_dir
    manifest = backup(settings, out)
    typer.echo(
        f"已备份 / backup written: {out} ({len(manifest['members'])} members, "
        f"database {manifest['database']}, keystore {manifest['keystore']})"
    )
    typer.echo(
        "注意：密钥库口令不在备份中，请另行保管 / the key store passphrase is not in the backup; keep it apart"
    )


def restore_command(
    source: Annotated[Path, typer.Option("--from", help="备份文件 / archive to restore")],
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="新的空数据目录 / new, empty data directory")
    ],
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="空的 PostgreSQL 数据库 / empty target database"),
    ] = None,
) -> None:
    """从备份恢复数据目录 / rebuild a data directory from a backup (checks the manifest first)."""
    from api.ops.backup import restore

    manifest = restore(source, data_dir, database_url)
    typer.echo(
        f"已恢复 / restored {source} ({manifest['created_at']}) into {data_dir}; "
        "set ELICENCE_KEY_PASSPHRASE (or secrets/keystore-passphrase) to the original passphrase"
    )
