"""Every page a person sees, judged by axe-core against WCAG 2.1 A and AA, and driven by keyboard.

Citizens verify on phones and at counters, some with screen readers, magnifiers or a keyboard
only; supervisors and clerks use the same pages at desks. So each page the service serves (the
verify page with and without a result of each indication, the holder's pages signed in through
the real development identity provider, a holder link's present page, statistics, the
supervisor's pages, the provider's own sign-in page) is loaded in Chromium (Debian's, through
Playwright, never ``playwright install``) and axe-core — vendored at a pinned version in
``tests/vendor/axe-core/`` by ``scripts/vendor-axe.sh`` — runs with the WCAG 2.1 A/AA rules only.
Any violation fails the test, listed rule by rule with the offending elements.

The pages keep their strict CSP: axe is injected through the DevTools protocol (``evaluate``),
not as a page script, so a CSP the pages need to relax for axe would show up as console errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from api.container import Services, build_services
from api.ops.bootstrap import initialise
from core.db import transaction
from supervision.alert_records import Severity, raise_alert
from tests.holder_login import (
    CHEN,
    HolderSite,
    ServerThread,
    free_port,
    site_settings,
    start_site,
    subject_of,
)
from tests.test_browser import CHROMIUM_ARGS, _fontconfig
from tests.tools import require, require_module

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Beyond the WCAG tags, axe's structure rules for what a screen-reader user navigates by
# (1.3.1 and 2.4.6 in practice): headings in order, one main landmark, all content in landmarks.
STRUCTURE = ["heading-order", "landmark-one-main", "region", "page-has-heading-one"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True}
DESK = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
    require("chromium")  # first: in strict mode a missing browser fails, not skips
    with start_site(tmp_path_factory.mktemp("a11y") / "data") as built:
        yield built


@pytest.fixture(scope="module")
def browser(site: HolderSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
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


def new_page(browser: Any, viewport: dict[str, Any] = PHONE) -> Any:
    context = browser.new_context(**viewport, locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    return page


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']})",
        WCAG_21_AA,
    )
    structure = page.evaluate(
        "async (rules) => await axe.run(document, {runOnly: {type: 'rule', values: rules},"
        " resultTypes: ['violations']})",
        STRUCTURE,
    )
    return list(result["violations"]) + list(structure["violations"])


UNMARKED_ENGLISH = r"""() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const parent = node.parentElement;
    if (/[\u3000-\u9fff\uff00-\uffef]/.test(text)) continue;  // Chinese, or mixed
    if ((text.match(/[A-Za-z]{2,}/g) || []).length < 3) continue;  // a code, a number, a name
    if (!parent || parent.closest('script, style, .mono, [hidden]')) continue;
    const lang = (parent.closest('[lang]') || document.documentElement).getAttribute('lang');
    if (!lang.startsWith('en')) found.push(parent.tagName + ': ' + text.slice(0, 60));
  }
  return found;
}"""


# "中文 / English" in one text node: the English half read with a Chinese voice. Every page marks
# each such half, its own words and the server's messages alike (api/pages/bilingual.py). An
# <option> holds text only, so a list's choices are left whole.
UNMARKED_HALF = r"""() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const parent = node.parentElement;
    if (!/[\u3000-\u9fff\uff00-\uffef][^/]*\/\s*[A-Za-z]{2,}/.test(text)) continue;
    if (!parent || parent.closest('script, style, option, svg, .mono, [hidden], [lang^=en]')) continue;
    found.push(parent.tagName + ': ' + text.slice(0, 60));
  }
  return found;
}"""


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:6]:
            lines.append(f"    {node['target']}: {node['failureSummary'].splitlines()[-1].strip()}")
    return "\n".join(lines)


def assert_accessible(page: Any, name: str) -> None:
    """No WCAG 2.1 A/AA violation, and nothing the page needs blocked by its CSP or missing
    (a stylesheet that did not load would hide contrast problems)."""
    page.wait_for_load_state("load")
    violations = axe_violations(page)
    assert violations == [], f"{name} ({page.url}): WCAG 2.1 AA violations\n{describe(violations)}"
    # WCAG 3.1.2: a zh-CN page reads its English-only parts with an English voice.
    unmarked = page.evaluate(UNMARKED_ENGLISH)
    assert unmarked == [], f'{name}: English text not marked lang="en": {unmarked}'
    halves = page.evaluate(UNMARKED_HALF)
    assert halves == [], f'{name}: English halves not marked lang="en": {halves}'
    blocked = [p for p in page.problems if "Content Security Policy" in p or "404" in p]
    assert blocked == [], f"{name}: blocked or missing resources: {blocked}"
    page.problems.clear()


def assert_error_tied(page: Any, field: str, error_id: str) -> None:
    """A form that came back with an error says so at the field: a screen reader reading the
    field reads the error with it (aria-describedby), and the field is marked invalid."""
    element = page.locator(field)
    assert element.get_attribute("aria-invalid") == "true", field
    assert error_id in (element.get_attribute("aria-describedby") or "").split(), field
    assert page.locator(f"#{error_id}").inner_text().strip() != "", error_id


# --- The check itself -------------------------------------------------------------------------


def test_axe_finds_what_a_careless_page_gets_wrong(browser: Any) -> None:
    """The checker is live: a page with no language, an unlabelled field, an image without text
    and grey-on-white text is reported rule by rule — so an empty list elsewhere means something."""
    page = new_page(browser)
    page.set_content(
        "<html><head><title>x</title></head><body><main><h1>核验</h1>"
        '<input type="text" id="q"><img src="data:,">'
        '<p style="color:#bbb;background:#fff">灰色的说明文字 / grey text</p></main></body></html>'
    )
    found = {v["id"] for v in axe_violations(page)}
    assert {"html-has-lang", "label", "image-alt", "color-contrast"} <= found, found
    page.context.close()


# --- Public pages -----------------------------------------------------------------------------


def _issue(site: HolderSite) -> dict[str, Any]:
    sample = site.credentials["departments"][0]["sample_request"]
    response = site.client.post("/api/v1/licences", json=sample, headers=site.auth(0))
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_the_verify_page_empty_and_with_each_result(site: HolderSite, browser: Any) -> None:
    issued = _issue(site)
    url = site.base_url + "/V/" + issued["links"]["verify"].rsplit("/", 1)[1]
    page = new_page(browser)
    try:
        page.goto(f"{site.base_url}/verify")
        assert_accessible(page, "/verify")
        with page.expect_navigation():  # nothing scanned, nothing uploaded: Enter
            page.press("#qr", "Enter")
        for field in ("#qr", "#file"):
            assert_error_tied(page, field, "error")
        assert_accessible(page, "/verify with an error")

        page.goto(url)
        assert page.locator("#status").get_attribute("data-indication") == "PASSED"
        page.locator("#checks summary").click()  # the checks table open too
        assert_accessible(page, "/V/<code> PASSED")

        code = url.rsplit("/", 1)[1]
        middle = len(code) // 2
        forged = code[:middle] + ("A" if code[middle] != "A" else "B") + code[middle + 1 :]
        page.goto(url.rsplit("/", 1)[0] + "/" + forged)
        assert page.locator("#status").get_attribute("data-indication") == "FAILED"
        assert_accessible(page, "/V/<forged code> FAILED")

        page.goto(f"{site.base_url}/verify")
        page.set_input_files(
            "#file", {"name": "licence.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-x"}
        )
        with page.expect_navigation():
            page.click("#submit")
        assert page.locator("#status").get_attribute("data-indication") == "INDETERMINATE"
        assert_accessible(page, "/verify upload INDETERMINATE")
    finally:
        page.context.close()


def test_the_large_text_and_kiosk_modes(site: HolderSite, browser: Any) -> None:
    """Large text (适老化) and the self-service kiosk are the same pages shown differently: the
    same rules hold for them, result and all."""
    issued = _issue(site)
    code = issued["links"]["verify"].rsplit("/", 1)[1]
    page = new_page(browser)
    try:
        page.goto(f"{site.base_url}/verify?text=large")
        assert page.evaluate("document.documentElement.classList.contains('large-text')")
        assert_accessible(page, "/verify large text")
        page.goto(f"{site.base_url}/V/{code}?text=large")
        assert page.locator("#status").get_attribute("data-indication") == "PASSED"
        assert_accessible(page, "/V/<code> large text")
    finally:
        page.context.close()
    kiosk = new_page(browser, DESK)
    try:
        kiosk.goto(f"{site.base_url}/verify?kiosk=1")
        assert kiosk.locator("body.kiosk").count() == 1
        assert_accessible(kiosk, "kiosk")
        kiosk.fill("#qr", issued["links"]["verify"])
        with kiosk.expect_navigation():
            kiosk.keyboard.press("Enter")
        assert kiosk.locator("#status").get_attribute("data-indication") == "PASSED"
        assert_accessible(kiosk, "kiosk result")
    finally:
        kiosk.context.close()


def test_statistics_and_a_holder_links_present_page(site: HolderSite, browser: Any) -> None:
    issued = _issue(site)
    made = site.client.post(
        f"/api/v1/licences/{issued['identifier']}/holder-links", headers=site.auth(0)
    )
    assert made.status_code == 201, made.text
    link = made.json()["url"]
    page = new_page(browser)
    try:
        page.goto(site.base_url + "/h/" + link.split("/h/", 1)[1])
        assert page.locator("#qr").is_visible()
        assert_accessible(page, "holder link present page")

        page.goto(f"{site.base_url}/statistics/{site.credentials['departments'][0]['code']}")
        assert_accessible(page, "statistics")
    finally:
        page.context.close()


# --- Holder pages, signed in through the provider's page ----------------------------------------


def browser_sign_in(page: Any, site: HolderSite, subject_id: str) -> None:
    """Sign in as a demo holder the way a person does: /me/login, the provider's page, a click."""
    page.goto(f"{site.base_url}/me/login")
    page.wait_for_url(f"{site.idp_url}/authorize**")
    assert_accessible(page, "development identity provider sign-in (demo mode)")
    with page.expect_navigation(url=f"{site.base_url}/me"):
        page.click(f"button[data-subject='{subject_of(subject_id)}']")


