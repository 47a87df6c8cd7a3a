"""Operator commands for holders: correcting a registered name (``licences.holders``).

The operator acts for the whole domain, like a client holding ``holders:correct:<category>``
for every category. The correction is audited under ``operator:cli`` with both names (a
person's masked); licences already sealed keep showing the name they were issued under.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from api.cli.context import OPERATOR, DataDir, open_services

holders_app = typer.Typer(help="持证主体 / holders", no_args_is_help=True)


@holders_app.command("rename")
def rename(
    id_type: Annotated[str, typer.Argument(help="证件类型，如 111、001、414 / ID type")],
    id_number: Annotated[str, typer.Argument(help="证件号码 / ID number")],
    name: Annotated[str, typer.Option("--name", help="更正后的登记名称 / the corrected name")],
    data_dir: DataDir = None,
) -> None:
    """更正持证主体登记名称，此后签发以此核对 / correct a holder's registered name; later
    issuances are checked against it, sealed licences keep theirs."""
    services = open_services(data_dir)
    holder = services.holder_desk.rename(
        id_type=id_type, id_number=id_number, name=name, actor=OPERATOR
    )
    out = {"id_type": holder.id_type, "id": holder.id_number, "name": holder.name}
    typer.echo(json.dumps(out, ensure_ascii=False))
