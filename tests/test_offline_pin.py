"""Offline verification trusts only a pinned trust-list signer.

``elicence verify --qr TEXT --offline --trust-list FILE --fingerprint SHA256``: the list's signer
certificate must have the pinned SHA-256, its JWS must verify under that certificate (``typ``,
algorithm and signature length checked), and its ``next_update`` must be present and ahead.
Otherwise nothing is PASSED: INDETERMINATE (exit 2) with one line saying why. A pin can also be
saved once with ``elicence trust pin SHA256``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner, Result

from api.cli.main import app
from core.clock import FixedClock
from core.db import transaction
from licences.payload import decode, key_id, sign
from licences.qrkeys import PublishedKey
from tests.domain import Domain, demo_domain
from trust.federation_jws import STATUS_TYPE
from trust.profiles import TRUST_LIST_SIGNING
from trust.trustlist import FORMAT, MEDIA_TYPE, b64url, b64url_decode, canonical, sign_document
from trust.trustlist import signing_input as jws_input


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    return demo_domain(tmp_path_factory, "pin", clock=clock)


@pytest.fixture(scope="module")
def genuine(domain: Domain) -> dict[str, Any]:
    """The domain's signed trust list, as a verifier downloaded it while online."""
    document: dict[str, Any] = domain.client.get("/pki/trust-list").json()
    return document


@pytest.fixture(scope="module")
def pin(genuine: dict[str, Any]) -> str:
    """Obtained out of band: the SHA-256 of the real trust-list signer certificate (DER)."""
    certificate = x509.load_pem_x509_certificate(genuine["signer"]["certificate"].encode())
    return certificate.fingerprint(hashes.SHA256()).hex()


@pytest.fixture
def presentation(domain: Domain) -> str:
    """A fresh presentation QR: the one kind of code that can be PASSED offline."""
    identifier = domain.issue()["identifier"]
    with transaction(domain.services.engine) as session:
        shown = domain.services.presentations.mint(session, identifier, actor="test")
    return shown.url


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def offline(text: str, trust_list: Path, data_dir: Path, *extra: str) -> Result:
    """The verifier's laptop: its own (empty) data directory, no server, no database."""
    return CliRunner().invoke(
        app,
        [
            "verify",
            "--qr",
            text,
            "--offline",
            "--trust-list",
            str(trust_list),
            "--data-dir",
            str(data_dir),
            *extra,
        ],
    )


def first_line(result: Result) -> str:
    return result.stdout.splitlines()[0] if result.stdout else result.output


def resigned(domain: Domain, body: dict[str, Any], typ: str = MEDIA_TYPE) -> dict[str, Any]:
    """``body`` signed by the domain's real trust-list signer."""
    body = {k: v for k, v in body.items() if k != "signature"}
    with transaction(domain.services.engine) as session:
        return sign_document(
            domain.services.trust, session, body, typ=typ, purpose="test", listener=None
        )


# -- the attacker's own list ---------------------------------------------------------------------


def attacker_list(genuine: dict[str, Any]) -> tuple[dict[str, Any], ec.EllipticCurvePrivateKey]:
    """A well-formed list an attacker signs with their own key, naming their own certificate as
    signer and root, and publishing their own QR key."""
    signer_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "示范省电子证照信任域")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([TRUST_LIST_SIGNING]), critical=False)
        .sign(signer_key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    sha = certificate.fingerprint(hashes.SHA256()).hex()
    qr_key = ec.generate_private_key(ec.SECP256R1())
    body = {
        **{k: v for k, v in genuine.items() if k != "signature"},
        "format": FORMAT,
        "cas": [{"name": "root", "certificate": pem, "sha256": sha, "crl_url": None}],
        "seals": [],
        "signer": {"certificate": pem, "sha256": sha},
        "qr_keys": [PublishedKey(key_id(qr_key.public_key()), qr_key.public_key()).to_json()],
    }
    header = {"alg": "ES256", "kid": sha, "typ": MEDIA_TYPE}
    protected = b64url(canonical(header))
    r, s = utils.decode_dss_signature(
        signer_key.sign(jws_input(body, protected), ec.ECDSA(hashes.SHA256()))
    )
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return {**body, "signature": {"protected": protected, "signature": b64url(raw)}}, qr_key


def forged_presentation(genuine_code: str, qr_key: ec.EllipticCurvePrivateKey) -> str:
    """The same claims, signed with the attacker's QR key under the attacker's key id."""
    signed = decode(genuine_code.rsplit("/", 1)[1])
    return sign(
        signed.claims,
        key_id(qr_key.public_key()),
        lambda digest: qr_key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))),
    )


