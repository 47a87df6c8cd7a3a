"""``elicence expiry``: the expiry scan run by the operator (the worker runs it on its own).

One run writes the day's expiry events, reminders and overdue notices that are not written yet
and the day's alerts (``supervision.expiry``), and is audited under ``operator:cli``; running it
again the same day writes nothing more. It prints its counts on one line.
"""

from __future__ import annotations

import typer

from api.cli.context import OPERATOR, DataDir, open_services

expiry_app = typer.Typer(help="证照到期 / licence expiry", no_args_is_help=True)


@expiry_app.command("scan")
def scan(data_dir: DataDir = None) -> None:
    """到期扫描：过期、到期提醒、逾期未换证告知与预警 / one expiry scan: expiries, reminders,
    overdue notices and alerts not yet written."""
    services = open_services(data_dir)
    try:
        result = services.expiry.scan(services.clock.now(), actor=OPERATOR)
    finally:
        services.close()
    typer.echo(result.line())
