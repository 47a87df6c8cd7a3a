"""``elicence verify --qr TEXT --offline --trust-list FILE --fingerprint SHA256``: no server, no
data directory; the downloaded list is trusted through its pinned signer (tests/test_offline_pin.py
has the attacks on the pin itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from core.clock import FixedClock
from core.db import transaction
from licences.payload import Claims, PayloadType, decode, sign
from licences.qrkeys import PublishedKey
from tests.domain import Domain, demo_domain

pytestmark = pytest.mark.slow  # each offline check is a process of its own

ELICENCE = [sys.executable, "-c", "from api.cli.main import main; main()"]


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    return demo_domain(tmp_path_factory, "offline", clock=clock)


@pytest.fixture(scope="module")
def trust_list(domain: Domain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a verifier downloaded earlier, while it was online: the signed trust list."""
    path = tmp_path_factory.mktemp("download") / "trust-list.json"
    path.write_text(domain.client.get("/pki/trust-list").text)
    return path


@pytest.fixture(scope="module")
def pin(trust_list: Path) -> str:
    """The signer's fingerprint, as the verifier obtained it out of band."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    pem = json.loads(trust_list.read_text())["signer"]["certificate"]
    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()


def resigned(domain: Domain, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` signed by the domain's own trust-list signer."""
    from trust.trustlist import MEDIA_TYPE, sign_document

    body = {k: v for k, v in body.items() if k != "signature"}
    with transaction(domain.services.engine) as session:
        return sign_document(
            domain.services.trust, session, body, typ=MEDIA_TYPE, purpose="test", listener=None
        )


