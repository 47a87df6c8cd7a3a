"""/verify with the network gone: the service worker's cache and the browser's own verifier.

Debian's Chromium driven by Playwright, against a uvicorn server in this process (the pattern
of tests/test_browser.py). First the verifier itself against hostile and genuine inputs made by
the Python side (tests/offline_vectors.py), run in the page as a clerk's browser runs it; then
the counter's day: /verify opened online, the worker active and the lists cached, the network cut
(``context.set_offline``), the page reloaded from the cache and a code typed as a USB scanner
types it. What is checked is what the clerk sees: the verdict element's visible text.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.clock import FixedClock, china_today
from licences.payload import decode
from tests.conftest import make_settings
from tests.domain import Domain, build_domain
from tests.holder_login import ServerThread, free_port
from tests.offline_vectors import NOW, Case, vectors
from tests.test_browser import ARTIFACTS, CHROMIUM_ARGS, _fontconfig
from tests.tools import require, require_module

pytestmark = pytest.mark.browser

VECTORS = vectors()
# Waits are locators, not wait_for_function: the page's CSP has no 'unsafe-eval'.
READY = '#offline-ready[data-ready="true"]'
ANSWERED = '#offline-status:not([data-indication=""])'
RUN_CASE = """async ([c, trustText, statusText]) => {
  const m = await import('/static/offline/verifier.js')
  const r = await m.verifyOffline(c.text, { trustText, statusText, now: new Date(c.now) })
  const claims = r.claims && { identifier: r.claims.identifier, validUntil: r.claims.validUntil,
                               copyId: r.claims.copyId }
  return { indication: r.indication, sub: r.sub, message: r.message, claims,
           asOf: r.asOf ? r.asOf.toISOString() : null }
}"""


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


REACHED: list[str] = []  # every path the server was asked for: what the network carried


def _recording(app: Any) -> Any:
    async def recorded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            REACHED.append(scope["path"])
        await app(scope, receive, send)

    return recorded


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, clock: FixedClock
) -> Iterator[tuple[str, Domain]]:
    require("chromium")
    from api.app import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path_factory.mktemp("offline") / "data")
    settings.public_base_url = base
    domain = build_domain(settings, clock=clock)
    with ServerThread(_recording(create_app(services=domain.services)), port):
        yield base, domain


@pytest.fixture(scope="module")
def browser(server: tuple[str, Domain], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """After the server: the domain is built (pyHanko runs its own event loop) before
    Playwright's loop starts in this thread."""
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


@pytest.fixture
def page(browser: Any, server: tuple[str, Domain]) -> Iterator[Any]:
    """A fresh browser profile (no worker, no cache) on a phone-sized screen."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        locale="zh-CN",
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page
    context.close()
    assert problems == [], f"uncaught errors in the page: {problems}"


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_online(page: Any, base: str) -> str:
    """Open /verify online and wait until the worker controls it and both lists are cached and
    verified; the readiness line's "as of" (validFrom of the cached status list)."""
    page.goto(f"{base}/verify")
    page.locator(READY).wait_for(timeout=20_000)
    assert page.evaluate("() => navigator.serviceWorker.controller !== null")
    return str(page.get_attribute("#offline-ready", "data-as-of"))


def go_offline(page: Any, base: str) -> None:
    """Cut the network and reload /verify: the page, its scripts and the lists come from the
    worker's cache, and not one request reaches the server."""
    page.context.set_offline(True)
    before = len(REACHED)
    response = page.reload()
    assert response is not None and response.from_service_worker, "not served by the worker"
    assert page.evaluate("navigator.onLine") is False
    page.locator(READY).wait_for()  # still ready: from the cache
    assert REACHED[before:] == [], "the network carried requests while offline"


def check(page: Any, text: str) -> tuple[str, str, str]:
    """Type ``text`` and Enter, as a USB scanner does; the visible verdict."""
    page.fill("#qr", text)
    page.press("#qr", "Enter")
    page.locator(ANSWERED).wait_for()
    box = page.locator("#offline-status")
    assert box.is_visible()
    return (
        box.get_attribute("data-indication"),
        box.get_attribute("data-sub-indication"),
        box.inner_text(),
    )


def resigned(domain: Domain, url: str, **changes: Any) -> str:
    """A licence's code signed again by the domain's QR key with ``changes``: genuine."""
    claims = replace(decode(url.rsplit("/", 1)[1]).claims, **changes)
    return (
        url.rsplit("/", 1)[0]
        + "/"
        + domain.services.qr_keys.sign(claims, purpose="test", listener=None)
    )


# --- the verifier against hostile and genuine inputs ------------------------------------------