def test_the_holder_pages_signed_in(site: HolderSite, browser: Any) -> None:
    page = new_page(browser)
    try:
        browser_sign_in(page, site, CHEN)
        assert_accessible(page, "/me")

        first = page.locator("a[href^='/me/licences/']").first.get_attribute("href")
        assert first is not None
        page.goto(site.base_url + first)
        assert_accessible(page, "holder licence page")

        page.fill("#purpose", "办理执业注册")
        with page.expect_navigation():
            page.click("#make-copy")
        assert page.locator("#new-copy").count() == 1  # the stamped copy is listed
        assert_accessible(page, "holder licence page with a stamped copy")

        page.fill("#purpose", "x")  # too short: the form comes back with an error
        with page.expect_navigation():
            page.click("#make-copy")
        assert page.locator("#error").count() == 1
        assert_error_tied(page, "#purpose", "error")
        assert_accessible(page, "holder licence page with a form error")

        page.goto(site.base_url + first + "/present")
        assert_accessible(page, "holder present page")

        page.goto(site.base_url + first + "/objections")
        assert_accessible(page, "holder objection form")
        page.fill("#comment", "姓名有误\u202e")  # a bidi override: refused, the form comes back
        with page.expect_navigation():
            page.click("#send-objection")
        for field in ("#field", "#comment", "#proposed"):
            assert_error_tied(page, field, "error")
        assert_accessible(page, "holder objection form with an error")
        page.fill("#comment", "出生日期录入有误")  # the holder's own words: not marked
        with page.expect_navigation():
            page.click("#send-objection")
        assert page.locator("#notice").count() == 1
        assert_accessible(page, "holder objection sent")
        page.goto(f"{site.base_url}/me/objections")
        assert_accessible(page, "/me/objections")

        for path in ("/me/grants", "/me/usage"):
            page.goto(site.base_url + path)
            assert_accessible(page, path)

        page.goto(f"{site.base_url}/me/grants")  # a grant to a department that does not exist
        page.fill("#department", "91350100NOSUCHDEPT")
        page.fill("#business_number", "BJ-2026-0001")
        page.fill("#valid_until", str(page.locator("#valid_until").get_attribute("min")))
        with page.expect_navigation():
            page.click("#grant")
        for field in ("#target", "#department", "#business_number", "#valid_until"):
            assert_error_tied(page, field, "error")
        assert_accessible(page, "/me/grants with a form error")

        other = site.credentials["departments"][0]["code"]  # market: not the issuer
        page.fill("#department", other)
        with page.expect_navigation():
            page.click("#grant")
        assert page.locator("li.grant").count() >= 1, page.locator("main").inner_text()[:400]
        assert_accessible(page, "/me/grants with a grant")
    finally:
        page.context.close()


