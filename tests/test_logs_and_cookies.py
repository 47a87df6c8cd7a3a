"""No secret and no ID number in a log line or in readable form in a cookie; the data directory
and the database file are the service account's alone.

The log test runs the service as an operator would (``uvicorn api.asgi:app``, uvicorn's access
log on, as it is by default) and reads what it wrote to stderr.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.responses import Response

from api.edge.holder_session import HolderPrincipal, HolderSessions
from core.errors import Unauthenticated
from tests.holder_login import free_port

pytestmark = pytest.mark.slow  # a server in a process of its own

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
ID_NUMBER = "350102198503120034"
NAME = "陈建华"
LINK_SECRET = "hl_7_Zq3xSecretPartOfTheHolderLink0123456789"
OIDC_CODE = "authorization-code-Kx93jd"
PASSPHRASE = "logs-and-cookies-passphrase"


@dataclass
class Live:
    data_dir: Path
    base: str
    log: Path
    wal_modes: dict[str, int]


def _env(data_dir: Path, base: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELICENCE_")}
    env.update(
        ELICENCE_DATA_DIR=str(data_dir),
        ELICENCE_KEY_PASSPHRASE=PASSPHRASE,
        ELICENCE_PUBLIC_BASE_URL=base,
        PYTHONPATH=str(ROOT),
    )
    return env


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _initialised(data_dir: Path) -> tuple[int, str, dict[str, str]]:
    """``elicence init`` of ``data_dir`` for a server on a free port: the port, its base URL
    and the server's environment."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(data_dir, base)
    subprocess.run(
        [str(BIN / "elicence"), "init", "--data-dir", str(data_dir)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask: files 0644 unless made private
    )
    return port, base, env


@contextmanager
def _serving(args: list[str], env: dict[str, str], base: str, log: Path) -> Iterator[None]:
    """The server in a process of its own, its stdout and stderr in ``log``, until the block
    ends: started, waited for, then stopped."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            args,
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=sink,
            preexec_fn=lambda: os.umask(0o022),  # the usual umask: files 0644 unless made private
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
            yield
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("logs") / "fresh" / "data"  # made by `elicence init`
    port, base, env = _initialised(data_dir)
    log = data_dir.parent / "server.log"
    uvicorn = [sys.executable, "-m", "uvicorn", "api.asgi:app", "--host", "127.0.0.1"]
    with _serving([*uvicorn, "--port", str(port)], env, base, log):
        with httpx.Client(base_url=base, timeout=30) as client:
            client.get(f"/h/present/{LINK_SECRET}")
            client.get(f"/h/present/{LINK_SECRET}/qr")
            client.get(f"/api/v1/holders/111/{ID_NUMBER}")
            client.get("/api/v1/licences", params={"holder_id": ID_NUMBER, "holder_id_type": "111"})
            client.get("/me/callback", params={"code": OIDC_CODE, "state": "s"})
            client.post("/api/v1/verify", json={"qr": f"https://x/v/{ID_NUMBER}"})
        wal_modes = {p.name: _mode(p) for p in data_dir.glob("elicence.db-*") if p.is_file()}
    yield Live(data_dir, base, log, wal_modes)


def test_access_log_holds_no_link_secret_id_number_or_query_value(live: Live) -> None:
    text = live.log.read_text()
    assert '"route": "/h/present/{secret}"' in text, text[-3000:]  # the log was captured
    assert "/api/v1/holders/" in text
    assert LINK_SECRET not in text and LINK_SECRET[5:] not in text
    assert ID_NUMBER not in text
    assert OIDC_CODE not in text


def test_every_log_line_is_redacted_whoever_writes_it() -> None:
    from api.edge.observability import log_handler

    stream = io.StringIO()
    logger = logging.getLogger("elicence.test-redaction")
    logger.propagate = False
    logger.addHandler(log_handler(stream))
    try:
        logger.warning(
            "request %s: %s (%s)",
            "r1",
            "invalid",
            f"GET /api/v1/holders/111/{ID_NUMBER}?holder_id={ID_NUMBER} Bearer {LINK_SECRET}",
        )
        logger.warning("holder %s not found; see /h/present/%s", ID_NUMBER, LINK_SECRET)
        logger.warning("holder %s of department 1135010000360001XN", "110101199003071234")
    finally:
        logger.handlers.clear()
    text = stream.getvalue()
    assert len(text.splitlines()) == 3
    assert ID_NUMBER not in text
    assert LINK_SECRET[3:] not in text
    assert "110101199003071234" not in text
    assert "holder_id=" in text and "/api/v1/holders/{id_type}/{id}" in text
    assert "1135010000360001XN" in text  # a department's code is not personal data


def _decodings(value: str) -> list[bytes]:
    """Every dot-separated part of a cookie value, base64url-decoded where it decodes."""
    found = [value.encode()]
    for part in value.split("."):
        for padded in (part + "=" * (-len(part) % 4),):
            try:
                found.append(base64.urlsafe_b64decode(padded))
            except (binascii.Error, ValueError):
                pass
    return found


def test_session_cookie_is_encrypted() -> None:
    sessions = HolderSessions(b"a key from the key file", secure=True)
    principal = HolderPrincipal("111", ID_NUMBER, NAME, "sub-123", "https://idp.example")
    now = datetime(2030, 1, 1, tzinfo=UTC)
    value = sessions.seal(principal, now)
    for decoded in _decodings(value):
        assert ID_NUMBER.encode() not in decoded
        assert NAME.encode() not in decoded
        assert b"sub-123" not in decoded
    opened, csrf = sessions.open(value, now + timedelta(minutes=1))
    assert opened == principal and csrf
    header, _, rest = value.partition(".")
    flipped = rest[:-4] + ("AAAA" if not rest.endswith("AAAA") else "BBBB")
    for forged in (f"{header}.{flipped}", value + "x", f"{header}.", "x.y.z"):
        with pytest.raises(Unauthenticated):
            sessions.open(forged, now)


def test_login_transaction_values_are_encrypted_too() -> None:
    sessions = HolderSessions(b"a key from the key file", secure=True)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    value = sessions.sign(
        "oidc-login", {"verifier": "pkce-verifier-secret"}, now + timedelta(minutes=5)
    )
    assert all(b"pkce-verifier-secret" not in d for d in _decodings(value))
    assert sessions.unsign("oidc-login", value, now) == {"verifier": "pkce-verifier-secret"}
    with pytest.raises(Unauthenticated):  # a value made for one purpose is not another's
        sessions.unsign("holder-session", value, now)


def test_session_cookie_is_secure_on_an_https_public_url(live: Live) -> None:
    from api.container import build_services
    from api.settings import Settings

    for base, secure in (("https://licence.example.gov.cn", True), (live.base, False)):
        settings = Settings(data_dir=live.data_dir, key_passphrase=PASSPHRASE, public_base_url=base)  # type: ignore[arg-type]
        sessions = build_services(settings).holder_sessions
        response = Response()
        sessions.set_cookie(response, "v")
        cookie = response.headers["set-cookie"].lower()
        assert ("; secure" in cookie) is secure, cookie
        assert "; httponly" in cookie and "samesite=lax" in cookie


def test_data_directory_and_database_are_private(live: Live) -> None:
    assert _mode(live.data_dir) == 0o700
    assert _mode(live.data_dir / "elicence.db") == 0o600
    assert live.wal_modes, "the running server keeps a write-ahead log"
    assert set(live.wal_modes.values()) == {0o600}, live.wal_modes


def test_an_existing_database_readable_by_others_is_made_private(tmp_path: Path) -> None:
    from core.db import create_db_engine

    path = tmp_path / "old.db"
    path.write_bytes(b"")
    os.chmod(path, 0o644)
    create_db_engine(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o600


def test_elicence_serve_logs_each_request_once_by_its_route_template(tmp_path: Path) -> None:
    """``elicence serve`` asks uvicorn for no access line of its own; the service's one line a
    request names the route's template. A licence identifier or a scanned code in the path
    must not reach the log (uvicorn's line would have carried the concrete path)."""
    data_dir = tmp_path / "data"
    port, base, env = _initialised(data_dir)
    identifier = "11350100003600016X0012024000001Q"  # shaped like one; existing or not
    code = "Zk9yZ2VkQ29kZVRoYXRNdXN0Tm90QmVMb2dnZWQ"
    log = tmp_path / "serve.log"
    serve = [str(BIN / "elicence"), "serve", "--data-dir", str(data_dir), "--port", str(port)]
    with _serving(serve, env, base, log), httpx.Client(base_url=base, timeout=30) as client:
        client.get(f"/api/v1/licences/{identifier}")
        client.get(f"/v/{code}")
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("message") == "request"]
    routes = [line["route"] for line in access if line["route"] != "/healthz"]
    assert routes == ["/api/v1/licences/{identifier}", "/v/{code}"], access
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
    text = log.read_text()
    assert identifier not in text and code not in text