@pytest.fixture(scope="module")
def verifier_page(browser: Any, server: tuple[str, Domain]) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server[0]}/verify")
    yield page
    context.close()


@pytest.mark.parametrize("case", VECTORS.cases, ids=[c.name for c in VECTORS.cases])
def test_offline_verifier_answers(verifier_page: Any, case: Case) -> None:
    trust = VECTORS.trust[case.trust] if case.trust else None
    status = VECTORS.status[case.status] if case.status else None
    answer = verifier_page.evaluate(RUN_CASE, [case.to_json(), trust, status])
    assert (answer["indication"], answer["sub"]) == (case.indication, case.sub), answer
    if case.reason:
        assert case.reason in answer["message"], answer
    if case.shows is None:
        assert answer["claims"] is None, "nothing of an unverified payload is shown"
    else:
        shown = {"identifier": None, "validUntil": None, "copyId": None, **case.shows}
        assert answer["claims"] == shown
    assert (answer["asOf"] is not None) == case.as_of, answer
    if case.as_of:  # the list's validFrom, as tests/offline_vectors.py dated each list
        valid_from = {
            "good": "2026-12-06T15:30:00.000Z",
            "stale": "2026-12-04T15:30:00.000Z",
            "future": "2026-12-06T17:30:00.000Z",
        }[str(case.status)]
        assert answer["asOf"] == valid_from, answer


def test_times_are_beijing_times(verifier_page: Any) -> None:
    shown = verifier_page.evaluate(
        """async (at) => { const m = await import('/static/offline/verifier.js')
        return [m.beijingTime(new Date(at)), m.dayText(m.chinaDay(new Date(at)))] }""",
        NOW.isoformat(),
    )
    assert shown == ["2026-12-07 00:30:00", "2026-12-07"]  # 16:30 UTC is the next day in China


# --- the counter's day: online once, then the network gone ------------------------------------


def test_verify_page_is_served_by_the_worker_offline(server: tuple[str, Domain], page: Any) -> None:
    base, _ = server
    as_of = open_online(page, base)
    assert "离线核验已就绪" in page.inner_text("#offline-ready")
    go_offline(page, base)
    assert page.get_attribute("#offline-ready", "data-as-of") == as_of
    assert "当前离线" in page.inner_text("#offline-ready")
    assert page.locator("#qr").is_visible() and page.locator("#offline-result").is_hidden()
    shot(page, "verify-offline-ready")


def test_genuine_licence_offline_is_valid_as_of_the_status_list(
    server: tuple[str, Domain], page: Any
) -> None:
    base, domain = server
    issued = domain.issue(1)
    open_online(page, base)
    go_offline(page, base)
    indication, sub, text = check(page, issued["links"]["verify"])
    assert (indication, sub) == ("PASSED", "")
    assert "有效" in text and "Valid" in text
    assert "离线核验，状态截至" in text and "offline, as of" in text and "北京时间" in text
    claims = page.inner_text("#offline-claims")
    assert issued["identifier"] in claims
    holder = domain.department(1)["sample_request"]["holder"]
    body = page.inner_text("body")
    assert holder["name"] not in body and holder["id"] not in body  # not in the signed payload
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "verify-offline-passed")


def test_revoked_licence_is_not_valid_once_the_lists_refresh(
    server: tuple[str, Domain], page: Any, clock: FixedClock
) -> None:
    base, domain = server
    issued = domain.issue()
    url = issued["links"]["verify"]
    as_of = open_online(page, base)
    go_offline(page, base)
    assert check(page, url)[0] == "PASSED"

    page.context.set_offline(False)
    revoked = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/revoke",
        json={"reason": "吊销"},
        headers=domain.auth(),
    )
    assert revoked.status_code == 200, revoked.text
    clock.advance(timedelta(seconds=61))  # the publisher looks again after a minute
    refreshed = open_online(page, base)  # online, the page refreshes the cached lists
    assert refreshed > as_of
    go_offline(page, base)
    indication, sub, text = check(page, url)
    assert (indication, sub) == ("FAILED", "REVOKED")
    assert "无效" in text and "Not valid" in text and "吊销" in text
    assert "离线核验，状态截至" in text
    shot(page, "verify-offline-revoked")


def test_forged_code_is_refused_offline(server: tuple[str, Domain], page: Any) -> None:
    base, domain = server
    url = domain.issue()["links"]["verify"]
    prefix, code = url.rsplit("/", 1)
    data = bytearray(base64.b32decode(code + "=" * (-len(code) % 8)))
    data[-1] ^= 0x01  # the signature's last byte
    forged = prefix + "/" + base64.b32encode(bytes(data)).decode().rstrip("=")
    open_online(page, base)
    go_offline(page, base)
    indication, sub, text = check(page, forged)
    assert (indication, sub) == ("FAILED", "SIG_CRYPTO_FAILURE")
    assert "无效" in text and "伪造" in text
    assert page.locator("#offline-claims").is_hidden()  # nothing of a forged payload is shown
    shot(page, "verify-offline-forged")


