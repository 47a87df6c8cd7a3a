"""The public pages on a phone, in headless Chromium: what the screen shows first, that nothing is
wider than the screen, and that every action can be tapped.

A person opening a licence's QR on a phone must see 有效 / 无效 without scrolling; the counter's
scanner field takes the focus only on ``/verify`` with no result. Every page fits a 360-px wide
screen (``document.documentElement.scrollWidth``), and every link, button and field is at least
44×44 CSS px and not covered by anything else (``document.elementFromPoint`` at its centre), at
360×640, 390×844 and 1280×800, in normal and in large text (适老化).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.holder_login import CHEN, HolderSite, start_site, subject_of
from tests.test_browser import CHROMIUM_ARGS, _fontconfig, shot
from tests.tools import require, require_module

pytestmark = pytest.mark.browser

SIZES = {
    "360x640": {"width": 360, "height": 640},
    "390x844": {"width": 390, "height": 844},
    "1280x800": {"width": 1280, "height": 800},
}
MIN_TAP = 44  # CSS px, both ways (WCAG 2.5.5; the platforms' own guidelines)

# Every visible action on the page: its size, and what a finger at its centre would hit.
TAPPABLE = """() => {
  const out = []
  const actions = document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary')
  for (const el of actions) {
    if (el.closest('[hidden]') || getComputedStyle(el).visibility === 'hidden') continue
    if (el.getClientRects().length === 0) continue
    el.scrollIntoView({block: 'center', inline: 'center'})
    const r = el.getBoundingClientRect()
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)
    const label = hit && hit.closest('label')
    const covered = !(hit && (el === hit || el.contains(hit) || (label && label.control === el)))
    out.push({what: el.id || el.tagName + ':' + (el.textContent || el.name || '').trim().slice(0, 30),
              width: r.width, height: r.height, covered: covered,
              by: covered && hit ? hit.tagName + '#' + hit.id + '.' + hit.className : ''})
  }
  window.scrollTo(0, 0)
  return out
}"""

# The elements that reach past the right edge (for the message when a page is too wide).
WIDE = """(width) => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > width + 1)
  .map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
    require("chromium")  # first: a missing browser fails, never skips
    with start_site(tmp_path_factory.mktemp("phone") / "data", kiosk_reset_seconds=5) as built:
        yield built


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


