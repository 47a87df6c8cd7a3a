"""``elicence keys``: what the key store holds, and rotating a department's seal keys.

Rotation is an operator's act (a suspected compromise, a key's planned end of use): it makes a
new key version in the store and a new seal certificate bound to it; licences sealed before keep
verifying against the certificate they were sealed with.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from api.cli.context import OPERATOR, DataDir, open_services

keys_app = typer.Typer(help="密钥管理 / key custody and rotation", no_args_is_help=True)


@keys_app.command("list")
def list_keys(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """列出密钥及其版本和用途 / list every key version, its algorithm and what uses it."""
    services = open_services(data_dir)
    rows: list[dict[str, Any]] = []
    for key in services.key_custody.uses():
        if key.seal is not None:
            use = f"seal {key.seal} (当前 / current)"
        elif key.certificate is not None:
            use = key.certificate
        else:
            use = "-"
        rows.append(
            {
                "key": key.key,
                "label": key.label,
                "version": key.version,
                "algorithm": key.algorithm,
                "use": use,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    typer.echo(f"密钥库 / key store: {services.keystore.name}")
    for row in rows:
        typer.echo(f"  {row['key']:<48} {row['algorithm']:<9} {row['use']}")


@keys_app.command("rotate")
def rotate(
    department: Annotated[str, typer.Option("--department", help="部门代码 / department USCC")],
    seal: Annotated[
        str | None, typer.Option("--seal", help="只轮换这枚印章 / only this seal")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """轮换部门印章密钥并签发新印章证书 / rotate a department's seal keys; prints JSON."""
    custody = open_services(data_dir).key_custody
    rotated = [
        {
            "seal": r.seal,
            "key": r.key,
            "certificate": r.certificate,
            "previous": {"key": r.previous_key, "certificate": r.previous_certificate},
        }
        for r in custody.rotate(department, actor=OPERATOR, seal=seal)
    ]
    typer.echo(json.dumps({"department": department, "rotated": rotated}, ensure_ascii=False))
