"""``elicence catalogue``: the operator's view of the licence type catalogue (统一编目).

The operator acts for the trust domain, so the defining-authority check of the API does not
apply here; every change is audited under ``operator:cli`` all the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.context import OPERATOR, DataDir, die, open_services

if TYPE_CHECKING:  # the domain is imported when a command runs, to keep the CLI's start quick
    from licences.models import LicenceType

catalogue_app = typer.Typer(
    help="证照目录 / the licence type catalogue (GB/T 36902)", no_args_is_help=True
)


def _definition(entry: LicenceType) -> dict[str, Any]:
    data: dict[str, Any] = entry.model_dump(mode="json")
    return data


@catalogue_app.command("list")
def list_types(
    data_dir: DataDir = None,
    status: Annotated[str | None, typer.Option(help="active | withdrawn")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """列出证照类型 / list the licence types."""
    entries = open_services(data_dir).catalogue_desk.entries(status=status)
    if as_json:
        typer.echo(json.dumps([_definition(e) for e in entries], ensure_ascii=False, indent=2))
        return
    for entry in entries:
        typer.echo(f"{entry.code}\tv{entry.version}\t{entry.status}\t{entry.name}")


@catalogue_app.command("show")
def show(
    code: str,
    data_dir: DataDir = None,
    version: Annotated[int | None, typer.Option(help="某一历史版本 / a past version")] = None,
) -> None:
    """显示一个证照类型（JSON）/ show one type as JSON, as it is now or at --version."""
    shown = open_services(data_dir).catalogue_desk.show(code, version)
    typer.echo(
        json.dumps(
            {**_definition(shown.entry), "versions": list(shown.versions)},
            ensure_ascii=False,
            indent=2,
        )
    )


def _read(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        die(f"无法读取 JSON 文件 / cannot read {file} as JSON: {exc}")
    if not isinstance(data, dict):
        die("文件应为一个 JSON 对象 / the file must hold one JSON object")
    return data


@catalogue_app.command("add")
def add(
    file: Annotated[Path, typer.Option("--file", help="证照类型定义 JSON / the definition")],
    data_dir: DataDir = None,
) -> None:
    """编目新的证照类型 / add a type from a JSON definition (fields as in the API, plus
    authority_code)."""
    from licences.catalogue_desk import OPERATOR_FIELDS

    data = _read(file)
    services = open_services(data_dir)
    unknown = sorted(set(data) - OPERATOR_FIELDS)
    if unknown:
        die(f"未知字段 / unknown fields: {', '.join(unknown)}")
    entry = services.catalogue_desk.add(definition=data, actor=OPERATOR)
    typer.echo(json.dumps(_definition(entry), ensure_ascii=False, indent=2))


@catalogue_app.command("update")
def update(
    code: str,
    file: Annotated[Path, typer.Option("--file", help="新的定义 JSON / the new definition")],
    data_dir: DataDir = None,
) -> None:
    """修改证照类型，有变化即为新版本 / change a type; a change is a new version."""
    changes = {
        k: v for k, v in _read(file).items() if k not in ("code", "authority_code", "version")
    }
    entry = open_services(data_dir).catalogue_desk.update(
        code=code, changes=changes, actor=OPERATOR
    )
    typer.echo(json.dumps(_definition(entry), ensure_ascii=False, indent=2))


@catalogue_app.command("withdraw")
def withdraw(
    code: str,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    data_dir: DataDir = None,
) -> None:
    """停用证照类型（已发证照不受影响）/ withdraw a type; its licences are not affected."""
    desk = open_services(data_dir).catalogue_desk
    entry = desk.withdraw(code=code, reason=reason, department_code=None, actor=OPERATOR).entry
    typer.echo(
        json.dumps(
            {"code": entry.code, "status": entry.status, "version": entry.version},
            ensure_ascii=False,
        )
    )


@catalogue_app.command("service-item")
def service_item(
    code: str,
    item: Annotated[str, typer.Argument(help="事项编码 / service item code")],
    fields: Annotated[
        list[str] | None,
        typer.Option("--field", help="该事项所需字段，可重复 / a field the item needs (repeat)"),
    ] = None,
    remove: Annotated[
        bool, typer.Option("--remove", help="不再为该事项声明字段 / drop the item's field list")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """声明事项所需字段（新版本）/ declare which fields a service item needs of a type (a new
    version); the item joins service_items if it is not there yet."""
    if not remove and not fields:
        die("请给出 --field 或 --remove / give --field (one or more) or --remove")
    declared = open_services(data_dir).catalogue_desk.declare_service_item(
        code=code, item=item, fields=None if remove else list(fields or []), actor=OPERATOR
    )
    entry = declared.entry
    typer.echo(
        json.dumps(
            {
                "code": entry.code,
                "version": entry.version,
                "service_item_fields": declared.service_item_fields,
            },
            ensure_ascii=False,
        )
    )
