"""``elicence departments add|list``: the operator registers the departments that hold seals
and issue licences (the seal commands are in ``api.cli.seals``). Registering is audited like
the API's changes, in the transaction ``seals.desk.SealDesk`` opens for it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from api.cli.context import OPERATOR, DataDir, open_services

departments_app = typer.Typer(help="部门 / departments", no_args_is_help=True)


def _print(value: dict[str, Any]) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


@departments_app.command("add")
def add_department(
    code: Annotated[str, typer.Argument(help="统一社会信用代码 / unified social credit code")],
    name: Annotated[str, typer.Option("--name", help="部门名称 / name")],
    division: Annotated[str, typer.Option("--division", help="行政区划代码 / GB/T 2260 code")],
    level: Annotated[str, typer.Option("--level", help="national|provincial|municipal|county")],
    parent: Annotated[str | None, typer.Option("--parent", help="上级部门 / parent")] = None,
    data_dir: DataDir = None,
) -> None:
    """登记部门 / register a department."""
    department = open_services(data_dir).seal_desk.add_department(
        actor=OPERATOR,
        code=code,
        name=name,
        division_code=division,
        level=level,
        parent_code=parent,
    )
    _print({"department": department.code, "name": department.name})


@departments_app.command("list")
def list_departments(data_dir: DataDir = None) -> None:
    """列出部门 / list departments, one JSON object a line."""
    for d in open_services(data_dir).seal_desk.departments():
        _print(
            {
                "code": d.code,
                "name": d.name,
                "division_code": d.division_code,
                "level": d.level,
                "parent_code": d.parent_code,
            }
        )
