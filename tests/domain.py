"""A demo trust domain on disk for each test module, copied from one built once per session.

Building a demo domain (``elicence init --demo``: keys, CAs, seals, four sealed licences) costs
seconds; copying its data directory costs milliseconds. So ``build_domain`` builds a *template*
once per run for each distinct set of settings that shape what ``init`` writes (public URL,
domain name, checkpoint interval, passphrase; see ``RUNTIME_SETTINGS`` for those that do not)
and each module gets a copy of its own: its own database file, keys and credentials, which its
tests change freely. The copy is then opened with ``build_services`` and ``initialise`` exactly
as a module's own domain was (``init`` finds the demo data and changes nothing), with the
module's settings and clock. PostgreSQL and non-soft key stores are built directly.

The template of the present is built at a pinned instant, a minute before the run began, so
before every module's clock (FixedClock at "now", or the system clock): as if ``init`` had run
minutes earlier. A clock
pinned far from the present (a start date of its own) gets a template built at exactly that
instant. A module whose clock is before the template's, or on another calendar day in China,
builds its own domain, so dates such as "issued today" mean what they always meant.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Services, build_services
from api.ops.bootstrap import initialise
from api.settings import Settings
from core.clock import Clock, FixedClock, china_today


@dataclass
class Domain:
    settings: Settings
    services: Services
    client: TestClient
    credentials: dict[str, Any]

    def department(self, index: int = 0) -> dict[str, Any]:
        return self.credentials["departments"][index]  # type: ignore[no-any-return]

    def auth(self, index: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.department(index)['api_key']}"}

    def issue(self, index: int = 0, **overrides: Any) -> dict[str, Any]:
        body = dict(self.department(index)["sample_request"])
        body.update(overrides)
        response = self.client.post("/api/v1/licences", json=body, headers=self.auth(index))
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def pdf(self, issued: dict[str, Any], index: int = 0) -> bytes:
        response = self.client.get(
            f"/api/v1/licences/{issued['identifier']}/pdf", headers=self.auth(index)
        )
        assert response.status_code == 200, response.text
        content: bytes = response.content
        return content

    def verify_pdf(self, data: bytes) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/verify", files={"file": ("licence.pdf", data, "application/pdf")}
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


# Every hour of every day is a working hour for the test domains, so what the suite writes (the
# off-hours alert's audit entry and event) does not depend on the hour it runs at; the tests of
# that rule set the working hours they test.
ALWAYS_WORKING: dict[str, Any] = {
    "alert_work_start_hour": 0,
    "alert_work_end_hour": 24,
    "alert_work_weekends": True,
}


def make_settings(data_dir: Path, database_url: str | None = None, **extra: Any) -> Settings:
    """Test settings: a private data directory, a passphrase of its own name, the public URL
    the tests expect, a public rate limit no test reaches unless it sets one, and no
    off-hours (``ALWAYS_WORKING``)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        key_passphrase="test-passphrase-" + data_dir.name,  # type: ignore[arg-type]
        public_base_url="https://licence.example.gov.cn",
        **{"public_rate_limit": "100000/minute", **ALWAYS_WORKING, **extra},
    )


def demo_domain(
    factory: pytest.TempPathFactory, name: str, clock: Clock | None = None, **settings: Any
) -> Domain:
    """A module's demo domain in a fresh ``<name>N/data`` directory: ``settings`` are extra
    ``Settings`` fields (e.g. ``presentation_ttl_seconds=60``), ``clock`` the domain's clock."""
    return build_domain(make_settings(factory.mktemp(name) / "data", **settings), clock=clock)


def build_domain(settings: Settings, clock: Clock | None = None) -> Domain:
    """A demo domain in ``settings.data_dir`` (empty): a copy of the session's template where
    one fits, else built there."""
    template = _template_for(settings, clock)
    if template is not None:
        shutil.copytree(template, settings.data_dir, dirs_exist_ok=True)
    services = build_services(settings, clock=clock)
    initialise(services, with_demo=True)  # on a copy: finds the demo data, changes nothing
    credentials = json.loads((Path(settings.data_dir) / "demo-credentials.json").read_text())
    client = TestClient(create_app(services=services))
    return Domain(settings, services, client, credentials)