def new_page(browser: Any, size: str) -> Any:
    viewport = SIZES[size]
    phone = viewport["width"] < 800
    context = browser.new_context(
        viewport=viewport, device_scale_factor=2, is_mobile=phone, has_touch=phone, locale="zh-CN"
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    return page


def close(page: Any) -> None:
    problems = page.problems
    page.context.close()
    assert problems == [], f"browser console errors (CSP?): {problems}"


def licence_url(site: HolderSite) -> tuple[str, str]:
    """陈建华's licence: its identifier and the verification URL printed in its QR code."""
    identifier, url, _ = issued_licence(site)
    return identifier, url


def issued_licence(site: HolderSite) -> tuple[str, str, int]:
    """陈建华's licence: identifier, printed verification URL, index of the issuing department."""
    from contextlib import closing

    from tests.holder_login import sign_in

    with closing(sign_in(site.base_url, CHEN)) as chen:
        mine = chen.get("/api/v1/holder/licences").json()["licences"][0]
    for index, department in enumerate(site.credentials["departments"]):
        if department["code"] == mine["issuer_code"]:
            answer = site.client.get(
                f"/api/v1/licences/{mine['identifier']}", headers=site.auth(index)
            )
            assert answer.status_code == 200, answer.text
            return str(mine["identifier"]), str(answer.json()["links"]["verify"]), index
    raise AssertionError("no demo department issued 陈建华's licence")


def sign_in_browser(page: Any, base: str, holder: str) -> None:
    """The real flow in the browser: /me/login -> the provider's account picker -> /me."""
    page.goto(f"{base}/me/login")
    page.click(f'button[name=holder][value="{subject_of(holder)}"]')
    page.wait_for_url(f"{base}/me")


def assert_fits(page: Any, size: str, where: str) -> None:
    width = SIZES[size]["width"]
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, (
        f"{where} at {size}: {scroll_width} px wide, the screen {width}: {page.evaluate(WIDE, width)}"
    )
    problems = [
        a
        for a in page.evaluate(TAPPABLE)
        if a["covered"] or a["width"] < MIN_TAP or a["height"] < MIN_TAP
    ]
    assert problems == [], f"{where} at {size}: actions too small or covered: {problems}"


# --- what a phone shows first ----------------------------------------------------------------


@pytest.mark.parametrize("size", ["360x640", "390x844"])
def test_a_phone_opening_the_qr_lands_on_the_verdict_not_the_form(
    site: HolderSite, browser: Any, size: str
) -> None:
    """The regression: ``autofocus`` on the scanner field scrolled a phone past 有效."""
    _, url = licence_url(site)
    page = new_page(browser, size)
    try:
        page.goto(site.base_url + "/V/" + url.rsplit("/", 1)[1])
        page.wait_for_load_state("load")
        box = page.locator("#status").bounding_box()
        height = SIZES[size]["height"]
        assert page.evaluate("window.scrollY") == 0
        assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= height, box
        assert page.locator("#status").get_attribute("data-indication") == "PASSED"
        assert "有效" in page.locator("#status .big").inner_text()
        assert page.evaluate("document.activeElement.id") != "qr"  # nothing pulls it down
        assert_fits(page, size, "/V/<code>")
        shot(page, f"phone-verify-{size}")
    finally:
        close(page)


def test_only_the_empty_counter_page_focuses_the_scanner(site: HolderSite, browser: Any) -> None:
    page = new_page(browser, "390x844")
    try:
        page.goto(f"{site.base_url}/verify")
        page.wait_for_function("document.activeElement && document.activeElement.id === 'qr'")
        # A scanned code that is no licence: the verdict (无效) is what the screen shows, not
        # the form below it.
        page.fill("#qr", "https://elsewhere.example/V/NOT-A-CODE")
        with page.expect_navigation():
            page.click("#submit")
        assert page.locator("#status").get_attribute("data-indication") == "FAILED"
        assert page.evaluate("window.scrollY") == 0
        assert page.evaluate("document.activeElement.id") != "qr"
        assert page.locator("#qr").get_attribute("autofocus") is None
    finally:
        close(page)


# --- the holder's pages ----------------------------------------------------------------------


@pytest.mark.parametrize("size", list(SIZES))
def test_the_holders_pages_fit_and_every_action_can_be_tapped(
    site: HolderSite, browser: Any, size: str
) -> None:
    identifier, _ = licence_url(site)
    page = new_page(browser, size)
    try:
        sign_in_browser(page, site.base_url, CHEN)
        assert_fits(page, size, "/me")
        page.goto(f"{site.base_url}/me/licences/{identifier}")
        card = page.locator("#licence").bounding_box()
        assert card is not None and card["x"] >= 0
        assert card["x"] + card["width"] <= SIZES[size]["width"], card
        assert_fits(page, size, "/me/licences/<id>")
        shot(page, f"phone-holder-licence-{size}")
        # "Show QR" is reachable and a tap on it opens the presentation, not the download.
        page.locator("#present").scroll_into_view_if_needed()
        with page.expect_navigation():
            page.locator("#present").tap() if SIZES[size]["width"] < 800 else page.click("#present")
        assert page.url.endswith(f"/me/licences/{identifier}/present")
        assert_fits(page, size, "/me/licences/<id>/present")
        for path in ("/me/grants", "/me/usage"):
            page.goto(site.base_url + path)
            assert_fits(page, size, path)
    finally:
        close(page)


@pytest.mark.parametrize("size", list(SIZES))
def test_the_presentation_link_page_fits(site: HolderSite, browser: Any, size: str) -> None:
    """The page a holder opens from the link the department sent (/h/<token>), without signing
    in: its QR and countdown fit, in normal and in large text."""
    identifier, _, index = issued_licence(site)
    link = site.client.post(
        f"/api/v1/licences/{identifier}/holder-links", headers=site.auth(index)
    ).json()["url"]
    page = new_page(browser, size)
    try:
        page.goto(site.base_url + "/h/" + link.split("/h/", 1)[1])
        assert page.locator("#present img, #present canvas, #present svg").first.is_visible()
        assert_fits(page, size, "/h/<token>")
        secret = link.rsplit("/", 1)[1]
        toggle = page.get_attribute("#text-toggle", "href") or ""
        assert secret not in toggle and toggle.startswith("?text="), toggle  # never copied
        page.click("#text-toggle")
        page.wait_for_function("document.documentElement.classList.contains('large-text')")
        assert_fits(page, size, "/h/<token> in large text")
    finally:
        close(page)


@pytest.mark.parametrize("size", list(SIZES))
def test_the_statistics_and_supervision_pages_fit(
    site: HolderSite, browser: Any, size: str
) -> None:
    department = site.credentials["departments"][0]["code"]
    office = site.credentials["supervision_offices"][0]
    page = new_page(browser, size)
    try:
        page.goto(f"{site.base_url}/statistics/{department}")
        assert_fits(page, size, "/statistics")
        page.goto(f"{site.base_url}/supervise")
        assert_fits(page, size, "/supervise/sign-in")
        page.fill("#client_id", office["client_id"])
        page.fill("#api_key", office["api_key"])
        page.click("#sign-in")
        page.wait_for_url(f"{site.base_url}/supervise")
        assert_fits(page, size, "/supervise")
    finally:
        close(page)


# --- large text (适老化) -----------------------------------------------------------------------


def test_large_text_is_one_tap_without_script_and_still_fits(
    site: HolderSite, browser: Any
) -> None:
    identifier, url = licence_url(site)
    page = new_page(browser, "360x640")
    try:
        page.goto(site.base_url + "/V/" + url.rsplit("/", 1)[1])
        normal = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        with page.expect_navigation():
            page.click("#text-toggle")  # a plain link: works with scripts off
        assert page.url.startswith(site.base_url + "/V/")  # back where the person was
        assert page.evaluate("document.documentElement.classList.contains('large-text')")
        large = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        assert large >= normal * 1.2, (normal, large)
        assert page.evaluate("window.scrollY") == 0
        assert_fits(page, "360x640", "/V/<code> in large text")
        shot(page, "phone-verify-large-text")
        # The cookie follows the person to the holder pages.
        sign_in_browser(page, site.base_url, CHEN)
        assert page.evaluate("document.documentElement.classList.contains('large-text')")
        page.goto(f"{site.base_url}/me/licences/{identifier}")
        assert_fits(page, "360x640", "/me/licences/<id> in large text")
        page.goto(f"{site.base_url}/me/licences/{identifier}/present")
        assert_fits(page, "360x640", "present in large text")
        # And back to normal in one tap.
        page.goto(f"{site.base_url}/verify")
        with page.expect_navigation():
            page.click("#text-toggle")
        assert not page.evaluate("document.documentElement.classList.contains('large-text')")
    finally:
        close(page)


def test_large_text_works_with_javascript_off(site: HolderSite, browser: Any) -> None:
    context = browser.new_context(viewport=SIZES["360x640"], java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{site.base_url}/verify")
        with page.expect_navigation():
            page.click("#text-toggle")
        assert page.url == f"{site.base_url}/verify"
        assert page.evaluate("document.documentElement.className") == "large-text"
    finally:
        context.close()


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/phish",
        "https://evil.example/",
        "/\\evil.example",
        "/\r\nSet-Cookie:x=1",
        "javascript:alert(1)",
        "",
    ],
)
def test_the_text_size_switch_never_sends_anyone_off_site(site: HolderSite, target: str) -> None:
    """A link on a trusted page that redirects elsewhere would be a phishing tool."""
    answer = site.client.get(
        "/text-size", params={"size": "large", "next": target}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/verify"  # the counter page, never the target
    cookie = answer.headers["set-cookie"]
    assert "elicence_text=large" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_the_text_size_cookie_holds_only_the_two_sizes(site: HolderSite) -> None:
    answer = site.client.get(
        "/text-size", params={"size": "<script>", "next": "/verify"}, follow_redirects=False
    )
    assert answer.headers["location"] == "/verify"
    assert "elicence_text=normal" in answer.headers["set-cookie"]
    site.client.cookies.set("elicence_text", "large")
    try:
        assert 'class="large-text"' in site.client.get("/verify").text
        assert 'class="large-text"' not in site.client.get("/verify?text=normal").text
    finally:
        site.client.cookies.clear()
    assert 'class="large-text"' not in site.client.get("/verify").text
    assert 'class="large-text"' in site.client.get("/verify?text=large").text