def test_the_demo_modes_own_sign_in_page(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """In demo mode (``make run``) the development provider is mounted at /dev-idp of the
    service itself, under the service's own headers: its page is judged there too."""
    data_dir = tmp_path_factory.mktemp("a11y-demo") / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def build() -> Services:  # off this thread: Playwright's event loop runs on it
        built = build_services(site_settings(data_dir, base, None, demo_mode=True))
        initialise(built, with_demo=True)
        return built

    with ThreadPoolExecutor(1) as pool:
        services = pool.submit(build).result()
    page = new_page(browser)
    try:
        with ServerThread(create_app(services=services), port):
            page.goto(f"{base}/me/login")
            page.wait_for_url(f"{base}/dev-idp/authorize**")
            assert page.locator("#demo-notice").is_visible()
            assert_accessible(page, "/dev-idp/authorize (demo mode)")
            with page.expect_navigation(url=f"{base}/me"):
                page.click(f"button[data-subject='{subject_of(CHEN)}']")
            assert_accessible(page, "/me (demo mode)")
    finally:
        page.context.close()


# --- Supervisor pages ---------------------------------------------------------------------------


def test_the_supervisor_pages(site: HolderSite, browser: Any) -> None:
    office = site.credentials["supervision_offices"][0]
    services = site.services
    with transaction(services.engine) as session:  # an open alert, with its acknowledge button
        raise_alert(
            session,
            services.audit,
            rule="verify_not_valid",
            severity=Severity.WARNING,
            subject="a11y-check",
            summary="核验了已吊销的证照 / a revoked licence was verified",
            at=services.clock.now(),
            department_code=site.credentials["departments"][0]["code"],
        )
    page = new_page(browser, DESK)
    try:
        page.goto(f"{site.base_url}/supervise/sign-in")
        assert_accessible(page, "supervisor sign-in")

        page.fill("#client_id", office["client_id"])
        page.fill("#api_key", "wrong-key")
        with page.expect_navigation():
            page.click("#sign-in")
        for field in ("#client_id", "#api_key"):  # not saying which was wrong
            assert_error_tied(page, field, "sign-in-error")
        assert_accessible(page, "supervisor sign-in refused")

        page.fill("#client_id", office["client_id"])
        page.fill("#api_key", office["api_key"])
        page.click("#sign-in")
        page.wait_for_url(f"{site.base_url}/supervise")
        assert_accessible(page, "supervisor dashboard")
        assert page.locator("text=a11y-check").count() + page.locator("[id^=alert-]").count() >= 1
        for path in ("/supervise/alerts", "/supervise/audit"):
            page.goto(site.base_url + path)
            assert_accessible(page, path)
        assert page.locator("table, ul, ol").count() >= 1  # the audit page listed entries
    finally:
        page.context.close()


# --- Keyboard only --------------------------------------------------------------------------------

FOCUSABLE = """() => Array.from(document.querySelectorAll('a[href], button:not([disabled]),'
  + ' input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]),'
  + ' summary, [tabindex]:not([tabindex="-1"])'))
  .filter(e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
  .map(e => e.id || e.getAttribute('href') || e.outerHTML.slice(0, 80))"""

FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e);
  const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2)
    || (s.boxShadow && s.boxShadow !== 'none');
  return {name: e.id || e.getAttribute('href') || e.outerHTML.slice(0, 80),
          visible: e.matches(':focus-visible'), ring: ring};
}"""


def tab_through(page: Any) -> list[str]:
    """Press Tab from the top of the page until focus leaves it; every stop must show a ring."""
    # Start where a person arriving on the page starts (not at the autofocused field): the
    # body is made focusable just long enough to take focus, so the next Tab is the first stop.
    page.evaluate(
        "() => { const b = document.body; b.tabIndex = -1; b.focus(); b.removeAttribute('tabindex'); }"
    )
    order: list[str] = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None or (order and focused["name"] == order[0]):
            break
        assert focused["visible"] and focused["ring"], f"no visible focus ring on {focused}"
        order.append(focused["name"])
    return order


def test_keyboard_reaches_every_action_in_order_and_enter_verifies(
    site: HolderSite, browser: Any
) -> None:
    issued = _issue(site)
    page = new_page(browser, DESK)
    try:
        page.goto(f"{site.base_url}/verify")
        expected = page.evaluate(FOCUSABLE)
        assert "qr" in expected and "file" in expected and "submit" in expected
        assert tab_through(page) == expected

        page.focus("#qr")
        page.keyboard.type(issued["links"]["verify"], delay=0)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.locator("#status").get_attribute("data-indication") == "PASSED"

        browser_sign_in(page, site, CHEN)
        first = page.locator("a[href^='/me/licences/']").first.get_attribute("href")
        page.goto(site.base_url + str(first))
        expected = page.evaluate(FOCUSABLE)
        for action in ("download", "credential", "present", "purpose", "make-copy"):
            assert action in expected, (action, expected)
        assert tab_through(page) == expected
    finally:
        page.context.close()


def test_the_bilingual_filter_marks_english_and_never_makes_markup() -> None:
    """A message can carry request text (a file name, a code): both halves stay text."""
    from core.bilingual import bilingual

    assert str(bilingual("证照真实有效 / the licence is valid")) == (
        '证照真实有效 / <span lang="en">the licence is valid</span>'
    )
    hostile = str(bilingual("<img src=x onerror=alert(1)> / </span><script>x</script>"))
    assert "<img" not in hostile and "<script>" not in hostile and "</span><" not in hostile
    assert hostile.count('<span lang="en">') == 1
    assert str(bilingual("only one language")) == "only one language"
    assert str(bilingual("a/b / ")) == "a/b / "  # nothing after the separator: left whole
    assert str(bilingual("签发 / issued · 按月 / by month")) == (
        '签发 / <span lang="en">issued</span> · 按月 / <span lang="en">by month</span>'
    )
