"""Readiness: can this process serve now? ``/readyz`` reports each dependency by name.

A probe is a callable that returns when its dependency answers and raises when it does not;
the database probe runs ``SELECT 1`` on a fresh connection. The container names the probes
(``database``, ``keystore``), so the edge only reports what they say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.db import reading

Probe = Callable[[], object]


def database_probe(engine: Engine) -> Probe:
    """A probe that reaches the database through the same sessions the service uses."""

    def probe() -> None:
        with reading(engine) as session:
            session.connection().execute(text("SELECT 1"))

    return probe


class Readiness:
    """Runs every probe and reports each as ``ok`` or ``unavailable``."""

    def __init__(self, probes: Mapping[str, Probe]) -> None:
        self._probes = dict(probes)

    def checks(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        for name, probe in self._probes.items():
            try:
                probe()
                checks[name] = "ok"
            except Exception:  # any failure means not ready; the probe's error is not shown
                checks[name] = "unavailable"
        return checks
