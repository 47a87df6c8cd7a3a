"""``elicence catalogue``: the operator's view of the licence type catalogue (统一编目).

The operator acts for the trust domain, so the defining-authority check of the API does not
apply here; every change is audited under ``operator:cli`` all the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.context import OPERATOR, DataDir, die, open_services

catalogue_app = typer.Typer(
    help="证照目录 / the licence type catalogue (GB/T 36902)", no_args_is_help=True
)


def _definition(entry: Any) -> dict[str, Any]:
    data: dict[str, Any] = entry.model_dump(mode="json")
    return data


@catalogue_app.command("list")
def list_types(
    data_dir: DataDir = None,
    status: Annotated[str | None, typer.Option(help="active | withdrawn")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """列出证照类型 / list the licence types."""
    from core.db import reading

    services = open_services(data_dir)
    with reading(services.engine) as session:
        entries = services.catalogue.list(session, status=status)
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
    from core.db import reading

    services = open_services(data_dir)
    with reading(services.engine) as session:
        entry = services.catalogue.get(session, code.upper())
        if version is not None and version != entry.version:
            entry = services.catalogue.version(session, entry.code, version)
        versions = [v.version for v in services.catalogue.history(session, entry.code)]
    typer.echo(
        json.dumps({**_definition(entry), "versions": versions}, ensure_ascii=False, indent=2)
    )


def _read(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        die(f"无法读取 JSON 文件 / cannot read {file} as JSON: {exc}")
    if not isinstance(data, dict):
        die("文件应为一个 JSON 对象 / the file must hold one JSON object")
    return data  # type: ignore[no-any-return]


@catalogue_app.command("add")
def add(
    file: Annotated[Path, typer.Option("--file", help="证照类型定义 JSON / the definition")],
    data_dir: DataDir = None,
) -> None:
    """编目新的证照类型 / add a type from a JSON definition (fields as in the API, plus
    authority_code)."""
    from core.db import transaction
    from licences.models import LicenceType

    data = _read(file)
    services = open_services(data_dir)
    known = set(LicenceType.model_fields) - {"version", "status", "updated_at", "withdrawn_at"}
    unknown = sorted(set(data) - known)
    if unknown:
        die(f"未知字段 / unknown fields: {', '.join(unknown)}")
    entry = LicenceType(**{"holder_id_type": "", **data})
    with transaction(services.engine) as session:
        services.catalogue.add(session, actor=OPERATOR, entry=entry)
    typer.echo(json.dumps(_definition(entry), ensure_ascii=False, indent=2))


@catalogue_app.command("update")
def update(
    code: str,
    file: Annotated[Path, typer.Option("--file", help="新的定义 JSON / the new definition")],
    data_dir: DataDir = None,
) -> None:
    """修改证照类型，有变化即为新版本 / change a type; a change is a new version."""
    from core.db import transaction

    changes = {
        k: v for k, v in _read(file).items() if k not in ("code", "authority_code", "version")
    }
    services = open_services(data_dir)
    with transaction(services.engine) as session:
        entry = services.catalogue.update(
            session, actor=OPERATOR, code=code.upper(), changes=changes, department_code=None
        )
    typer.echo(json.dumps(_definition(entry), ensure_ascii=False, indent=2))


@catalogue_app.command("withdraw")
def withdraw(
    code: str,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    data_dir: DataDir = None,
) -> None:
    """停用证照类型（已发证照不受影响）/ withdraw a type; its licences are not affected."""
    from core.db import transaction

    services = open_services(data_dir)
    with transaction(services.engine) as session:
        entry = services.catalogue.withdraw(
            session, actor=OPERATOR, code=code.upper(), reason=reason, department_code=None
        )
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
    from core.db import transaction

    if not remove and not fields:
        die("请给出 --field 或 --remove / give --field (one or more) or --remove")
    services = open_services(data_dir)
    with transaction(services.engine) as session:
        entry = services.catalogue.get(session, code.upper())
        declared = dict(entry.service_item_fields)
        items = list(entry.service_items)
        if remove:
            declared.pop(item, None)
        else:
            declared[item] = list(fields or [])
            items = items if item in items else [*items, item]
        entry = services.catalogue.update(
            session,
            actor=OPERATOR,
            code=entry.code,
            changes={"service_items": items, "service_item_fields": declared},
            department_code=None,
        )
    typer.echo(
        json.dumps(
            {"code": entry.code, "version": entry.version, "service_item_fields": declared},
            ensure_ascii=False,
        )
    )
