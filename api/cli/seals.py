"""``elicence seals``: the operator's seal commands — create, list, show, suspend, resume,
revoke, renew, authorise (or withdraw an authorisation) and image.

The operator acts for the domain; every change is audited like the API's, in the one
transaction ``seals.desk.SealDesk`` opens for it. Each command prints JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.context import OPERATOR, DataDir, open_services
from trust.crl import SEAL_REASONS as REASONS

if TYPE_CHECKING:
    from seals.views import SealView

seals_app = typer.Typer(help="电子印章 / seals", no_args_is_help=True)
SealCode = Annotated[str, typer.Argument(help="印章编码 / seal code")]


def _print(value: dict[str, Any]) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


def _echo(seal: SealView) -> None:
    typer.echo(json.dumps({"seal": seal.code, "status": seal.status}, ensure_ascii=False))


def _seal_json(seal: SealView) -> dict[str, Any]:
    return {
        "seal": seal.code,
        "name": seal.name,
        "department": seal.department,
        "seal_type": seal.seal_type,
        "seal_type_label": seal.seal_type_label,
        "status": seal.status,
        "status_label": seal.status_label,
        "valid_from": seal.valid_from,
        "valid_until": seal.valid_until,
        "width_mm": seal.width_mm,
        "certificate_serial": seal.certificate_serial,
        "key_ref": seal.key_ref,
        "licence_types": list(seal.licence_types),
    }


@seals_app.command("revoke")
def revoke(
    seal_code: SealCode,
    reason: Annotated[
        str, typer.Option("--reason", help="RFC 5280 reason: " + "|".join(REASONS))
    ] = "unspecified",
    data_dir: DataDir = None,
) -> None:
    """吊销印章证书（certificateHold 为暂停） / revoke the seal's certificates (certificateHold
    suspends them). Licences sealed before now, as timestamped, stay valid."""
    if reason not in REASONS:
        raise typer.BadParameter(f"--reason must be one of {', '.join(REASONS)}")
    desk = open_services(data_dir).seal_desk
    _echo(desk.withdraw_certificates(seal_code, reason, actor=OPERATOR))


@seals_app.command("resume")
def resume(seal_code: SealCode, data_dir: DataDir = None) -> None:
    """解除暂停 / lift a suspension (certificateHold)."""
    _echo(open_services(data_dir).seal_desk.resume(seal_code, actor=OPERATOR))


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
    from seals.models import SealType

    try:
        kind = SealType(seal_type)
    except ValueError:
        raise typer.BadParameter("--type must be 01, 02 or 03") from None
    seal = open_services(data_dir).seal_desk.create(
        actor=OPERATOR,
        department_code=department,
        seal_type=kind,
        name=name,
        width_mm=width_mm,
        licence_types=licence_type or [],
    )
    _print(_seal_json(seal))


@seals_app.command("list")
def list_seals(
    department: Annotated[str | None, typer.Option("--department")] = None,
    data_dir: DataDir = None,
) -> None:
    """列出印章 / list seals, one JSON object a line."""
    for seal in open_services(data_dir).seal_desk.seals(department):
        _print(_seal_json(seal))


@seals_app.command("show")
def show(seal_code: SealCode, data_dir: DataDir = None) -> None:
    """查看印章 / show a seal."""
    _print(_seal_json(open_services(data_dir).seal_desk.seal(seal_code)))


@seals_app.command("suspend")
def suspend(seal_code: SealCode, data_dir: DataDir = None) -> None:
    """暂停印章 / suspend: hold its certificates (certificateHold); `seals resume` lifts it."""
    from seals.revocation import HOLD

    desk = open_services(data_dir).seal_desk
    _echo(desk.withdraw_certificates(seal_code, HOLD, actor=OPERATOR))


@seals_app.command("renew")
def renew(seal_code: SealCode, data_dir: DataDir = None) -> None:
    """延续印章 / renew: new key version and certificate; the old one stays for verification."""
    _print(_seal_json(open_services(data_dir).seal_desk.renew(seal_code, actor=OPERATOR)))


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
    desk = open_services(data_dir).seal_desk
    if withdraw_it:
        seal = desk.deauthorise(seal_code, licence_type, actor=OPERATOR)
    else:
        seal = desk.authorise(seal_code, licence_type, actor=OPERATOR)
    _print(_seal_json(seal))


@seals_app.command("image")
def image(
    seal_code: SealCode,
    png: Annotated[Path, typer.Argument(help="PNG 文件 / PNG file", exists=True, dir_okay=False)],
    data_dir: DataDir = None,
) -> None:
    """上传印章图像 / replace the seal image with a checked PNG."""
    desk = open_services(data_dir).seal_desk
    seal = desk.replace_image(seal_code, png.read_bytes(), actor=OPERATOR)
    _print({"seal": seal.code, "image_bytes": len(seal.image_png)})
