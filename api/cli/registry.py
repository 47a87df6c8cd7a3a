"""``elicence departments add|list`` and the seals registry commands of ``elicence seals``:
create, list, show, suspend, renew, authorise, deauthorise, image (revoke and resume are in
``api.cli.seals``). The operator acts for the domain; every change is audited like the API's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.context import OPERATOR, DataDir, open_services
from api.cli.seals import seals_app

departments_app = typer.Typer(help="部门 / departments", no_args_is_help=True)
SealCode = Annotated[str, typer.Argument(help="印章编码 / seal code")]


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


def _seal_json(session: Any, seal: Any) -> dict[str, Any]:
    from seals.authorisation import authorised_types
    from seals.models import SealStatus, SealType

    return {
        "seal": seal.code,
        "name": seal.name,
        "department": seal.department_code,
        "seal_type": seal.seal_type,
        "seal_type_label": SealType(seal.seal_type).label,
        "status": seal.status,
        "status_label": SealStatus(seal.status).label,
        "valid_from": seal.valid_from,
        "valid_until": seal.valid_until,
        "width_mm": seal.width_mm,
        "certificate_serial": seal.certificate_serial,
        "key_ref": seal.key_ref,
        "licence_types": authorised_types(session, seal.code),
    }


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
    from core.db import transaction

    services = open_services(data_dir)
    with transaction(services.engine) as session:
        department = services.seals.add_department(
            session,
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
    from core.db import reading

    services = open_services(data_dir)
    with reading(services.engine) as session:
        for d in services.seals.departments(session):
            _print(
                {
                    "code": d.code,
                    "name": d.name,
                    "division_code": d.division_code,
                    "level": d.level,
                    "parent_code": d.parent_code,
                }
            )


@seals_app.command("create")
def create(
    department: Annotated[str, typer.Option("--department", help="部门代码 / department")],
    seal_type: Annotated[str, typer.Option("--type", help="01 公章|02 证照专用章|03 业务专用章")],
    licence_type: Annotated[
        list[str] | None, typer.Option("--licence-type", help="授权证照类型 / authorise for")
    ] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    width_mm: Annotated[float, typer.Option("--width-mm")] = 42.0,
    data_dir: DataDir = None,
) -> None:
    """制作印章 / create a seal: key, certificate, drawn image, authorisations."""
    from core.db import transaction
    from seals.models import SealType

    try:
        kind = SealType(seal_type)
    except ValueError:
        raise typer.BadParameter("--type must be 01, 02 or 03") from None
    services = open_services(data_dir)
    with transaction(services.engine) as session:
        for code in licence_type or []:
            services.catalogue.check_issuer(services.catalogue.get(session, code), department)
        seal = services.seals.create_seal(
            session,
            actor=OPERATOR,
            department_code=department,
            seal_type=kind,
            name=name,
            width_mm=width_mm,
            licence_types=licence_type or [],
        )
        session.flush()
        _print(_seal_json(session, seal))


@seals_app.command("list")
def list_seals(
    department: Annotated[str | None, typer.Option("--department")] = None,
    data_dir: DataDir = None,
) -> None:
    """列出印章 / list seals, one JSON object a line."""
    from core.db import reading

    services = open_services(data_dir)
    with reading(services.engine) as session:
        for seal in services.seals.seals(session, department):
            _print(_seal_json(session, seal))


@seals_app.command("show")
def show(seal_code: SealCode, data_dir: DataDir = None) -> None:
    """查看印章 / show a seal."""
    from core.db import reading

    services = open_services(data_dir)
    with reading(services.engine) as session:
        _print(_seal_json(session, services.seals.seal(session, seal_code)))


@seals_app.command("suspend")
def suspend(seal_code: SealCode, data_dir: DataDir = None) -> None:
    """暂停印章 / suspend: hold its certificates (certificateHold); `seals resume` lifts it."""
    from core.db import transaction
    from seals.revocation import HOLD, revoke_seal

    services = open_services(data_dir)
    with transaction(services.engine) as session:
        seal = revoke_seal(
            session,
            trust=services.trust,
            audit=services.audit,
            seal_code=seal_code,
            reason=HOLD,
            actor=OPERATOR,
        )
        _print({"seal": seal.code, "status": seal.status})


@seals_app.command("renew")
def renew(seal_code: SealCode, data_dir: DataDir = None) -> None:
    """延续印章 / renew: new key version and certificate; the old one stays for verification."""
    from core.db import transaction

    services = open_services(data_dir)
    with transaction(services.engine) as session:
        seal = services.seals.renew_seal(session, actor=OPERATOR, seal_code=seal_code)
        _print(_seal_json(session, seal))


@seals_app.command("authorise")
def authorise_type(
    seal_code: SealCode,
    licence_type: Annotated[str, typer.Argument(help="证照类型代码 / licence type code")],
    withdraw_it: Annotated[
        bool, typer.Option("--withdraw", help="撤销授权 / withdraw the authorisation")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """授权印章加盖某类证照 / authorise the seal for a licence type (--withdraw to stop)."""
    from core.db import transaction
    from seals.authorisation import authorise, withdraw

    services = open_services(data_dir)
    with transaction(services.engine) as session:
        seal = services.seals.seal(session, seal_code)
        if withdraw_it:
            withdraw(session, services.audit, seal=seal, licence_type=licence_type, actor=OPERATOR)
        else:
            entry = services.catalogue.get(session, licence_type)
            services.catalogue.check_issuer(entry, seal.department_code)
            authorise(session, services.audit, seal=seal, licence_type=licence_type, actor=OPERATOR)
        session.flush()
        _print(_seal_json(session, seal))


@seals_app.command("image")
def image(
    seal_code: SealCode,
    png: Annotated[Path, typer.Argument(help="PNG 文件 / PNG file", exists=True, dir_okay=False)],
    data_dir: DataDir = None,
) -> None:
    """上传印章图像 / replace the seal image with a checked PNG."""
    from core.db import transaction

    services = open_services(data_dir)
    with transaction(services.engine) as session:
        seal = services.seals.set_image(
            session, actor=OPERATOR, seal_code=seal_code, png=png.read_bytes()
        )
        _print({"seal": seal.code, "image_bytes": len(seal.image_png)})
