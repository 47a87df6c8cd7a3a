"""The supervisor's dashboard in headless Chromium (Debian's chromium through Playwright, never
``playwright install``): a supervisor signs in through the form, the server-drawn SVG charts are
visible, the page fits a 360-px wide screen without sideways scrolling, the CSP lets nothing
break (no console errors), and a screenshot is kept in ``tests/artifacts/``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from core.clock import FixedClock
from core.db import transaction
from supervision.alert_records import Severity, raise_alert
from tests.conftest import make_settings
from tests.domain import Domain, build_domain
from tests.holder_login import ServerThread, free_port
from tests.test_browser import CHROMIUM_ARGS, _fontconfig, shot
from tests.tools import require, require_module

pytestmark = pytest.mark.browser

START = datetime(2026, 2, 20, 2, 0, tzinfo=UTC)
NARROW = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2, "is_mobile": True}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Domain]]:
    require("chromium")  # first: a missing browser fails, never skips
    from api.app import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path_factory.mktemp("supbrowser") / "data")
    settings.public_base_url = base
    domain = build_domain(settings, clock=FixedClock(START))
    with ServerThread(create_app(services=domain.services), port):
        yield base, domain


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    sync_api = require_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=require("chromium"),
            args=CHROMIUM_ARGS,
            headless=True,
            env=_fontconfig(tmp_path_factory.mktemp("fontconfig")),
        )
        yield launched
        launched.close()


def test_the_dashboard_charts_show_and_fit_a_narrow_phone(
    server: tuple[str, Domain], browser: Any
) -> None:
    base, domain = server
    domain.issue(0)
    services = domain.services
    with transaction(services.engine) as session:
        alert = raise_alert(
            session,
            services.audit,
            rule="verify_not_valid",
            severity=Severity.WARNING,
            subject="browser-check",
            summary="核验了已吊销的证照 / a revoked licence was verified",
            at=services.clock.now(),
            department_code=domain.department(0)["code"],
        )
    office = domain.credentials["supervision_offices"][0]
    context = browser.new_context(**NARROW, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(f"{base}/supervise")
        assert page.url.endswith("/supervise/sign-in")  # not signed in yet
        page.fill("#client_id", office["client_id"])
        page.fill("#api_key", office["api_key"])
        page.click("#sign-in")
        page.wait_for_url(f"{base}/supervise")
        charts = page.locator("svg.bar-chart")
        assert charts.count() == 8  # four measures by month, four by department
        for index in range(charts.count()):
            chart = charts.nth(index)
            assert chart.is_visible()
            box = chart.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 80
        assert page.locator("#month-issued").inner_text() != ""
        assert page.locator(f"#alert-{alert}").is_visible()
        # No sideways scrolling on a 360-px screen; wide tables scroll inside their own box.
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        shot(page, "supervise-dashboard")
    finally:
        context.close()
    assert problems == [], f"browser console errors (CSP?): {problems}"
