"""The self-service verification terminal (自助终端, ``/verify?kiosk=1``) in headless Chromium.

A kiosk has a USB scanner and a screen nobody sits at: the scanner field must hold the focus
whatever a passer-by taps, the verdict must fill the screen, the result must clear itself after
``kiosk_reset_seconds`` (so the next person never sees the last one's licence), and a printout
carries the licence's own verification URL as a QR code drawn by the server, so anyone can check
the paper again. The clock of the page is Playwright's (``page.clock``), never a sleep.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from pydantic import ValidationError

from api.settings import Settings
from tests.holder_login import HolderSite
from tests.test_phone_pages import (  # noqa: F401
    browser,
    close,
    issued_licence,
    licence_url,
    new_page,
    site,
)

pytestmark = pytest.mark.browser

RESET = 5  # the site's kiosk_reset_seconds (tests/test_phone_pages.py's fixture)
CHEN_NAME, CHEN_ID = "陈建华", "350102198503120034"


def scan(page: Any, text: str) -> None:
    """What a USB scanner does: type the code into the focused field, then Enter."""
    page.wait_for_function("document.activeElement && document.activeElement.id === 'qr'")
    page.keyboard.type(text, delay=0)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def decode_qr(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    [symbol] = [
        b
        for b in zxingcpp.read_barcodes(Image.open(BytesIO(png)))
        if b.format == zxingcpp.BarcodeFormat.QRCode
    ]
    return str(symbol.text)


def printed_qr(page: Any) -> str:
    page.emulate_media(media="print")
    try:
        assert page.locator("#print-qr").is_visible()
        assert not page.locator("#verify-form").is_visible()  # the form is not printed
        assert not page.locator("#print").is_visible()
        return decode_qr(page.locator("#print-qr img").screenshot(scale="device"))
    finally:
        page.emulate_media(media="screen")


def test_a_hostile_scan_cannot_put_another_host_in_the_printed_qr(
    site: HolderSite,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    """A code wrapped in someone else's URL: the printout sends people to this service only."""
    _, url = licence_url(site)
    code = url.rsplit("/", 1)[1]
    page = new_page(browser, "1280x800")
    try:
        page.goto(f"{site.base_url}/verify?kiosk=1")
        scan(page, f"https://evil.example/V/{code}")
        # The code itself is genuine (any URL ending in /V/<code> is read as its code) ...
        assert page.locator("#status").get_attribute("data-indication") == "PASSED"
        assert printed_qr(page) == url  # ... and the paper names this service, as the licence does
        assert "evil.example" not in page.inner_html("body")
    finally:
        close(page)


