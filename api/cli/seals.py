"""``elicence seals``: withdraw a seal (revoke, or suspend with certificateHold) and resume it."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from api.cli.context import OPERATOR, DataDir, open_services
from trust.crl import SEAL_REASONS as REASONS

seals_app = typer.Typer(help="电子印章 / seals", no_args_is_help=True)


def _echo(seal: object) -> None:
    typer.echo(
        json.dumps(
            {"seal": seal.code, "status": seal.status},  # type: ignore[attr-defined]
            ensure_ascii=False,
        )
    )


@seals_app.command("revoke")
def revoke(
    seal_code: Annotated[str, typer.Argument(help="印章编码 / seal code")],
    reason: Annotated[
        str, typer.Option("--reason", help="RFC 5280 reason: " + "|".join(REASONS))
    ] = "unspecified",
    data_dir: DataDir = None,
) -> None:
    """吊销印章证书（certificateHold 为暂停） / revoke the seal's certificates (certificateHold
    suspends them). Licences sealed before now, as timestamped, stay valid."""
    from core.db import transaction
    from seals.revocation import revoke_seal

    if reason not in REASONS:
        raise typer.BadParameter(f"--reason must be one of {', '.join(REASONS)}")
    services = open_services(data_dir)
    with transaction(services.engine) as session:
        seal = revoke_seal(
            session,
            trust=services.trust,
            audit=services.audit,
            seal_code=seal_code,
            reason=reason,
            actor=OPERATOR,
        )
    _echo(seal)


@seals_app.command("resume")
def resume(
    seal_code: Annotated[str, typer.Argument(help="印章编码 / seal code")],
    data_dir: DataDir = None,
) -> None:
    """解除暂停 / lift a suspension (certificateHold)."""
    from core.db import transaction
    from seals.revocation import resume_seal

    services = open_services(data_dir)
    with transaction(services.engine) as session:
        seal = resume_seal(
            session, trust=services.trust, audit=services.audit, seal_code=seal_code, actor=OPERATOR
        )
    _echo(seal)
