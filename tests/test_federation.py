"""Two provinces recognise each other, end to end: two real instances (``elicence init --demo``
then ``elicence serve``, SQLite each, distinct domain names, each with its own public URL) on
loopback ports, real HTTP, and the operator's CLI as a subprocess.

Domain B recognises domain A by A's trust-list URL and the pinned SHA-256 of A's signer; B then
verifies A's licences (PDF and QR) by A's chain, A's OCSP and A's signed status answer, and
sees a revocation made at A at once. Forged, re-signed and replayed lists are refused with a
non-zero exit and the stored list left as it was. Both servers start once for the module.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow  # two `elicence` servers in processes of their own

BIN = Path(sys.executable).parent
NAME_A, NAME_B = "甲省电子证照信任域", "乙省电子证照信任域"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Instance:
    name: str
    data_dir: Path
    base: str
    env: dict[str, str]
    credentials: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None

    def auth(self, index: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials['departments'][index]['api_key']}"}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "elicence"), *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def prepare(root: Path, name: str) -> Instance:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = root / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELICENCE_")}
    env.update(
        ELICENCE_DATA_DIR=str(data_dir),
        ELICENCE_PUBLIC_BASE_URL=base,
        ELICENCE_DOMAIN_NAME=name,
        ELICENCE_DOMAIN_ORGANISATION=name.replace("电子证照信任域", "政务服务数据管理局"),
        ELICENCE_PUBLIC_RATE_LIMIT="100000/minute",
        ELICENCE_CLIENT_RATE_LIMIT="100000/minute",
        ELICENCE_FEDERATION_ALLOW_PRIVATE_ADDRESSES="true",  # the peers listen on 127.0.0.1
    )
    return Instance(name, data_dir, base, env, {})


def start(instance: Instance) -> None:
    port = instance.base.rsplit(":", 1)[1]
    instance.process = subprocess.Popen(
        [str(BIN / "elicence"), "serve", "--data-dir", str(instance.data_dir), "--port", port],
        env=instance.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(instance: Instance) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{instance.base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert instance.process is not None and instance.process.poll() is None, "server exited"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.2)


def stop(instance: Instance) -> None:
    process = instance.process
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Mirror:
    """A tiny local HTTP server that answers every GET with the bytes it was given."""

    def __init__(self) -> None:
        self.body = b"{}"
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(mirror.body)))
                self.end_headers()
                self.wfile.write(mirror.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pki/trust-list"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, document: dict[str, Any]) -> None:
        self.body = json.dumps(document, ensure_ascii=False).encode()


@dataclass
class World:
    a: Instance
    b: Instance
    mirror: Mirror
    first_list: dict[str, Any]  # A's list when B recognised it

    @property
    def fingerprint(self) -> str:
        return str(self.first_list["signer"]["sha256"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    a = prepare(tmp_path_factory.mktemp("province-a"), NAME_A)
    b = prepare(tmp_path_factory.mktemp("province-b"), NAME_B)
    inits = [
        subprocess.Popen(
            [str(BIN / "elicence"), "init", "--demo", "--data-dir", str(i.data_dir)],
            env=i.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in (a, b)
    ]
    for process in inits:
        _, err = process.communicate(timeout=180)
        assert process.returncode == 0, err.decode()
    for instance in (a, b):
        instance.credentials = json.loads((instance.data_dir / "demo-credentials.json").read_text())
        start(instance)
    mirror = Mirror()
    try:
        for instance in (a, b):
            wait_ready(instance)
        first = httpx.get(f"{a.base}/pki/trust-list", timeout=10).json()
        yield World(a, b, mirror, first)
    finally:
        for instance in (a, b):
            stop(instance)
        mirror.server.shutdown()


def issue(instance: Instance) -> tuple[dict[str, Any], bytes]:
    body = instance.credentials["departments"][0]["sample_request"]
    response = httpx.post(f"{instance.base}/api/v1/licences", json=body, headers=instance.auth(), timeout=60)
    assert response.status_code == 201, response.text
    issued = response.json()
    pdf = httpx.get(
        f"{instance.base}/api/v1/licences/{issued['identifier']}/pdf", headers=instance.auth(), timeout=30
    )
    assert pdf.status_code == 200
    return issued, pdf.content


def verify_at(instance: Instance, pdf: bytes) -> dict[str, Any]:
    response = httpx.post(
        f"{instance.base}/api/v1/verify",
        files={"file": ("licence.pdf", pdf, "application/pdf")},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def stored(instance: Instance) -> list[tuple[Any, ...]]:
    """The recognised domains as stored (read straight from the instance's SQLite file, which
    is quicker than another CLI start)."""
    with sqlite3.connect(instance.data_dir / "elicence.db") as db:
        return db.execute(
            "SELECT name, url, fingerprint, sequence, document, fetched_at FROM federation_domain"
        ).fetchall()


def audit(instance: Instance, prefix: str) -> list[tuple[str, str]]:
    with sqlite3.connect(instance.data_dir / "elicence.db") as db:
        rows = db.execute(
            "SELECT action, outcome FROM audit_entry WHERE action LIKE ? ORDER BY seq", (prefix + "%",)
        ).fetchall()
    return [(action, outcome) for action, outcome in rows]


@pytest.fixture(scope="module")
def licence(world: World) -> dict[str, Any]:
    issued, pdf = issue(world.a)
    return {"issued": issued, "pdf": pdf}


def test_a_licence_from_an_unrecognised_domain_has_no_chain(world: World, licence: dict[str, Any]) -> None:
    report = verify_at(world.b, licence["pdf"])
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "NO_CHAIN_FOUND")
    assert report["licence"] is None and report.get("domain") is None
    # at home it is genuine
    assert verify_at(world.a, licence["pdf"])["indication"] == "PASSED"


def test_forged_and_foreign_signed_lists_are_refused(world: World) -> None:
    altered = copy.deepcopy(world.first_list)
    altered["seals"][0]["status"] = "revoked"
    world.mirror.serve(altered)
    refused = world.b.cli("federation", "add", world.mirror.url, "--fingerprint", world.fingerprint)
    assert refused.returncode == 1
    assert "signature does not verify" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    # a genuine list of another domain (B's own, here) under A's pin
    world.mirror.serve(httpx.get(f"{world.b.base}/pki/trust-list", timeout=10).json())
    refused = world.b.cli("federation", "add", world.mirror.url, "--fingerprint", world.fingerprint)
    assert refused.returncode == 1 and "fingerprint" in refused.stderr
    assert stored(world.b) == []


def test_b_recognises_a_and_maps_its_type(world: World) -> None:
    added = world.b.cli(
        "federation", "add", f"{world.a.base}/pki/trust-list", "--fingerprint", world.fingerprint, "--json"
    )
    assert added.returncode == 0, added.stderr
    domain = json.loads(added.stdout)
    assert (domain["result"], domain["name"], domain["fingerprint"]) == ("added", NAME_A, world.fingerprint)
    assert domain["sequence"] == world.first_list["sequence"]
    ((name, url, pinned, sequence, document, _),) = stored(world.b)
    assert (name, url, pinned, sequence) == (NAME_A, f"{world.a.base}/pki/trust-list", world.fingerprint, domain["sequence"])
    assert json.loads(document) == world.first_list
    foreign = world.a.credentials["departments"][0]["sample_request"]["licence_type"]
    unknown = world.b.cli("federation", "map", NAME_A, foreign, "11350100003600028N999")
    assert unknown.returncode == 1 and "catalogue" in unknown.stderr
    local = world.b.credentials["departments"][0]["sample_request"]["licence_type"]
    mapped = world.b.cli("federation", "map", NAME_A, foreign, local)
    assert mapped.returncode == 0, mapped.stderr
    with sqlite3.connect(world.b.data_dir / "elicence.db") as db:
        rows = db.execute("SELECT domain_name, foreign_type, local_type FROM federation_type_map").fetchall()
    assert rows == [(NAME_A, foreign, local)]


def test_b_verifies_a_licence_of_a(world: World, licence: dict[str, Any]) -> None:
    report = verify_at(world.b, licence["pdf"])
    assert report["indication"] == "PASSED", report
    assert report["domain"]["name"] == NAME_A
    assert report["domain"]["fingerprint"] == world.fingerprint
    assert "trust_list_url" not in report["domain"]  # a public report names no peer URL
    assert world.a.base not in json.dumps(report)
    assert report["licence"]["identifier"] == licence["issued"]["identifier"]
    assert report["recognised_as"]["type_code"] == world.b.credentials["departments"][0]["sample_request"]["licence_type"]
    names = [check["name"] for check in report["checks"]]
    assert {"domain", "chain", "seal_listed", "ocsp", "status"} <= set(names)
    page = httpx.post(
        f"{world.b.base}/verify", files={"file": ("licence.pdf", licence["pdf"], "application/pdf")}, timeout=120
    )
    assert page.status_code == 200
    assert NAME_A in page.text and 'data-indication="PASSED"' in page.text
    # the QR printed on the licence, scanned at B
    scanned = httpx.post(f"{world.b.base}/api/v1/verify", json={"qr": licence["issued"]["links"]["verify"]}, timeout=60)
    assert scanned.status_code == 200
    assert scanned.json()["indication"] == "PASSED" and scanned.json()["domain"]["name"] == NAME_A


def test_a_revocation_at_a_fails_the_licence_at_b(world: World, licence: dict[str, Any]) -> None:
    identifier = licence["issued"]["identifier"]
    revoked = httpx.post(
        f"{world.a.base}/api/v1/licences/{identifier}/revoke",
        json={"reason": "吊销许可 / licence revoked"},
        headers=world.a.auth(),
        timeout=30,
    )
    assert revoked.status_code == 200, revoked.text
    report = verify_at(world.b, licence["pdf"])
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "REVOKED")
    assert report["domain"]["name"] == NAME_A
    assert report["licence"]["status"] == "revoked"
    scanned = httpx.post(f"{world.b.base}/api/v1/verify", json={"qr": licence["issued"]["links"]["verify"]}, timeout=60)
    assert (scanned.json()["indication"], scanned.json()["sub_indication"]) == ("FAILED", "REVOKED")


def test_an_older_list_is_refused_and_the_stored_one_kept(world: World) -> None:
    created = httpx.post(
        f"{world.a.base}/api/v1/seals", json={"seal_type": "03"}, headers=world.a.auth(1), timeout=60
    )
    assert created.status_code == 201, created.text
    newer = httpx.get(f"{world.a.base}/pki/trust-list", timeout=10).json()
    assert newer["sequence"] > world.first_list["sequence"]
    refreshed = world.b.cli("federation", "refresh", NAME_A)
    assert refreshed.returncode == 0, refreshed.stderr
    assert "refreshed" in refreshed.stdout
    (before,) = stored(world.b)
    assert before[3] == newer["sequence"] and json.loads(before[4]) == newer
    world.mirror.serve(world.first_list)
    replayed = world.b.cli("federation", "add", world.mirror.url, "--fingerprint", world.fingerprint)
    assert replayed.returncode == 1 and "older than the stored" in replayed.stderr
    assert stored(world.b) == [before]


def test_every_step_left_its_audit_entry(world: World) -> None:
    seen = set(audit(world.b, "federation."))
    assert {("federation.add", "ok"), ("federation.add", "refused"), ("federation.map", "ok"),
            ("federation.refresh", "ok")} <= seen
    verdicts = [outcome for _, outcome in audit(world.b, "licence.verify")]
    assert verdicts.count("PASSED") >= 3 and "FAILED" in verdicts and "INDETERMINATE" in verdicts
    with sqlite3.connect(world.b.data_dir / "elicence.db") as db:
        logged = db.execute("SELECT indication FROM verification_log").fetchall()
    assert len(logged) == len(verdicts)
    # A answered B's status questions, each a signed, audited key use
    assert ("licence.status_query", "revoked") in audit(world.a, "licence.status_query")
    assert world.b.cli("audit", "verify").returncode == 0