def test_an_unknown_code_prints_no_qr_and_still_clears(
    site: HolderSite,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    page = new_page(browser, "1280x800")
    page.clock.install()
    try:
        page.goto(f"{site.base_url}/verify?kiosk=1")
        scan(page, "NOT-A-LICENCE-CODE")
        assert page.locator("#status").get_attribute("data-indication") == "FAILED"
        assert page.locator("#print-qr").count() == 0  # nothing of this service to scan again
        with page.expect_navigation():
            page.clock.run_for(RESET * 1000 + 100)
        assert page.locator("#status").count() == 0
    finally:
        close(page)


def test_only_kiosk_1_is_the_kiosk_and_the_reset_has_bounds(
    site: HolderSite,  # noqa: F811
) -> None:
    for value in ("0", "true", "<script>", "1 "):
        page = site.client.get("/verify", params={"kiosk": value}).text
        assert 'class="kiosk"' not in page and "/static/kiosk.js" not in page, value
    page = site.client.get("/verify", params={"kiosk": "1"}).text
    assert f'data-reset-seconds="{RESET}"' in page and "/static/kiosk.js" in page
    assert "<script>" not in page.split("</head>", 1)[1]  # no inline script: the CSP forbids it
    for bad in (0, 4, 601, -1):
        with pytest.raises(ValidationError, match="kiosk_reset_seconds"):
            Settings(kiosk_reset_seconds=bad)


@pytest.mark.parametrize("size", ["1280x800", "390x844"])
def test_the_kiosk_keeps_the_scanner_focused_shows_a_big_verdict_and_prints_its_qr(
    site: HolderSite,  # noqa: F811
    browser: Any,  # noqa: F811
    size: str,
) -> None:
    _, url = licence_url(site)
    page = new_page(browser, size)
    try:
        page.goto(f"{site.base_url}/verify?kiosk=1")
        assert page.locator("body").get_attribute("class") == "kiosk"
        assert not page.locator("#file").is_visible()  # a scanner, no file picker
        # A passer-by taps the header: the focus comes back to the scanner field.
        page.locator("header h1").click()
        page.wait_for_function("document.activeElement && document.activeElement.id === 'qr'")
        scan(page, url)
        status = page.locator("#status")
        assert status.get_attribute("data-indication") == "PASSED"
        verdict = page.locator("#status .big")
        assert "有效" in verdict.inner_text()
        size_px = page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('#status .big')).fontSize)"
        )
        assert size_px >= 64, size_px  # readable from a step back
        box = status.bounding_box()
        height = page.viewport_size["height"]
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, box
        assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
        # Ready for the next scan without a tap.
        page.wait_for_function("document.activeElement && document.activeElement.id === 'qr'")
        # No personal data beyond the verify page's own masking.
        body = page.inner_text("body")
        assert CHEN_NAME not in body and CHEN_ID not in body
        # The print button prints, then the scanner has the focus again.
        # (a function, so that Playwright does not call the stand-in it would otherwise return)
        page.evaluate(
            "() => { window.print = () => { window.printed = (window.printed || 0) + 1 } }"
        )
        page.click("#print")
        assert page.evaluate("window.printed") == 1
        page.wait_for_function("document.activeElement && document.activeElement.id === 'qr'")
        # The printout: the verdict and the licence's own verification URL as a QR code.
        assert printed_qr(page) == url
        page.screenshot(path=f"tests/artifacts/kiosk-{size}.png", full_page=True)
    finally:
        close(page)


def test_the_kiosk_clears_a_result_after_the_set_seconds(
    site: HolderSite,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    _, url = licence_url(site)
    page = new_page(browser, "1280x800")
    page.clock.install()
    try:
        page.goto(f"{site.base_url}/verify?kiosk=1")
        page.clock.run_for(RESET * 1000 * 3)  # an empty kiosk stays as it is
        assert page.locator("#qr").is_visible() and page.locator("#status").count() == 0
        scan(page, url)
        assert page.locator("#status").get_attribute("data-indication") == "PASSED"
        page.clock.run_for(RESET * 1000 - 500)
        assert page.locator("#status").count() == 1  # still there just before the time
        with page.expect_navigation():
            page.clock.run_for(600)
        assert page.url == f"{site.base_url}/verify?kiosk=1"
        assert page.locator("#status").count() == 0 and page.locator("#licence").count() == 0
        assert page.locator("body").get_attribute("class") == "kiosk"  # still a kiosk
    finally:
        close(page)


def test_a_kiosk_scan_is_logged_as_the_kiosk_for_the_issuing_department(
    site: HolderSite,  # noqa: F811
) -> None:
    """Supervisors and the issuing department can tell a kiosk's checks from a clerk's."""
    identifier, url, index = issued_licence(site)
    assert site.client.post("/verify?kiosk=1", data={"qr": url}).status_code == 200
    assert site.client.post("/verify", data={"qr": url}).status_code == 200
    answer = site.client.get(
        f"/api/v1/licences/{identifier}/verifications", headers=site.auth(index)
    )
    assert answer.status_code == 200, answer.text
    entries = answer.json()["verifications"]
    assert [(e["channel"], e["indication"]) for e in entries[:2]] == [
        ("page-scan", "PASSED"),
        ("kiosk-scan", "PASSED"),
    ]
    assert entries[1]["channel_label"] == "自助终端扫码 / self-service kiosk scan"
