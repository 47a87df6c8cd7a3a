"""``elicence worker``: the process that delivers signed events (and runs periodic tasks).

It is a process of its own, beside ``elicence serve``: a slow or hostile receiver holds up only
this process, never issuance. ``--once`` runs the periodic tasks once, fans out what is new, sends every due delivery (waiting
for the lease of one a stopped worker held), prints the counts and exits; without it the loop
runs until SIGTERM or SIGINT, finishing the delivery in hand. On PostgreSQL several workers may
run at once (deliveries are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease); on SQLite run
one worker per database.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.context import DataDir, die, open_services

if TYPE_CHECKING:
    from api.container import Services


def periodic_tasks(services: Services) -> list[Callable[[], object]]:
    """The tasks the worker calls besides delivery, at start and every five minutes: the daily
    expiry scan (``services.expiry``, audited as ``system:expiry``), which writes each day's
    events once however often it runs. Add further periodic tasks here."""
    return [
        lambda: services.expiry.scan(services.clock.now()),
        lambda: services.objection_watch.scan(services.clock.now()),  # objection_overdue
    ]


def worker_command(
    data_dir: DataDir = None,
    once: Annotated[
        bool, typer.Option("--once", help="送完到期的事件后退出 / deliver what is due, then exit")
    ] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", help="空闲时的轮询间隔（秒）/ seconds between idle polls"),
    ] = 1.0,
) -> None:
    """投递签名事件 / deliver signed events to subscribed endpoints."""
    from api.container.events import delivery_worker_for

    if interval <= 0:
        die("--interval 须大于0 / --interval must be greater than 0")
    services = open_services(data_dir)
    delivery = delivery_worker_for(services)
    try:
        if once:
            for task in periodic_tasks(services):
                task()
            tally = delivery.drain(wait_for_leases=True)
            typer.echo(
                f"fanned out {tally.fanned}, delivered {tally.delivered}, failed {tally.failed}, "
                f"dead {tally.dead}, disabled {tally.disabled}"
            )
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        typer.echo(f"elicence worker {delivery.worker_id}: delivering events", err=True)
        delivery.run(interval=interval, stop=stop, periodic=periodic_tasks(services))
    finally:
        delivery.close()
        services.close()