def test_expired_licence_offline(server: tuple[str, Domain], page: Any) -> None:
    base, domain = server
    url = domain.issue()["links"]["verify"]
    # The domain's own key signs a code whose last day was two days ago in China.
    expired = resigned(domain, url, valid_until=china_today(datetime.now(UTC)) - timedelta(days=2))
    open_online(page, base)
    go_offline(page, base)
    indication, sub, text = check(page, expired)
    assert (indication, sub) == ("FAILED", "EXPIRED")
    assert "证照已过期" in text


def test_without_a_cached_status_list_it_cannot_be_confirmed(
    server: tuple[str, Domain], page: Any
) -> None:
    base, domain = server
    url = domain.issue()["links"]["verify"]
    open_online(page, base)
    dropped = page.evaluate(
        """async () => { let dropped = false
        for (const name of await caches.keys()) {
          dropped = (await (await caches.open(name)).delete('/pki/status-list')) || dropped }
        return dropped }"""
    )
    assert dropped
    page.context.set_offline(True)
    page.reload()
    page.locator('#offline-ready[data-ready="false"]').wait_for()
    assert "未就绪" in page.inner_text("#offline-ready")
    indication, sub, text = check(page, url)
    assert (indication, sub) == ("INDETERMINATE", "TRY_LATER")
    assert "无法确认" in text and "Cannot be confirmed" in text and "没有状态列表" in text
    shot(page, "verify-offline-no-status-list")


def test_a_printed_url_opened_offline_is_checked_on_the_device(
    server: tuple[str, Domain], page: Any
) -> None:
    """A phone's camera opens /V/<code> with no network: the worker answers with the cached
    page, which checks the code in its own address."""
    base, domain = server
    issued = domain.issue()
    open_online(page, base)
    page.context.set_offline(True)
    page.goto(issued["links"]["verify"])
    page.locator(ANSWERED).wait_for()
    assert page.get_attribute("#offline-status", "data-indication") == "PASSED"
    assert issued["identifier"] in page.inner_text("#offline-claims")


def test_a_submit_that_fails_online_is_checked_on_the_device(
    server: tuple[str, Domain], page: Any
) -> None:
    """The browser believes it is online but the post never arrives (a dead link, the server
    down): the worker sends the form's text back to the cached page, which checks it."""
    base, domain = server
    issued = domain.issue()
    open_online(page, base)
    page.context.set_offline(True)
    page.evaluate("() => Object.defineProperty(navigator, 'onLine', { get: () => true })")
    page.fill("#qr", issued["links"]["verify"])
    with page.expect_navigation():
        page.press("#qr", "Enter")
    page.locator(ANSWERED).wait_for()
    assert page.get_attribute("#offline-status", "data-indication") == "PASSED"
    assert page.evaluate("() => location.hash") == ""  # the code is not left in the address


def test_online_the_server_stays_the_verifier(server: tuple[str, Domain], page: Any) -> None:
    base, domain = server
    issued = domain.issue()
    open_online(page, base)  # the worker is active and controls the page
    page.fill("#qr", issued["links"]["verify"])
    before = len(REACHED)
    with page.expect_navigation():
        page.press("#qr", "Enter")
    assert "/verify" in REACHED[before:]  # posted to the server
    assert page.get_attribute("#status", "data-indication") == "PASSED"
    assert page.locator("#licence").is_visible() and page.locator("#seal").is_visible()
    assert page.locator("#offline-result").is_hidden()


def test_a_phone_that_only_scanned_a_code_installs_nothing(
    server: tuple[str, Domain], page: Any
) -> None:
    """A citizen's phone opening a printed code online gets the server's answer and nothing
    else: no worker, no assets, no lists downloaded for later."""
    _, domain = server
    url = domain.issue()["links"]["verify"]
    before = len(REACHED)
    page.goto(url)
    page.locator('#offline-ready[data-ready="not-installed"]').wait_for(state="attached")
    assert page.get_attribute("#status", "data-indication") == "PASSED"
    assert page.evaluate(
        "async () => (await navigator.serviceWorker.getRegistration()) === undefined"
    )
    fetched = set(REACHED[before:])
    assert not fetched & {"/verify-sw.js", "/pki/trust-list", "/pki/status-list"}, fetched
