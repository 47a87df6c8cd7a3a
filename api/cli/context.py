"""What every ``elicence`` command shares: where the data is, how to open it, how to fail.

Each command module imports from here and from nothing else in ``api.cli``, so the command
modules never import each other (the entry point, ``api.cli.main``, imports them all). A command
fails through :func:`die`: one line on standard error, ``elicence: `` first, and a non-zero exit.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from api.settings import Settings

if TYPE_CHECKING:
    from api.container import Services

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="数据目录 / data directory (ELICENCE_DATA_DIR, else ./var)"),
]
OPERATOR = "operator:cli"  # the audit actor of every command run by the operator


def settings_for(data_dir: Path | None) -> Settings:
    """Settings from the environment, with ``--data-dir`` taking precedence."""
    settings = Settings()
    if data_dir is not None:
        settings.data_dir = data_dir
    return settings


def open_services(data_dir: Path | None, *, initialised: bool = True) -> Services:
    """The service graph over the data directory; refuses one ``elicence init`` has not made."""
    from api.container import build_services

    services = build_services(settings_for(data_dir))
    if initialised:
        try:
            ready = services.setup.is_initialised()
        except Exception:
            ready = False
        if not ready:
            die(
                f"数据目录未初始化，请先运行 elicence init / {services.settings.data_dir} "
                "is not initialised; run `elicence init`"
            )
    return services


def die(message: str, code: int = 1) -> NoReturn:
    """One line on standard error and a non-zero exit: the CLI's only way to refuse."""
    typer.echo(f"elicence: {message}", err=True)
    raise typer.Exit(code)


def option_date(value: str | None, option: str) -> date | None:
    """A date option given as YYYY-MM-DD, or None when the option was left out."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        die(f"{option} 须为 YYYY-MM-DD / {option} must be YYYY-MM-DD")
