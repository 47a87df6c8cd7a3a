"""The verification and holder pages in headless Chromium, against a real uvicorn server.

Debian's chromium is driven by Playwright's Python package (never ``playwright install``). The
server runs in this process on a free loopback port with a controlled clock, so a presentation
code can be made to expire without waiting. Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.clock import FixedClock
from tests.conftest import make_settings
from tests.domain import Domain, build_domain
from tests.holder_login import ServerThread, free_port
from tests.tools import require, require_module

pytestmark = pytest.mark.browser  # Chromium through Playwright

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}
TTL = 300


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, clock: FixedClock
) -> Iterator[tuple[str, Domain]]:
    require("chromium")  # first: in strict mode a missing browser fails, not skips
    from api.app import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(
        tmp_path_factory.mktemp("browser") / "data", presentation_ttl_seconds=TTL
    )
    settings.public_base_url = base  # printed in the QR codes: this server
    domain = build_domain(settings, clock=clock)
    with ServerThread(create_app(services=domain.services), port):
        yield base, domain


def _fontconfig(directory: Path) -> dict[str, str]:
    """Let Chromium find the service's own Noto Sans SC (a test machine may have no CJK font;
    phones do), so screenshots show Chinese instead of empty boxes."""
    import os

    from core.fonts import BOLD, REGULAR, cjk_font_path

    fonts = {cjk_font_path(REGULAR, None).parent, cjk_font_path(BOLD, None).parent}
    conf = directory / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        '<include ignore_missing="yes">/etc/fonts/fonts.conf</include>'
        + "".join(f"<dir>{d}</dir>" for d in sorted(fonts))
        + f"<cachedir>{directory / 'cache'}</cachedir></fontconfig>"
    )
    return {**os.environ, "FONTCONFIG_FILE": str(conf)}


@pytest.fixture(scope="module")
def browser(server: tuple[str, Domain], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    sync_api = require_module("playwright.sync_api")  # a dev dependency: the rule of a tool

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=require("chromium"),
            args=CHROMIUM_ARGS,
            headless=True,
            env=_fontconfig(tmp_path_factory.mktemp("fontconfig")),
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(**PHONE, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    yield page
    context.close()
    assert problems == [], f"browser console errors (CSP?): {problems}"


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def status(page: Any) -> tuple[str, str]:
    box = page.locator("#status")
    return box.get_attribute("data-indication"), box.inner_text()


def test_printed_qr_opens_a_passed_page(server: tuple[str, Domain], page: Any) -> None:
    _, domain = server
    issued = domain.issue(1)  # a person's licence
    page.goto(issued["links"]["verify"])  # upper-case scheme and host, as printed
    indication, text = status(page)
    assert indication == "PASSED"
    assert "有效" in text and "Valid" in text and "核验时间" in text
    assert page.locator("#licence").is_visible() and page.locator("#seal").is_visible()
    holder = domain.department(1)["sample_request"]["holder"]
    body = page.inner_text("body")
    assert holder["name"] not in body and holder["id"] not in body
    # Mobile first: nothing wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "verify-passed")


def test_tampered_qr_is_a_failed_page(server: tuple[str, Domain], page: Any) -> None:
    _, domain = server
    url = domain.issue()["links"]["verify"]
    code = url.rsplit("/", 1)[1]
    position = len(code) // 2
    tampered = code[:position] + ("A" if code[position] != "A" else "B") + code[position + 1 :]
    page.goto(url.rsplit("/", 1)[0] + "/" + tampered)
    indication, text = status(page)
    assert indication == "FAILED"
    assert "无效" in text and "Not valid" in text
    assert page.locator("#licence").count() == 0
    shot(page, "verify-failed")


def test_usb_scanner_types_the_url_and_enter(server: tuple[str, Domain], page: Any) -> None:
    base, domain = server
    url = domain.issue()["links"]["verify"]
    page.goto(f"{base}/verify")
    # Ready for the scanner: Chromium runs `autofocus` at its next rendering step, which on a
    # loaded machine can come after the load event, so wait for it rather than read it at once.
    page.wait_for_function("document.activeElement && document.activeElement.id === 'qr'")
    assert page.evaluate("document.activeElement.id") == "qr"
    page.keyboard.type(url, delay=0)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert status(page)[0] == "PASSED"
    shot(page, "verify-scanner")


def test_upload_page_verifies_a_pdf(server: tuple[str, Domain], page: Any, tmp_path: Path) -> None:
    base, domain = server
    issued = domain.issue()
    pdf = tmp_path / "licence.pdf"
    pdf.write_bytes(domain.pdf(issued))
    page.goto(f"{base}/verify")
    page.set_input_files("#file", str(pdf))
    with page.expect_navigation():
        page.click("#submit")
    assert status(page)[0] == "PASSED"
    assert issued["identifier"] in page.inner_text("#licence")


def _decode_qr(path: Path) -> str:
    import zxingcpp
    from PIL import Image

    [symbol] = [
        b
        for b in zxingcpp.read_barcodes(Image.open(path))
        if b.format == zxingcpp.BarcodeFormat.QRCode
    ]
    return str(symbol.text)


def test_holder_shows_a_code_the_clerk_scans_then_it_expires(
    server: tuple[str, Domain], browser: Any, page: Any, clock: FixedClock
) -> None:
    base, domain = server
    issued = domain.issue(1)
    link = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/holder-links", headers=domain.auth(1)
    ).json()["url"]
    holder_url = base + "/h/" + link.split("/h/", 1)[1]

    page.clock.install()
    page.goto(holder_url)
    qr = page.locator("#qr")
    assert qr.is_visible()
    assert page.inner_text("#remaining") == "5:00"
    page.clock.run_for(3000)
    assert page.inner_text("#remaining") == "4:57"  # the script runs under the strict CSP
    held = shot(page, "holder-page")
    presented = _decode_qr(ARTIFACTS / "holder-page.png")
    assert presented.startswith(base.upper() + "/V/")
    assert held.exists()

    # Halfway through its life the page fetches a fresh code by itself.
    first_src = qr.get_attribute("src")
    page.clock.run_for((TTL // 2) * 1000)
    page.wait_for_function("s => document.getElementById('qr').src !== s", arg=first_src)
    assert page.inner_text("#remaining") in ("5:00", "4:59")

    # The clerk scans it with a phone: PASSED, with presented-at and expires-at.
    clerk = browser.new_context(**PHONE).new_page()
    clerk.goto(presented)
    assert clerk.locator("#status").get_attribute("data-indication") == "PASSED"
    assert clerk.locator("#presentation").is_visible()
    assert "出示时间" in clerk.inner_text("#presentation")
    shot(clerk, "verify-presentation-passed")

    # The same code shown again after it expired (a screenshot): FAILED.
    clock.advance(timedelta(seconds=TTL + 1))
    clerk.goto(presented)
    indication = clerk.locator("#status").get_attribute("data-indication")
    reason = clerk.inner_text("#reason")
    shot(clerk, "verify-presentation-expired")
    clerk.context.close()
    assert indication == "FAILED"
    assert "出示码已过期" in reason

    # The holder sees who verified it, and how.
    page.goto(holder_url)
    history = page.inner_text("#history")
    assert "出示码已过期" in history and "无效" in history
    shot(page, "holder-history")
