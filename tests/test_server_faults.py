"""The running service under faults: the whole attack corpus uploaded at once, a SIGKILL in the
middle of issuance, and the database going away and coming back. Each runs ``elicence serve``
(uvicorn) as a subprocess on a free loopback port, on a data directory made by
``elicence init --demo``."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import POSTGRES_ADMIN_URL
from tests.corpus import ATTACKS
from tests.tools import requiring

pytestmark = pytest.mark.slow  # servers in processes of their own, killed

BIN = Path(sys.executable).parent


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELICENCE_")}
    env.update(
        ELICENCE_DATA_DIR=str(data_dir),
        ELICENCE_PUBLIC_RATE_LIMIT="100000/minute",
        ELICENCE_CLIENT_RATE_LIMIT="100000/minute",
        **extra,
    )
    return env


def _init(data_dir: Path, **extra: str) -> dict[str, Any]:
    subprocess.run(
        [BIN / "elicence", "init", "--demo", "--data-dir", str(data_dir)],
        env=_env(data_dir, **extra),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return json.loads((data_dir / "demo-credentials.json").read_text())  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(data_dir: Path, **extra: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    process = subprocess.Popen(
        [BIN / "elicence", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=_env(data_dir, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, "the server exited while starting"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield process, base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _auth(department: dict[str, Any], key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {department['api_key']}"}
    if key:
        headers["Idempotency-Key"] = key
    return headers


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("faults") / "data"
    return data_dir, _init(data_dir)


def test_corpus_uploaded_concurrently_to_a_running_server(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    data_dir, credentials = demo
    department = credentials["departments"][0]
    with _server(data_dir) as (_, base):
        issued = httpx.post(
            f"{base}/api/v1/licences", json=department["sample_request"], headers=_auth(department)
        ).json()
        sealed = httpx.get(
            f"{base}/api/v1/licences/{issued['identifier']}/pdf", headers=_auth(department)
        ).content
        files = {attack.name: attack.build(sealed) for attack in ATTACKS}
        files["genuine"] = sealed

        def upload(item: tuple[str, bytes]) -> tuple[str, int, dict[str, Any], float]:
            name, data = item
            start = time.monotonic()
            response = httpx.post(
                f"{base}/api/v1/verify",
                files={"file": ("licence.pdf", data, "application/pdf")},
                timeout=60,
            )
            return name, response.status_code, response.json(), time.monotonic() - start

        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(upload, files.items()))
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    for name, status, body, elapsed in results:
        assert status < 500, (name, status, body)
        assert elapsed < 45, (name, elapsed)
        if name == "genuine":
            assert body["indication"] == "PASSED"
        elif status == 200:
            assert body["indication"] in ("FAILED", "INDETERMINATE"), (name, body)
        else:  # the empty file is refused at the door
            assert status in (413, 422), (name, status)


def _counts(db: Path) -> tuple[int, int, int]:
    with sqlite3.connect(db) as conn:
        licences = conn.execute("SELECT COUNT(*) FROM licence").fetchone()[0]
        documents = conn.execute("SELECT COUNT(*) FROM licence_document").fetchone()[0]
        orphans = conn.execute(
            "SELECT COUNT(*) FROM licence l LEFT JOIN licence_document d "
            "ON d.identifier = l.identifier WHERE d.identifier IS NULL"
        ).fetchone()[0]
    return licences, documents, orphans


def test_sigkill_during_issuance_loses_nothing(demo: tuple[Path, dict[str, Any]]) -> None:
    data_dir, credentials = demo
    department = credentials["departments"][0]
    keys = [f"crash-{i}-{time.time_ns()}" for i in range(16)]
    with _server(data_dir) as (process, base):

        def issue(key: str) -> int:
            try:
                return httpx.post(
                    f"{base}/api/v1/licences",
                    json=department["sample_request"],
                    headers=_auth(department, key),
                    timeout=30,
                ).status_code
            except httpx.HTTPError:
                return 0  # the server died under this request

        pool = ThreadPoolExecutor(max_workers=16)
        futures = [pool.submit(issue, key) for key in keys]
        wait(futures, return_when=FIRST_COMPLETED)
        process.send_signal(signal.SIGKILL)
        process.wait()
        pool.shutdown(wait=True)
        answered = sum(1 for f in futures if f.result() == 201)
    assert 1 <= answered < len(keys), "the kill should land in the middle of the run"
    licences, documents, orphans = _counts(data_dir / "elicence.db")
    assert licences == documents and orphans == 0
    committed = licences_for(keys, data_dir)
    assert committed >= answered

    with _server(data_dir) as (_, base):
        first = {
            key: httpx.post(
                f"{base}/api/v1/licences",
                json=department["sample_request"],
                headers=_auth(department, key),
                timeout=30,
            )
            for key in keys
        }
        assert all(r.status_code in (200, 201) for r in first.values())
        again = httpx.post(
            f"{base}/api/v1/licences",
            json=department["sample_request"],
            headers=_auth(department, keys[0]),
            timeout=30,
        )
        assert again.json()["identifier"] == first[keys[0]].json()["identifier"]
    identifiers = {r.json()["identifier"] for r in first.values()}
    assert len(identifiers) == len(keys)  # exactly one licence per key
    after, documents, orphans = _counts(data_dir / "elicence.db")
    assert after == licences + len(keys) - committed
    assert after == documents and orphans == 0
    audit = subprocess.run(
        [BIN / "elicence", "audit", "verify", "--data-dir", str(data_dir)],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert audit.returncode == 0, audit.stderr


def licences_for(keys: list[str], data_dir: Path) -> int:
    """How many of the keys were issued before the kill (their idempotency rows committed)."""
    with sqlite3.connect(data_dir / "elicence.db") as conn:
        marks = ",".join("?" for _ in keys)
        return int(
            conn.execute(
                f"SELECT COUNT(*) FROM idempotency_record WHERE key IN ({marks})",
                keys,
            ).fetchone()[0]
        )


@pytest.fixture
def postgres_database() -> Iterator[tuple[str, str]]:
    """A database of its own (it is renamed away during the test), and the admin URL."""
    import psycopg

    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"elicence_down_{time.time_ns()}"
    with requiring(f"PostgreSQL at {admin}", psycopg.OperationalError):
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name, admin
    with psycopg.connect(admin, autocommit=True) as conn:
        for candidate in (name, f"{name}_away"):
            conn.execute(f'DROP DATABASE IF EXISTS "{candidate}" WITH (FORCE)')


def test_database_down_is_503_and_recovers(
    tmp_path: Path, postgres_database: tuple[str, str]
) -> None:
    import psycopg

    name, admin = postgres_database
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    data_dir = tmp_path / "data"
    credentials = _init(data_dir, ELICENCE_DATABASE_URL=url)
    department = credentials["departments"][0]

    def issue(base: str) -> httpx.Response:
        return httpx.post(
            f"{base}/api/v1/licences",
            json=department["sample_request"],
            headers=_auth(department),
            timeout=30,
        )

    def rename(old: str, new: str) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (old,),
            )
            conn.execute(f'ALTER DATABASE "{old}" RENAME TO "{new}"')

    with _server(data_dir, ELICENCE_DATABASE_URL=url) as (_, base):
        assert issue(base).status_code == 201
        rename(name, f"{name}_away")
        down = issue(base)
        assert down.status_code == 503, down.text
        assert "数据库暂不可用" in down.text and "unavailable" in down.text
        assert httpx.get(f"{base}/readyz", timeout=10).json()["checks"]["database"] == (
            "unavailable"
        )
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        rename(f"{name}_away", name)
        back = issue(base)
        assert back.status_code == 201, back.text