def test_attackers_self_signed_list_is_not_trusted_with_the_real_pin(
    genuine: dict[str, Any], pin: str, presentation: str, tmp_path: Path
) -> None:
    document, qr_key = attacker_list(genuine)
    path = write(tmp_path / "evil.json", document)
    result = offline(
        forged_presentation(presentation, qr_key), path, tmp_path, "--fingerprint", pin
    )
    assert result.exit_code == 2, result.output
    assert first_line(result).startswith("INDETERMINATE / NO_CHAIN_FOUND: ")
    assert "指纹不符" in first_line(result) and pin in first_line(result)


def test_attackers_self_signed_list_is_not_trusted_without_a_pin(
    genuine: dict[str, Any], presentation: str, tmp_path: Path
) -> None:
    document, qr_key = attacker_list(genuine)
    path = write(tmp_path / "evil.json", document)
    result = offline(forged_presentation(presentation, qr_key), path, tmp_path / "laptop")
    assert result.exit_code == 2, result.output
    assert first_line(result).startswith("INDETERMINATE / NO_CHAIN_FOUND: ")
    assert "--fingerprint" in first_line(result) and "elicence trust pin" in first_line(result)
    assert not (tmp_path / "laptop").exists(), "verification must not write a data directory"


def test_attackers_list_fails_only_on_the_pin(
    genuine: dict[str, Any], pin: str, presentation: str, tmp_path: Path
) -> None:
    """The attacker's list is well formed: pinned to the attacker it verifies, so the refusals
    above come from the pin, not the file. The forged code is no use against the genuine list."""
    document, qr_key = attacker_list(genuine)
    path = write(tmp_path / "evil.json", document)
    own = document["signer"]["sha256"]
    result = offline(
        forged_presentation(presentation, qr_key), path, tmp_path, "--fingerprint", own
    )
    assert first_line(result).startswith("PASSED"), "the attacker's pin trusts the attacker"
    genuine_path = write(tmp_path / "genuine.json", genuine)
    forged = forged_presentation(presentation, qr_key)
    refused = offline(forged, genuine_path, tmp_path, "--fingerprint", pin)
    assert refused.exit_code == 2
    assert first_line(refused).startswith("INDETERMINATE / NO_SIGNING_CERTIFICATE_FOUND")


# -- unsigned, stale or undated lists ------------------------------------------------------------


def test_unsigned_key_file_is_refused(
    domain: Domain, pin: str, presentation: str, tmp_path: Path
) -> None:
    path = tmp_path / "qr-keys.json"
    path.write_text(domain.client.get("/pki/qr-keys").text)
    result = offline(presentation, path, tmp_path, "--fingerprint", pin)
    assert result.exit_code == 2, result.output
    assert first_line(result).startswith("INDETERMINATE / NO_CHAIN_FOUND: ")
    assert "未签名" in first_line(result) and "unsigned" in first_line(result)


def test_list_with_next_update_deleted_is_refused(
    genuine: dict[str, Any], pin: str, presentation: str, tmp_path: Path
) -> None:
    undated = {k: v for k, v in genuine.items() if k != "next_update"}
    result = offline(
        presentation, write(tmp_path / "undated.json", undated), tmp_path, "--fingerprint", pin
    )
    assert result.exit_code == 2, result.output
    assert first_line(result).startswith("INDETERMINATE / NO_CHAIN_FOUND: ")
    assert "签名无效" in first_line(result)


def test_list_signed_without_next_update_passes_nothing(
    domain: Domain, genuine: dict[str, Any], pin: str, presentation: str, tmp_path: Path
) -> None:
    """Even the real signer's list is no use offline when it does not say until when."""
    undated = resigned(domain, {k: v for k, v in genuine.items() if k != "next_update"})
    result = offline(
        presentation, write(tmp_path / "undated.json", undated), tmp_path, "--fingerprint", pin
    )
    assert result.exit_code == 2, result.output
    assert first_line(result).startswith("INDETERMINATE / TRY_LATER: ")
    assert "next_update" in first_line(result)


