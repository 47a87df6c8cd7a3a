"""Real holder sign-in for tests: the development identity provider (``api.dev_idp.provider``) as its own
uvicorn server on a loopback port, an elicence server configured against it, and ``sign_in``,
which walks the whole OpenID Connect flow over HTTP like a browser.

Usage in a test module::

    from tests.holder_login import CHEN, HolderSite, sign_in, start_site

    @pytest.fixture(scope="module")
    def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
        with start_site(tmp_path_factory.mktemp("grants") / "data") as built:
            yield built

    def test_something(site: HolderSite) -> None:
        with closing(sign_in(site.base_url, CHEN)) as client:  # a demo holder's ID or subject
            client.get("/api/v1/holder/licences")           # the session cookie is in the client
            client.post("/api/v1/holder/...", json=...)     # X-CSRF-Token is already set
            csrf_token(client)                              # the token, e.g. for a form's "csrf"

(or import the ready-made module fixture ``holder_site``). A site is one demo domain
(``elicence init --demo`` data) served by uvicorn in a thread, signing in at a development
provider served in another; ``site.client`` is the same app in-process and ``site.auth(i)`` the
demo departments' credentials. ``start_site(..., idp_keys=..., **settings)`` varies it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Services, build_services
from api.dev_idp.app import create_dev_idp_app
from api.dev_idp.provider import DevIdentityProvider, RegisteredClient
from api.ops import demo
from api.ops.bootstrap import initialise
from api.settings import Settings

CLIENT_ID = "elicence-test"
CLIENT_SECRET = "test-client-secret-not-for-production"
# Demo holders (api/ops/demo.py), by ID number.
CHEN = "350102198503120034"  # 陈建华, a physician (医师执业证书)
WANG = "350103199007150024"  # 王丽萍, a physician
CANYIN = "91350100M000100Y43"  # 示范餐饮管理有限公司 (食品经营许可证)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """An ASGI app served by uvicorn in a thread, on 127.0.0.1."""

    def __init__(self, app: Any, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert self._thread.is_alive(), "the server thread died while starting"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(15)


def dev_idp(url: str, redirect_uri: str, **keys: Any) -> DevIdentityProvider:
    """A provider at ``url`` knowing the demo holders and one client; ``keys`` may set
    ``signing_key`` / ``jwks_keys`` (a provider whose JWKS does not match its signatures)."""
    client = RegisteredClient(CLIENT_ID, CLIENT_SECRET, (redirect_uri,))
    return DevIdentityProvider(issuer=url, clients=(client,), holders=tuple(demo.holders()), **keys)


@dataclass
class HolderSite:
    base_url: str  # the elicence server
    idp_url: str  # the development identity provider (its issuer)
    idp: DevIdentityProvider
    services: Services
    client: TestClient  # the same app in-process, for department calls (demo credentials)
    credentials: dict[str, Any]

    def auth(self, index: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials['departments'][index]['api_key']}"}


def site_settings(data_dir: Path, base_url: str, idp_url: str | None, **extra: Any) -> Settings:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "key_passphrase": "test-passphrase-" + data_dir.name,
        "public_base_url": base_url,
        "public_rate_limit": "100000/minute",
        "client_rate_limit": "100000/minute",
    }
    if idp_url is not None:
        values |= {
            "oidc_issuer": idp_url,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET,
        }
    return Settings(**(values | extra))


@contextmanager
def start_site(
    data_dir: Path, *, idp_keys: dict[str, Any] | None = None, **settings: Any
) -> Iterator[HolderSite]:
    """A demo domain in ``data_dir`` served on a free port, signing holders in at a development
    provider served on another; ``settings`` override the elicence settings."""
    app_port, idp_port = free_port(), free_port()
    base_url, idp_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{idp_port}"
    provider = dev_idp(idp_url, f"{base_url}/me/callback", **(idp_keys or {}))
    services = build_services(site_settings(data_dir, base_url, idp_url, **settings))
    initialise(services, with_demo=True)
    credentials = json.loads((data_dir / "demo-credentials.json").read_text())
    app = create_app(services=services)
    with ServerThread(create_dev_idp_app(provider), idp_port), ServerThread(app, app_port):
        yield HolderSite(base_url, idp_url, provider, services, TestClient(app), credentials)


@pytest.fixture(scope="module")
def holder_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
    with start_site(tmp_path_factory.mktemp("holder-site") / "data") as site:
        yield site


class _AuthorizePage(HTMLParser):
    """The provider's account picker: the form's action, hidden fields and holder buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.hidden: dict[str, str] = {}
        self.subjects: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form" and found.get("id") == "authorize":
            self.action = found.get("action", "")
        elif tag == "input" and found.get("type") == "hidden":
            self.hidden[found["name"]] = found.get("value", "")
        elif tag == "button" and found.get("name") == "holder":
            self.subjects.append(found.get("value", ""))


def subject_of(idp_holder: str) -> str:
    """A demo holder's subject at the development provider, from its ID number or subject."""
    for holder in demo.holders():
        if idp_holder in (holder["id"], holder["subject"]):
            return holder["subject"]
    raise KeyError(idp_holder)


def authorize_page(client: httpx.Client) -> tuple[httpx.Response, _AuthorizePage]:
    """``/me/login`` followed to the provider's page, parsed."""
    page = client.get("/me/login", follow_redirects=True)
    assert page.status_code == 200 and page.url.path.endswith("/authorize"), (
        page.status_code,
        page.url,
        page.text[:300],
    )
    parsed = _AuthorizePage()
    parsed.feed(page.text)
    return page, parsed


def sign_in(base_url: str, idp_holder: str) -> httpx.Client:
    """An httpx client signed in as a demo holder (ID number or provider subject), through the
    real flow: /me/login -> the provider's page -> pick the holder -> /me/callback -> /me.
    The client holds the session cookie, and ``X-CSRF-Token`` is set on it for writes."""
    client = httpx.Client(base_url=base_url, follow_redirects=True, timeout=60)
    _, form = authorize_page(client)
    subject = subject_of(idp_holder)
    assert subject in form.subjects, form.subjects
    done = client.post(form.action, data={**form.hidden, "holder": subject})
    assert done.status_code == 200 and done.url.path == "/me", (done.status_code, done.text[:500])
    client.headers["X-CSRF-Token"] = csrf_token(client)
    return client


def csrf_token(client: httpx.Client) -> str:
    """The session's CSRF token (also in the pages' forms as the hidden field ``csrf``)."""
    response = client.get("/api/v1/holder/session")
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])
