"""What the alert tests share: a clock set to China wall-clock times, a demo domain on SQLite or
PostgreSQL (a schema of its own) with low thresholds, forged codes, supervision offices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from fastapi.testclient import TestClient
from sqlmodel import col, select

from core.clock import CHINA
from core.db import reading, transaction
from licences.payload import decode, key_id, sign
from seals.clients import create_client
from supervision.alert_records import Alert
from tests.conftest import fresh_schema
from tests.domain import Domain, build_domain, make_settings

# Wednesday 2 December 2026, 10:00 in China: inside working hours.
START = datetime(2026, 12, 2, 10, 0, tzinfo=CHINA).astimezone(UTC)
THRESHOLDS: dict[str, Any] = {
    "alert_licence_failures": 6,
    "alert_source_failures": 4,
    "alert_failure_window_minutes": 10,
    "alert_burst_factor": 2.0,
    "alert_burst_floor": 3,
    "alert_seal_race_minutes": 30,
    # the service's own working hours (the other test domains have none off: tests/domain.py)
    "alert_work_start_hour": 9,
    "alert_work_end_hour": 18,
    "alert_work_weekends": False,
    "audit_checkpoint_every": 100_000,  # no checkpoint inside a counted statement run
}
FUJIAN = ("113500000000000001", "福建省电子监察室", "350000", "provincial")
GUANGDONG = ("114400000000000001", "广东省电子监察室", "440000", "provincial")


class WallClock:
    """A clock the test moves, forward only, to a moment given in China time."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def china(self, year: int, month: int, day: int, hour: int, minute: int) -> None:
        at = datetime(year, month, day, hour, minute, tzinfo=CHINA).astimezone(UTC)
        assert at >= self._at, "the clock moves forward only"
        self._at = at


def alert_domain(
    request: pytest.FixtureRequest, factory: pytest.TempPathFactory, name: str, clock: WallClock
) -> Domain:
    """The demo domain on SQLite, or on PostgreSQL in schema ``t_<name>``."""
    if request.param == "sqlite":
        settings = make_settings(factory.mktemp(name) / "data", **THRESHOLDS)
        return build_domain(settings, clock=clock)
    url: str = request.getfixturevalue("postgres_url")
    schema = f"t_{name.replace('-', '_')}"
    url = fresh_schema(url, schema)
    settings = make_settings(factory.mktemp(name + "-pg") / "data", database_url=url, **THRESHOLDS)
    return build_domain(settings, clock=clock)


def forged(domain: Domain, issued: dict[str, Any]) -> str:
    """The licence's own claims, signed by a key of no trust domain (under that key's id)."""
    signed = decode(issued["links"]["verify"].rsplit("/", 1)[1])
    key = ec.generate_private_key(ec.SECP256R1())
    return sign(
        signed.claims,
        key_id(key.public_key()),
        lambda digest: key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))),
    )


def from_address(domain: Domain, address: str) -> TestClient:
    """A client of the same application seen from ``address``."""
    return TestClient(domain.client.app, client=(address, 40000))


def alerts(domain: Domain, rule: str | None = None, subject: str | None = None) -> list[Alert]:
    with reading(domain.services.engine) as session:
        query = select(Alert)
        if rule is not None:
            query = query.where(Alert.rule == rule)
        if subject is not None:
            query = query.where(Alert.subject == subject)
        return list(session.exec(query.order_by(col(Alert.raised_at), col(Alert.id))).all())


def office(domain: Domain, spec: tuple[str, str, str, str]) -> dict[str, str]:
    """A supervision office (a department of its own division) and its ``supervise`` client."""
    code, name, division, level = spec
    services = domain.services
    if not any(d.code == code for d in services.seal_desk.departments()):
        services.seal_desk.add_department(
            actor="operator", code=code, name=name, division_code=division, level=level
        )
    with transaction(services.engine) as session:
        _, key = create_client(
            session, services.audit, services.clock, department_code=code, name="监察",
            actor="operator", scopes=("supervise",),
        )  # fmt: skip
    return {"code": code, "Authorization": f"Bearer {key}"}