def test_list_past_its_next_update_passes_nothing(
    domain: Domain, genuine: dict[str, Any], pin: str, presentation: str, tmp_path: Path
) -> None:
    stale = resigned(domain, {**genuine, "next_update": "2020-01-01T00:00:00Z"})
    result = offline(
        presentation, write(tmp_path / "stale.json", stale), tmp_path, "--fingerprint", pin
    )
    assert result.exit_code == 2, result.output
    assert first_line(result).startswith("INDETERMINATE / TRY_LATER: ")
    assert "信任列表已过期" in first_line(result)


# -- strict JWS checks ---------------------------------------------------------------------------


def test_another_document_type_signed_by_the_real_signer_is_not_a_trust_list(
    domain: Domain, genuine: dict[str, Any], pin: str, presentation: str, tmp_path: Path
) -> None:
    """A licence-status answer (same signer, its own ``typ``) cannot stand in for the list."""
    other = resigned(domain, genuine, typ=STATUS_TYPE)
    result = offline(
        presentation, write(tmp_path / "other.json", other), tmp_path, "--fingerprint", pin
    )
    assert result.exit_code == 2, result.output
    assert first_line(result).startswith("INDETERMINATE / NO_CHAIN_FOUND: ")


def test_signature_of_the_wrong_length_is_refused(
    genuine: dict[str, Any], pin: str, presentation: str, tmp_path: Path
) -> None:
    """r ‖ 0x00 ‖ s reads as the same (r, s) to a lax parser; ES256 is exactly 64 bytes."""
    raw = b64url_decode(genuine["signature"]["signature"])
    padded = {
        **genuine,
        "signature": {**genuine["signature"], "signature": b64url(raw[:32] + b"\0" + raw[32:])},
    }
    result = offline(
        presentation, write(tmp_path / "padded.json", padded), tmp_path, "--fingerprint", pin
    )
    assert result.exit_code == 2, result.output
    assert first_line(result).startswith("INDETERMINATE / NO_CHAIN_FOUND: ")


# -- the genuine list, pinned --------------------------------------------------------------------


def test_genuine_list_with_the_right_pin_passes(
    genuine: dict[str, Any], pin: str, presentation: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "trust-list.json", genuine)
    result = offline(presentation, path, tmp_path / "laptop", "--fingerprint", pin.upper())
    assert result.exit_code == 0, result.output
    assert first_line(result).startswith("PASSED: ")


def test_malformed_fingerprint_is_unreadable_input(
    genuine: dict[str, Any], presentation: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "trust-list.json", genuine)
    result = offline(presentation, path, tmp_path, "--fingerprint", "abc")
    assert result.exit_code == 3
    assert "64" in result.stderr and "fingerprint" in result.stderr


def test_saved_pin_is_used_and_a_wrong_one_passes_nothing(
    genuine: dict[str, Any], pin: str, presentation: str, tmp_path: Path
) -> None:
    laptop = tmp_path / "laptop"
    path = write(tmp_path / "trust-list.json", genuine)
    saved = CliRunner().invoke(app, ["trust", "pin", pin, "--data-dir", str(laptop)])
    assert saved.exit_code == 0, saved.output
    assert pin in saved.stdout
    assert offline(presentation, path, laptop).exit_code == 0
    wrong = CliRunner().invoke(app, ["trust", "pin", "ab" * 32, "--data-dir", str(laptop)])
    assert wrong.exit_code == 0, wrong.output
    result = offline(presentation, path, laptop)
    assert result.exit_code == 2
    assert first_line(result).startswith("INDETERMINATE / NO_CHAIN_FOUND: ")
    refused = CliRunner().invoke(app, ["trust", "pin", "not-hex", "--data-dir", str(laptop)])
    assert refused.exit_code == 1 and "fingerprint" in refused.stderr
    assert (laptop / "trust-list-pin.json").exists()
    assert json.loads((laptop / "trust-list-pin.json").read_text())["fingerprint"] == "ab" * 32