# Settings read only while serving (limits, lifetimes, sign-in, CORS, worker pools): two domains
# that differ only in these have identical data directories after ``init --demo``.
RUNTIME_SETTINGS = frozenset(
    {
        "public_rate_limit",
        "client_rate_limit",
        "tsa_rate_limit",
        "ocsp_rate_limit",
        "statistics_rate_limit",
        "cors_origins",
        "max_upload_bytes",
        "max_json_bytes",
        "max_json_depth",
        "verify_isolation",
        "verify_workers",
        "verify_cpu_seconds",
        "verify_memory_mb",
        "verify_wall_seconds",
        "verify_max_objects",
        "verify_max_pages",
        "verify_max_depth",
        "presentation_ttl_seconds",
        "federation_refresh_seconds",
        "federation_allow_private_addresses",
        "oidc_issuer",
        "oidc_client_id",
        "oidc_client_secret",
        "holder_session_minutes",
        "demo_mode",
        "redis_url",  # the shared state of a fleet (core.shared_state), never read by init
        # event delivery: read by the worker and the subscription desk, never by init
        "events_timeout_seconds",
        "events_max_attempts",
        "events_backoff_base_seconds",
        "events_backoff_cap_seconds",
        "events_lease_seconds",
        "events_allow_http_loopback",
    }
)
# The present's template is built as at a minute before this module was imported (before any
# test module, so before any clock a module pins at "now", even at its import).
_PRESENT = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
_PRESENT_WINDOW = timedelta(hours=1)  # a clock this close to the real time is "now"
_templates: dict[str, Path] = {}


def _template_for(settings: Settings, clock: Clock | None) -> Path | None:
    """The template directory to copy for these settings and clock, built on first use; None
    when the domain must be built in place (PostgreSQL, OpenBao, PKCS#11, an odd clock)."""
    if settings.database_url is not None or settings.keystore != "soft":
        return None
    real = datetime.now(UTC)
    moment = clock.now() if clock is not None else real
    present = abs(moment - real) < _PRESENT_WINDOW
    key = json.dumps(
        {
            "settings": settings.model_dump(
                mode="json", exclude=set(RUNTIME_SETTINGS | {"data_dir"})
            ),
            "passphrase": settings.key_passphrase.get_secret_value()
            if settings.key_passphrase is not None
            else None,
            "at": "present" if present else moment.isoformat(),
        },
        sort_keys=True,
    )
    built_at = _PRESENT if present else moment
    if moment < built_at or china_today(moment) != china_today(built_at):
        return None
    if key not in _templates:
        _templates[key] = _build_template(settings, FixedClock(built_at))
    return _templates[key]


def _build_template(settings: Settings, clock: FixedClock) -> Path:
    """``init --demo`` into a directory of its own, closed so that it can be copied."""
    data_dir = Path(tempfile.mkdtemp(prefix="elicence-template-", dir=_root())) / "data"
    defaults = {name: Settings.model_fields[name].default for name in RUNTIME_SETTINGS}
    services = build_services(
        settings.model_copy(update={**defaults, "data_dir": data_dir}), clock=clock
    )
    initialise(services, with_demo=True)
    services.engine.dispose()  # SQLite: the write-ahead log is checkpointed into the file
    return data_dir


def _root() -> Path | None:
    """Templates live under pytest's base temporary directory when it is configured."""
    return _ROOT[0] if _ROOT else None


_ROOT: list[Path] = []


def use_template_root(path: Path) -> None:
    """Set by the session fixture in conftest: templates go under pytest's temporary directory
    (removed with it) instead of the system's."""
    _ROOT[:] = [path]
