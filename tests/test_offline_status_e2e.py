"""End to end: a counter downloads ``/pki/trust-list`` and ``/pki/status-list`` from the domain,
goes offline, and checks printed licences with ``elicence verify --offline --status-list``; a
licence revoked or suspended through the departments' API is FAILED at the counter within one
refresh of the list (the publisher re-signs within a minute of a status change).

The domain's clock is pinned ten minutes behind the wall clock, so the lists it signs (and the
minute the test moves it on) are already valid for the CLI, which reads the wall clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from typer.testing import CliRunner

from api.cli.main import app
from core.clock import FixedClock
from tests.domain import Domain, demo_domain

REFRESH = timedelta(seconds=61)  # one past the publisher's check interval


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10))


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    return demo_domain(tmp_path_factory, "status-e2e", clock=clock)


def download(domain: Domain, folder: Path) -> tuple[Path, Path, str]:
    """What the counter fetched while online: both lists, and the pin it obtained out of band."""
    folder.mkdir(exist_ok=True)
    trust = domain.client.get("/pki/trust-list")
    status = domain.client.get("/pki/status-list")
    assert trust.status_code == 200 and status.status_code == 200, status.text
    assert status.headers["content-type"].startswith("application/vc+jwt")
    (folder / "trust-list.json").write_text(trust.text, encoding="utf-8")
    (folder / "status-list.jwt").write_text(status.text, encoding="utf-8")
    pem = trust.json()["signer"]["certificate"]
    pin = x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()
    return folder / "trust-list.json", folder / "status-list.jwt", pin


def offline(text: str, lists: tuple[Path, Path, str], laptop: Path) -> tuple[int, dict[str, Any]]:
    trust, status, pin = lists
    result = CliRunner().invoke(
        app,
        [
            "verify",
            "--qr",
            text,
            "--offline",
            "--trust-list",
            str(trust),
            "--status-list",
            str(status),
            "--fingerprint",
            pin,
            "--data-dir",
            str(laptop),
            "--json",
        ],
    )
    assert not laptop.exists(), "offline verification writes nothing"
    return result.exit_code, json.loads(result.stdout)


def change(domain: Domain, identifier: str, transition: str) -> None:
    response = domain.client.post(
        f"/api/v1/licences/{identifier}/{transition}",
        json={"reason": "测试 / test"},
        headers=domain.auth(),
    )
    assert response.status_code == 200, response.text


def test_a_revocation_reaches_the_counter_within_one_refresh(
    domain: Domain, clock: FixedClock, tmp_path: Path
) -> None:
    kept, revoked, suspended = (domain.issue() for _ in range(3))
    before = download(domain, tmp_path / "before")
    for issued in (kept, revoked, suspended):
        code, answer = offline(issued["links"]["verify"], before, tmp_path / "laptop")
        assert (code, answer["indication"]) == (0, "PASSED"), answer["message"]
        assert answer["extra"]["status_as_of"].endswith("+08:00")

    change(domain, revoked["identifier"], "revoke")
    change(domain, suspended["identifier"], "suspend")
    clock.advance(REFRESH)
    after = download(domain, tmp_path / "after")
    for issued, (indication, sub) in (
        (kept, ("PASSED", None)),
        (revoked, ("FAILED", "REVOKED")),
        (suspended, ("FAILED", "SUSPENDED")),
    ):
        code, answer = offline(issued["links"]["verify"], after, tmp_path / "laptop")
        assert (answer["indication"], answer["sub_indication"]) == (indication, sub)
        assert code == (0 if indication == "PASSED" else 1)
        assert answer["extra"]["status_list"]["url"].endswith("/pki/status-list")
    # The list downloaded before the change still says what it said, as of its own time.
    code, old = offline(revoked["links"]["verify"], before, tmp_path / "laptop")
    _, new = offline(revoked["links"]["verify"], after, tmp_path / "laptop")
    assert code == 0 and old["extra"]["status_as_of"] < new["extra"]["status_as_of"]

    change(domain, suspended["identifier"], "resume")
    clock.advance(REFRESH)
    resumed = download(domain, tmp_path / "resumed")
    code, answer = offline(suspended["links"]["verify"], resumed, tmp_path / "laptop")
    assert (code, answer["indication"]) == (0, "PASSED"), answer["message"]


def test_the_published_list_is_believed_only_with_its_own_trust_list(
    domain: Domain, tmp_path: Path
) -> None:
    """The genuine list, and a licence of this domain, but another pin: nothing is PASSED."""
    issued = domain.issue()
    trust, status, _ = download(domain, tmp_path / "lists")
    code, answer = offline(issued["links"]["verify"], (trust, status, "ab" * 32), tmp_path / "l")
    assert (code, answer["indication"], answer["sub_indication"]) == (
        2,
        "INDETERMINATE",
        "NO_CHAIN_FOUND",
    )
