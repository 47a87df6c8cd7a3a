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
    from sqlmodel import select

    from core.db import reading
    from seals.models import Seal
    from trust.models import CertificateRecord

    services = open_services(data_dir)
    infos = services.keystore.list()
    with reading(services.engine) as session:
        in_use = {seal.key_ref: f"seal {seal.code}" for seal in session.exec(select(Seal))}
        certified = {
            record.key_ref: f"{record.role} {record.name}"
            for record in session.exec(select(CertificateRecord))
        }
    rows: list[dict[str, Any]] = []
    for info in infos:
        ref = str(info.ref)
        if ref in in_use:
            use = f"{in_use[ref]} (当前 / current)"
        elif ref in certified:
            use = certified[ref]
        else:
            use = "-"
        rows.append(
            {
                "key": ref,
                "label": info.ref.label,
                "version": info.ref.version,
                "algorithm": info.algorithm.value,
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
    from core.db import transaction
    from core.errors import NotFound

    services = open_services(data_dir)
    rotated = []
    with transaction(services.engine) as session:
        seals = services.seals.active_seals(session, department)
        if seal is not None:
            seals = [s for s in seals if s.code == seal]
        if not seals:
            raise NotFound(
                f"部门 {department} 没有可轮换的印章 / no active seal to rotate", field="seal"
            )
        for row in seals:
            previous = {"key": row.key_ref, "certificate": row.certificate_serial}
            updated = services.seals.rotate_seal_key(session, actor=OPERATOR, seal_code=row.code)
            rotated.append(
                {
                    "seal": updated.code,
                    "key": updated.key_ref,
                    "certificate": updated.certificate_serial,
                    "previous": previous,
                }
            )
    typer.echo(json.dumps({"department": department, "rotated": rotated}, ensure_ascii=False))