def offline(
    text: str, trust_list: Path, cwd: Path, *extra: str, pin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELICENCE_")}
    env["ELICENCE_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # never used
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = str(root)
    pinned = ["--fingerprint", pin] if pin is not None else []
    return subprocess.run(
        [
            *ELICENCE,
            "verify",
            "--qr",
            text,
            "--offline",
            "--trust-list",
            str(trust_list),
            *pinned,
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def mint(domain: Domain, identifier: str) -> dict[str, Any]:
    with transaction(domain.services.engine) as session:
        shown = domain.services.presentations.mint(session, identifier, actor="test")
    return {"url": shown.url, "expires_at": shown.expires_at}


def test_fresh_presentation_passes_offline(
    domain: Domain, pin: str, trust_list: Path, tmp_path: Path
) -> None:
    issued = domain.issue()
    shown = mint(domain, issued["identifier"])
    result = offline(shown["url"], trust_list, tmp_path, "--json", pin=pin)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["indication"] == "PASSED"
    assert report["extra"]["offline"] is True
    assert report["extra"]["claims"]["identifier"] == issued["identifier"]
    assert report["extra"]["claims"]["expires_at"] == shown["expires_at"].isoformat()
    assert not (tmp_path / "var").exists(), "offline verification must not touch a data directory"


def test_printed_licence_offline_is_genuine_but_unconfirmed(
    domain: Domain, pin: str, trust_list: Path, tmp_path: Path
) -> None:
    issued = domain.issue()
    result = offline(issued["links"]["verify"], trust_list, tmp_path, pin=pin)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith("INDETERMINATE / TRY_LATER")
    assert issued["identifier"] in result.stdout


def test_expired_presentation_fails_offline(
    domain: Domain, pin: str, clock: FixedClock, trust_list: Path, tmp_path: Path
) -> None:
    issued = domain.issue()
    clock.advance(timedelta(minutes=-30))
    try:
        shown = mint(domain, issued["identifier"])
    finally:
        clock.advance(timedelta(minutes=30))
    result = offline(shown["url"], trust_list, tmp_path, pin=pin)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("FAILED / EXPIRED")
    assert "出示码已过期" in result.stdout


def test_bad_signature_fails_offline(
    domain: Domain, pin: str, trust_list: Path, tmp_path: Path
) -> None:
    issued = domain.issue()
    signed = decode(issued["links"]["verify"].rsplit("/", 1)[1])
    attacker = ec.generate_private_key(ec.SECP256R1())
    forged = sign(
        signed.claims, signed.kid, lambda d: attacker.sign(d, ec.ECDSA(Prehashed(hashes.SHA256())))
    )
    result = offline(forged, trust_list, tmp_path, pin=pin)
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED / SIG_CRYPTO_FAILURE")


def test_tampered_text_fails_offline(
    domain: Domain, pin: str, trust_list: Path, tmp_path: Path
) -> None:
    url = domain.issue()["links"]["verify"]
    result = offline(url[:-30], trust_list, tmp_path, pin=pin)
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED / FORMAT_FAILURE")


def test_licence_past_its_dates_fails_offline(
    domain: Domain, pin: str, trust_list: Path, tmp_path: Path
) -> None:
    issued = domain.issue()
    claims = decode(issued["links"]["verify"].rsplit("/", 1)[1]).claims
    old = Claims(
        type=PayloadType.LICENCE,
        identifier=claims.identifier,
        record_digest=claims.record_digest,
        valid_until=(datetime.now(UTC) - timedelta(days=2)).date(),
        issued_at=claims.issued_at,
    )
    code = domain.services.qr_keys.sign(old, purpose="test", listener=None)
    result = offline(code, trust_list, tmp_path, pin=pin)
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED / EXPIRED")


def test_key_missing_from_the_trust_list_is_indeterminate(
    domain: Domain, pin: str, trust_list: Path, tmp_path: Path
) -> None:
    """A genuine list that does not (or no longer) publishes the key the code names."""
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    from licences.payload import key_id

    stale = tmp_path / "other.json"
    body = json.loads(trust_list.read_text())
    body["qr_keys"] = [PublishedKey(key_id(other), other).to_json()]
    stale.write_text(json.dumps(resigned(domain, body)))
    result = offline(domain.issue()["links"]["verify"], stale, tmp_path, pin=pin)
    assert result.returncode == 2
    assert result.stdout.startswith("INDETERMINATE / NO_SIGNING_CERTIFICATE_FOUND")


def test_unusable_trust_list_is_exit_3(
    domain: Domain, pin: str, trust_list: Path, tmp_path: Path
) -> None:
    url = domain.issue()["links"]["verify"]
    missing = offline(url, tmp_path / "nope.json", tmp_path, pin=pin)
    assert missing.returncode == 3 and "trust list" in missing.stderr
    entry = json.loads(trust_list.read_text())["qr_keys"][0]
    lying = tmp_path / "lying.json"
    lying.write_text(
        json.dumps({**json.loads(trust_list.read_text()), "qr_keys": [{**entry, "kid": "00" * 8}]})
    )
    result = offline(url, lying, tmp_path, pin=pin)
    assert result.returncode == 3 and "does not match" in result.stderr


def test_out_of_date_trust_list_passes_nothing(
    domain: Domain, pin: str, trust_list: Path, tmp_path: Path
) -> None:
    shown = mint(domain, domain.issue()["identifier"])
    stale = tmp_path / "stale.json"
    body = {**json.loads(trust_list.read_text()), "next_update": "2020-01-01T00:00:00Z"}
    stale.write_text(json.dumps(resigned(domain, body)))
    result = offline(shown["url"], stale, tmp_path, pin=pin)
    assert result.returncode == 2
    assert result.stdout.startswith("INDETERMINATE / TRY_LATER")
    assert "信任列表已过期" in result.stdout


def test_trust_list_with_a_broken_signature_is_refused(
    domain: Domain, pin: str, trust_list: Path, tmp_path: Path
) -> None:
    """A signed trust list whose signature does not cover its content (a key slipped in)."""
    attacker = ec.generate_private_key(ec.SECP256R1()).public_key()
    from licences.payload import key_id

    document = json.loads(trust_list.read_text())
    document["qr_keys"] = [*document["qr_keys"], PublishedKey(key_id(attacker), attacker).to_json()]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    result = offline(domain.issue()["links"]["verify"], forged, tmp_path, pin=pin)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith("INDETERMINATE / NO_CHAIN_FOUND: ")
    assert "signature does not verify" in result.stdout


def test_the_published_signed_trust_list_serves_offline_checks(
    domain: Domain, pin: str, tmp_path: Path
) -> None:
    """The domain's own signed trust list (GET /pki/trust-list) carries the QR keys."""
    document = domain.client.get("/pki/trust-list").json()
    assert document["qr_keys"] and document["signature"]["signature"]
    from trust.trustlist import verify_trust_list

    assert verify_trust_list(document, pin)
    path = tmp_path / "trust-list.json"
    path.write_text(json.dumps(document))
    shown = mint(domain, domain.issue(0)["identifier"])
    result = offline(shown["url"], path, tmp_path, pin=pin)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_a_pin_nothing_passes(domain: Domain, trust_list: Path, tmp_path: Path) -> None:
    """The genuine list but no --fingerprint and no saved pin: the process says what to do."""
    shown = mint(domain, domain.issue()["identifier"])
    result = offline(shown["url"], trust_list, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith("INDETERMINATE / NO_CHAIN_FOUND: ")
    assert "--fingerprint" in result.stdout
    assert not (tmp_path / "var").exists(), "offline verification must not touch a data directory"
