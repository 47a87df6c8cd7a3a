"""Trust services against a really running service: ``elicence init --demo`` makes the data
dir, uvicorn serves it on a free loopback port, and independent tools (openssl, pdfsig,
pyHanko's own validator) check what it publishes."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from sqlmodel import select

from api.container import Services, build_services
from api.settings import Settings
from core.db import reading
from tests.tools import require
from trust.models import CertificateRecord
from trust.profiles import Role
from trust.trustlist import verify_trust_list
from trust.tsa import TimeStampResp

pytestmark = pytest.mark.slow  # a server in a process of its own, OpenSSL

ROOT_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass
class Live:
    base: str
    data: Path
    env: dict[str, str]
    services: Services
    credentials: dict[str, Any]
    pem: Path  # directory of PEM files
    before: dict[str, Any] = field(default_factory=dict)  # state seen before the revocation

    def department(self, index: int) -> dict[str, Any]:
        return self.credentials["departments"][index]  # type: ignore[no-any-return]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "elicence"), *args, "--data-dir", str(self.data)],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def seal_record(self, index: int) -> CertificateRecord:
        code = self.department(index)["code"]
        with reading(self.services.engine) as session:
            context = self.services.seals.seal_for_issuance(session, code)
            record = session.get(CertificateRecord, context.seal.certificate_serial)
        assert record is not None
        return record


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_pem(path: Path, certificate: x509.Certificate) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    openssl = require("openssl")
    assert openssl
    base_dir = tmp_path_factory.mktemp("live")
    data = base_dir / "data"
    data.mkdir(mode=0o700)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "ELICENCE_DATA_DIR": str(data),
        "ELICENCE_PUBLIC_BASE_URL": base,
        "ELICENCE_KEY_PASSPHRASE": "live-test-passphrase",
    }
    subprocess.run(
        [str(BIN / "elicence"), "init", "--demo", "--data-dir", str(data)],
        env=env,
        check=True,
        capture_output=True,
    )
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "api.asgi:app", "--host", "127.0.0.1"),
            *("--port", str(port), "--log-level", "warning"),
        ],
        env=env,
        cwd=ROOT_DIR,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.2)
        settings = Settings(
            data_dir=data, public_base_url=base, key_passphrase="live-test-passphrase"
        )  # type: ignore[arg-type]
        services = build_services(settings)
        pem = base_dir / "pem"
        pem.mkdir()
        with reading(services.engine) as session:
            _write_pem(pem / "root.pem", services.trust.authority(session, "root")[0])
            _write_pem(pem / "seal-ca.pem", services.trust.authority(session, "seal-ca")[0])
            tsa, _ = services.trust.service_certificate(session, Role.TSA, "tsa")
            _write_pem(pem / "tsa.pem", tsa)
        credentials = json.loads((data / "demo-credentials.json").read_text())
        yield Live(base, data, env, services, credentials, pem)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _seal_pem(live: Live, index: int, name: str) -> Path:
    record = live.seal_record(index)
    path = live.pem / name
    path.write_text(record.pem)
    return path


def openssl_ocsp(live: Live, *args: str) -> str:
    openssl = require("openssl")
    result = subprocess.run(
        [
            *(openssl, "ocsp", "-url", f"{live.base}/pki/ocsp"),
            *("-CAfile", str(live.pem / "root.pem")),
            *("-verify_other", str(live.pem / "seal-ca.pem")),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


# -- OCSP ----------------------------------------------------------------------------------


def test_openssl_ocsp_says_good_for_a_live_seal(live: Live) -> None:
    seal = _seal_pem(live, 0, "seal0.pem")
    out = openssl_ocsp(live, "-issuer", str(live.pem / "seal-ca.pem"), "-cert", str(seal))
    assert "Response verify OK" in out
    assert f"{seal}: good" in out
    assert "This Update:" in out and "Next Update:" in out
    assert "WARNING" not in out  # the nonce openssl sent came back


def test_openssl_ocsp_answers_for_the_seal_ca_under_the_root(live: Live) -> None:
    out = openssl_ocsp(
        live, "-issuer", str(live.pem / "root.pem"), "-cert", str(live.pem / "seal-ca.pem")
    )
    assert "Response verify OK" in out
    assert "seal-ca.pem: good" in out


def test_openssl_ocsp_says_unknown_for_a_serial_never_issued(live: Live) -> None:
    out = openssl_ocsp(
        live, "-issuer", str(live.pem / "seal-ca.pem"), "-serial", "0x5eed5eed5eed5eed5eed"
    )
    assert "Response verify OK" in out
    assert "0x5eed5eed5eed5eed5eed: unknown" in out


def test_openssl_ocsp_says_unknown_for_a_serial_of_another_ca(live: Live) -> None:
    """The TSA certificate is the root's, not the seal CA's: asked of the seal CA, never good."""
    tsa = x509.load_pem_x509_certificate((live.pem / "tsa.pem").read_bytes())
    serial = hex(tsa.serial_number)
    out = openssl_ocsp(live, "-issuer", str(live.pem / "seal-ca.pem"), "-serial", serial)
    assert f"{serial}: unknown" in out


def _request(certificate: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA256())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def test_ocsp_get_form_with_sha256_certid_and_nonce(live: Live) -> None:
    seal = x509.load_pem_x509_certificate(live.seal_record(0).pem.encode())
    issuer = x509.load_pem_x509_certificate((live.pem / "seal-ca.pem").read_bytes())
    nonce = os.urandom(16)
    encoded = urllib.parse.quote(base64.b64encode(_request(seal, issuer, nonce)).decode(), safe="")
    response = httpx.get(f"{live.base}/pki/ocsp/{encoded}", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/ocsp-response"
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == seal.serial_number
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert answer.next_update_utc is not None and answer.this_update_utc is not None
    assert answer.next_update_utc - answer.this_update_utc <= timedelta(minutes=10)
    (responder,) = answer.certificates
    assert responder.issuer == issuer.subject
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)


def test_ocsp_refuses_malformed_requests_and_foreign_issuers(live: Live) -> None:
    garbage = httpx.post(f"{live.base}/pki/ocsp", content=b"\x30\x03junk", timeout=10)
    assert garbage.status_code == 200
    status = ocsp.load_der_ocsp_response(garbage.content).response_status
    assert status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    key = ec.generate_private_key(ec.SECP256R1())
    foreign_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Foreign CA")])
    now = datetime.now(UTC)
    foreign = (
        x509.CertificateBuilder()
        .subject_name(foreign_name)
        .issuer_name(foreign_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    answer = httpx.post(f"{live.base}/pki/ocsp", content=_request(foreign, foreign, None))
    status = ocsp.load_der_ocsp_response(answer.content).response_status
    assert status is ocsp.OCSPResponseStatus.UNAUTHORIZED


# -- sealed licences checked by other tools -----------------------------------------------


@pytest.fixture(scope="module")
def sealed(live: Live) -> bytes:
    department = live.department(0)
    headers = {"Authorization": f"Bearer {department['api_key']}"}
    issued = httpx.post(
        f"{live.base}/api/v1/licences",
        json=department["sample_request"],
        headers=headers,
        timeout=60,
    )
    assert issued.status_code == 201, issued.text
    pdf = httpx.get(issued.json()["links"]["pdf"], headers=headers, timeout=30)
    assert pdf.status_code == 200
    return pdf.content


def test_pdfsig_shows_the_seal_valid(sealed: bytes, tmp_path: Path) -> None:
    pdfsig = require("pdfsig")
    path = tmp_path / "licence.pdf"
    path.write_bytes(sealed)
    out = subprocess.run([pdfsig, str(path)], capture_output=True, text=True, check=False).stdout
    first = out.split("Signature #2")[0]
    assert "Signature Field Name: Seal" in first
    assert "Signature Validation: Signature is Valid." in first
    assert "Signature #2" in out  # the document timestamp (B-LTA)


def test_pyhanko_with_only_the_root_and_no_network_finds_a_b_lta_seal(
    live: Live, sealed: bytes
) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
    from pyhanko.sign.validation.ades import ades_lta_validation
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy
    from pyhanko_certvalidator.registry import SimpleTrustManager

    root = asn1_x509.Certificate.load(
        x509.load_pem_x509_certificate((live.pem / "root.pem").read_bytes()).public_bytes(
            serialization.Encoding.DER
        )
    )
    reader = PdfFileReader(io.BytesIO(sealed))
    (seal,) = reader.embedded_regular_signatures
    (doc_ts,) = reader.embedded_timestamp_signatures
    dss = DocumentSecurityStore.read_dss(reader)
    assert len(dss.ocsps) >= 3  # seal, seal CA and TSA certificates

    def context():  # type: ignore[no-untyped-def]
        # Hard-fail: every certificate must be covered by the revocation data in the DSS.
        return dss.as_validation_context(
            {"trust_roots": [root], "allow_fetching": False, "revocation_mode": "hard-fail"}
        )

    status = validate_pdf_signature(seal, context())
    assert status.intact and status.valid and status.trusted and not status.revoked
    assert status.coverage is SignatureCoverageLevel.ENTIRE_REVISION
    assert status.docmdp_ok
    token = status.timestamp_validity
    assert token is not None and token.intact and token.valid and token.trusted
    stamp = validate_pdf_timestamp(doc_ts, context())
    assert stamp.intact and stamp.valid and stamp.trusted
    assert stamp.timestamp >= token.timestamp

    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[root]),
        revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy.from_legacy("hard-fail")),
    )
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
        )
    )
    result = asyncio.run(ades_lta_validation(seal, spec))
    assert result.ades_subindic.status.name == "PASSED", result.failure_msg
    assert result.oldest_evidence_record_timestamp == stamp.timestamp
    assert result.signature_timestamp_status is not None


# -- RFC 3161 ------------------------------------------------------------------------------


def _ts(live: Live, tmp_path: Path, digest: str) -> tuple[Path, Path, str]:
    openssl = require("openssl")
    data = tmp_path / "data.bin"
    data.write_bytes(b"elicence timestamp test " + os.urandom(8))
    query = tmp_path / f"{digest}.tsq"
    subprocess.run(
        [openssl, "ts", "-query", "-data", str(data), f"-{digest}", "-cert", "-out", str(query)],
        check=True,
        capture_output=True,
    )
    response = httpx.post(
        f"{live.base}/pki/tsa",
        content=query.read_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    reply = tmp_path / f"{digest}.tsr"
    reply.write_bytes(response.content)
    text = subprocess.run(
        [openssl, "ts", "-reply", "-in", str(reply), "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return data, reply, text


@pytest.mark.parametrize("digest", ["sha256", "sha384", "sha512"])
def test_openssl_verifies_a_timestamp_against_the_tsa_chain(
    live: Live, tmp_path: Path, digest: str
) -> None:
    openssl = require("openssl")
    data, reply, text = _ts(live, tmp_path, digest)
    assert "Status: Granted." in text
    assert "Policy OID: 2.999.3161.1" in text
    assert "Accuracy: 0x01 seconds" in text
    assert f"Hash Algorithm: {digest}" in text
    result = subprocess.run(
        [
            *(openssl, "ts", "-verify", "-data", str(data), "-in", str(reply)),
            *("-CAfile", str(live.pem / "root.pem")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Verification: OK" in result.stdout, result.stdout + result.stderr


def test_timestamp_serials_are_unique(live: Live, tmp_path: Path) -> None:
    serials = set()
    for i in range(3):
        path = tmp_path / str(i)
        path.mkdir()
        _, _, text = _ts(live, path, "sha256")
        serials.add(re.search(r"Serial number: (\S+)", text).group(1))  # type: ignore[union-attr]
    assert len(serials) == 3


def test_tsa_refuses_what_it_cannot_answer(live: Live, tmp_path: Path) -> None:
    _, _, text = _ts(live, tmp_path, "sha1")
    assert "Status: Rejected." in text
    assert "unrecognized or unsupported algorithm identifier" in text
    bad = httpx.post(f"{live.base}/pki/tsa", content=b"not a request", timeout=10)
    answer = TimeStampResp.load(bad.content)
    assert answer["status"]["status"].native == "rejection"
    assert answer["status"]["fail_info"].native == {"bad_request"}


# -- revocation through the CLI, seen by OCSP, CRL and the trust list ---------------------


@pytest.fixture(scope="module")
def revoked(live: Live) -> CertificateRecord:
    """The second demo department's seal, revoked with keyCompromise by the operator CLI."""
    record = live.seal_record(1)
    live.before["trust_list"] = httpx.get(f"{live.base}/pki/trust-list", timeout=10).json()
    crl = httpx.get(f"{live.base}/pki/crl/seal-ca.crl", timeout=10).content
    number = x509.load_der_x509_crl(crl).extensions.get_extension_for_class(x509.CRLNumber)
    live.before["crl_number"] = number.value.crl_number
    with reading(live.services.engine) as session:
        code = live.services.seals.seal_for_issuance(session, live.department(1)["code"]).seal.code
    result = live.cli("seals", "revoke", code, "--reason", "keyCompromise")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"seal": code, "status": "revoked"}
    return record


def test_openssl_ocsp_says_revoked_with_time_and_reason(
    live: Live, revoked: CertificateRecord
) -> None:
    path = live.pem / "revoked.pem"
    path.write_text(revoked.pem)
    out = openssl_ocsp(live, "-issuer", str(live.pem / "seal-ca.pem"), "-cert", str(path))
    assert "Response verify OK" in out
    assert f"{path}: revoked" in out
    assert "Reason: keyCompromise" in out
    assert "Revocation Time:" in out


def test_openssl_parses_each_crl_and_shows_the_revoked_serial(
    live: Live, revoked: CertificateRecord, tmp_path: Path
) -> None:
    openssl = require("openssl")
    texts = {}
    for ca in ("root", "seal-ca"):
        der = httpx.get(f"{live.base}/pki/crl/{ca}.crl", timeout=10).content
        path = tmp_path / f"{ca}.crl"
        path.write_bytes(der)
        result = subprocess.run(
            [openssl, "crl", "-inform", "DER", "-in", str(path), "-text", "-noout"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        texts[ca] = result.stdout
        crl = x509.load_der_x509_crl(der)
        assert crl.next_update_utc is not None
        hours = (crl.next_update_utc - crl.last_update_utc).total_seconds() / 3600
        assert hours <= 24
    assert f"SERIAL NUMBER {revoked.serial.upper()}" in texts["seal-ca"].replace(":", "").upper()
    assert "Key Compromise" in texts["seal-ca"]
    assert "No Revoked Certificates" in texts["root"]
    number = x509.load_der_x509_crl(
        httpx.get(f"{live.base}/pki/crl/seal-ca.crl", timeout=10).content
    ).extensions.get_extension_for_class(x509.CRLNumber)
    assert number.value.crl_number > live.before["crl_number"]


def test_trust_list_is_signed_and_shows_the_revoked_seal(
    live: Live, revoked: CertificateRecord
) -> None:
    document = httpx.get(f"{live.base}/pki/trust-list", timeout=10).json()
    assert verify_trust_list(document, pinned_sha256=document["signer"]["sha256"])
    assert document["sequence"] > live.before["trust_list"]["sequence"]
    assert {c["name"] for c in document["cas"]} == {"root", "seal-ca"}
    assert all(c["ocsp_url"] == f"{live.base}/pki/ocsp" for c in document["cas"])
    assert document["tsa"]["url"] == f"{live.base}/pki/tsa"
    by_serial = {s["serial"]: s for s in document["seals"]}
    assert by_serial[revoked.serial]["status"] == "revoked"
    assert by_serial[revoked.serial]["revocation_reason"] == "keyCompromise"
    good = live.seal_record(0)
    assert by_serial[good.serial]["status"] == "valid"
    assert by_serial[good.serial]["department"]["code"] == live.department(0)["code"]
    again = httpx.get(f"{live.base}/pki/trust-list", timeout=10).json()
    assert again["sequence"] == document["sequence"]  # unchanged content, same list
    tampered = json.loads(json.dumps(document))
    tampered["seals"][0]["status"] = "valid" if tampered["seals"][0]["status"] != "valid" else "x"
    assert not verify_trust_list(tampered)
    assert not verify_trust_list(document, pinned_sha256="00" * 32)


def test_revoked_seal_cannot_issue(live: Live, revoked: CertificateRecord) -> None:
    department = live.department(1)
    response = httpx.post(
        f"{live.base}/api/v1/licences",
        json=department["sample_request"],
        headers={"Authorization": f"Bearer {department['api_key']}"},
        timeout=30,
    )
    assert response.status_code == 403, response.text


def test_archive_refresh_finds_nothing_due_on_a_new_domain(live: Live) -> None:
    result = live.cli("archive", "refresh")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "refreshed: 0" in result.stderr


def test_init_again_adds_nothing(live: Live) -> None:
    with reading(live.services.engine) as session:
        before = len(session.exec(select(CertificateRecord)).all())
    result = live.cli("init")
    assert result.returncode == 0, result.stderr
    with reading(live.services.engine) as session:
        after = len(session.exec(select(CertificateRecord)).all())
    assert after == before
