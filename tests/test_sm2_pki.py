"""The SM2 PKI of the national form (trust.sm2_*), checked by OpenSSL 3 and by the chain builder
the OFD verifier uses.

OpenSSL 3.0's chain verification does not apply the GB/T 35276 default distinguishing ID to the
signatures of CA certificates or CRLs (openssl/openssl#23471, #24167): `openssl verify -CAfile
root -untrusted ca seal` fails on every GB/T 20518 chain, the national CAs' included. So each link
is checked on its own with `-vfyopt distid:1234567812345678` (root → seal CA, seal CA → seal),
and CRL and OCSP signatures with `openssl dgst -sm3 -sigopt distid:...` over the exact signed
bytes; `openssl crl`/`openssl ocsp` parse what we publish.

Attack first: a certificate signed by a foreign SM2 key under our CA's name and key identifier,
one our CA key signed but the domain never recorded, an ECDSA certificate, garbage, a CA
certificate offered as a seal, a time outside the validity, and a seal revoked or suspended.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from sqlmodel import select

from core.audit import AuditEntry
from core.clock import FixedClock
from core.db import reading, transaction
from keys.sm2 import SM2_DEFAULT_ID, Sm2PrivateKey, Sm2PublicKey
from keys.store import KeyAlgorithm, KeyRef
from seals.models import Seal
from tests.domain import Domain, demo_domain
from tests.tools import gmssl_checker, require
from trust.models import CertificateRecord
from trust.profiles import Role, name
from trust.sm2_chain import Sm2ChainFailure, validate_sm2_certificate
from trust.sm2_ocsp import Sm2OcspResponder
from trust.sm2_pki import SM2_ROOT, SM2_SEAL_CA, Sm2SealMaterial
from trust.sm2_trustlist import pem
from trust.sm2_x509 import Sm2CertificateSpec, Sm2Signer, build_certificate
from trust.trustlist import verify_trust_list

pytestmark = pytest.mark.slow  # a demo domain, OpenSSL processes

T0 = datetime.now(UTC).replace(microsecond=0)
DISTID = f"distid:{SM2_DEFAULT_ID.decode()}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Domain, FixedClock]:
    clock = FixedClock(T0)
    return demo_domain(tmp_path_factory, "sm2pki", clock=clock), clock


@pytest.fixture(scope="module")
def domain(world: tuple[Domain, FixedClock]) -> Domain:
    return world[0]


def _openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([require("openssl"), *args], input=data, capture_output=True, check=False)


def _write(path: Path, der: bytes) -> Path:
    path.write_text(pem(der))
    return path


def _seal(domain: Domain, index: int) -> Seal:
    with reading(domain.services.engine) as session:
        return domain.services.seals.seal_for_issuance(
            session, domain.department(index)["code"]
        ).seal


def _material(domain: Domain, index: int) -> Sm2SealMaterial:
    seal = _seal(domain, index)
    with transaction(domain.services.engine) as session:
        return domain.services.trust.sm2.seal_material(
            session, actor="test:ofd", seal_certificate_serial=seal.certificate_serial
        )


def _validate(domain: Domain, der: bytes, at: datetime, role: Role = Role.SEAL) -> Any:
    with reading(domain.services.engine) as session:
        return validate_sm2_certificate(session, domain.services.trust.sm2, der, at, role=role)


def _cas(domain: Domain) -> tuple[bytes, bytes]:
    with reading(domain.services.engine) as session:
        sm2 = domain.services.trust.sm2
        return sm2.ca_certificate_der(session, SM2_ROOT), sm2.ca_certificate_der(
            session, SM2_SEAL_CA
        )


def _dgst_verify(tmp: Path, signer_der: bytes, signature: bytes, signed: bytes) -> bool:
    """OpenSSL's own SM2 check of ``signature`` over ``signed`` by the certificate's key."""
    cert = _write(tmp / "signer.pem", signer_der)
    key = tmp / "signer.pub"
    done = _openssl("x509", "-in", str(cert), "-pubkey", "-noout", "-out", str(key))
    assert done.returncode == 0, done.stderr
    (tmp / "sig").write_bytes(signature)
    (tmp / "data").write_bytes(signed)
    verify = ("dgst", "-sm3", "-verify", str(key), "-sigopt", DISTID, "-signature")
    done = _openssl(*verify, str(tmp / "sig"), str(tmp / "data"))
    return done.returncode == 0 and b"Verified OK" in done.stdout


# -- the hierarchy -------------------------------------------------------------------------


def test_init_makes_an_sm2_root_and_seal_ca_openssl_accepts(domain: Domain, tmp_path: Path) -> None:
    root_der, ca_der = _cas(domain)
    root = _write(tmp_path / "sm2root.pem", root_der)
    ca = _write(tmp_path / "sm2ca.pem", ca_der)
    text = _openssl("x509", "-in", str(ca), "-text", "-noout").stdout.decode()
    assert text.count("Signature Algorithm: SM2-with-SM3") == 2
    assert "ASN1 OID: SM2" in text
    assert "CA:TRUE, pathlen:0" in text and "Certificate Sign, CRL Sign" in text
    assert "/pki/crl/sm2-root.crl" in text and "/pki/ca/sm2-root.crt" in text
    done = _openssl("verify", "-vfyopt", DISTID, "-CAfile", str(root), str(ca))
    assert done.returncode == 0 and b"OK" in done.stdout, done.stderr
    # The root's own signature, by OpenSSL, with the default ID.
    parsed = asn1_x509.Certificate.load(root_der)
    assert _dgst_verify(
        tmp_path,
        root_der,
        bytes(parsed["signature_value"]),
        parsed["tbs_certificate"].dump(),
    )


def test_running_init_again_changes_nothing_in_the_sm2_hierarchy(domain: Domain) -> None:
    before = _cas(domain)
    domain.services.setup.initialise("operator:init")
    assert _cas(domain) == before


# -- seal certificates ---------------------------------------------------------------------


def test_a_seals_sm2_certificate_chains_in_openssl_and_follows_its_ecdsa_certificate(
    domain: Domain, tmp_path: Path
) -> None:
    material = _material(domain, 0)
    again = _material(domain, 0)
    assert again == material  # issued once, on first use
    root_der, ca_der = _cas(domain)
    assert material.maker_certificate_der == ca_der
    seal = _write(tmp_path / "seal.pem", material.certificate_der)
    ca = _write(tmp_path / "sm2ca.pem", ca_der)
    done = _openssl("verify", "-vfyopt", DISTID, "-partial_chain", "-CAfile", str(ca), str(seal))
    assert done.returncode == 0 and b"OK" in done.stdout, done.stderr
    # Another CA as the anchor: refused.
    other = _write(tmp_path / "root.pem", root_der)
    done = _openssl("verify", "-vfyopt", DISTID, "-partial_chain", "-CAfile", str(other), str(seal))
    assert done.returncode != 0
    text = _openssl("x509", "-in", str(seal), "-text", "-noout").stdout.decode()
    assert "Signature Algorithm: SM2-with-SM3" in text
    assert "Digital Signature, Non Repudiation" in text and "CA:FALSE" in text
    assert "/pki/crl/sm2-seal-ca.crl" in text and "OCSP - URI:" in text
    # Each link also by the pure-Python gmssl (Z with the default ID, as GmSSL readers do).
    for child, parent in ((material.certificate_der, ca_der), (ca_der, root_der)):
        checker: Any = gmssl_checker(*Sm2PublicKey.from_certificate_der(parent).point)
        parsed = asn1_x509.Certificate.load(child)
        signature = bytes(parsed["signature_value"]).hex()
        assert checker.verify_with_sm3(signature, parsed["tbs_certificate"].dump())
        assert not checker.verify_with_sm3(signature, parsed["tbs_certificate"].dump() + b"\0")
    # Same subject and expiry as the ECDSA seal certificate it follows.
    with reading(domain.services.engine) as session:
        ecdsa = session.get(CertificateRecord, material.follows_serial)
        assert ecdsa is not None and ecdsa.role == "seal"
        ecdsa_text = _openssl("x509", "-text", "-noout", data=ecdsa.pem.encode()).stdout.decode()
    subject = next(line for line in ecdsa_text.splitlines() if "Subject:" in line)
    assert subject in text
    assert material.seal_code == _seal(domain, 0).code
    # The key is an SM2 key of the soft store, and it signs what the certificate says.
    store = domain.services.trust.keystore
    assert store.algorithm(material.key_ref) is KeyAlgorithm.SM2
    public = Sm2PublicKey.from_certificate_der(material.certificate_der)
    assert store.public_key_der(material.key_ref) == public.spki_der()


def test_issuing_a_seal_certificate_is_audited_with_its_key_uses(domain: Domain) -> None:
    material = _material(domain, 0)
    with reading(domain.services.engine) as session:
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.object_id == material.serial)
        ).all()
        assert [e.action for e in entries] == ["certificate.issue"]
        uses = session.exec(
            select(AuditEntry).where(
                AuditEntry.action == "key.sign",
                AuditEntry.object_id == str(material.maker_key_ref),
            )
        ).all()
    assert any("sm2-issue-seal-certificate" in str(e.detail) for e in uses)


# -- the chain builder (what V uses) ---------------------------------------------------------


def test_the_chain_builder_accepts_our_seal_certificate(domain: Domain) -> None:
    material = _material(domain, 0)
    result = _validate(domain, material.certificate_der, T0 + timedelta(minutes=1))
    assert result.ok, result.reason
    root_der, ca_der = _cas(domain)
    assert result.chain == (material.certificate_der, ca_der, root_der)
    assert result.status.status == "good"


def _forged(domain: Domain, issuer_key: Sm2PrivateKey | None, tmp_store: Any) -> bytes:
    """A seal certificate under our seal CA's name and key identifier, signed by ``issuer_key``
    (a foreign key) or, with None, by our seal CA's real key but never recorded."""
    _, ca_der = _cas(domain)
    ca = asn1_x509.Certificate.load(ca_der)
    subject_key = tmp_store.create("forged-subject", KeyAlgorithm.SM2)
    spec = Sm2CertificateSpec(
        Role.SEAL,
        name("伪造印章 Forged", "伪造单位", "91110000000000000X"),
        tmp_store.public_key_der(subject_key),
        T0 - timedelta(minutes=5),
        timedelta(days=30),
    )
    if issuer_key is None:
        with reading(domain.services.engine) as session:
            _, record = domain.services.trust.sm2.authority(session, SM2_SEAL_CA)
        signer = Sm2Signer(domain.services.trust.keystore, KeyRef.parse(record.key_ref), None, "t")
    else:
        foreign = tmp_store.create("foreign-ca", KeyAlgorithm.SM2)
        signer = Sm2Signer(tmp_store, foreign, None, "t")
    endpoints = domain.services.trust.sm2.endpoints
    return build_certificate(
        spec, issuer=ca, issuer_ca_name=SM2_SEAL_CA, signer=signer, endpoints=endpoints
    )


def test_a_seal_certificate_signed_by_a_foreign_sm2_key_is_refused(
    domain: Domain, tmp_path: Path
) -> None:
    from keys.soft import SoftKeyStore

    store = SoftKeyStore(tmp_path / "foreign", b"foreign")
    forged = _forged(domain, Sm2PrivateKey.generate(), store)
    assert (
        asn1_x509.Certificate.load(forged).issuer
        == asn1_x509.Certificate.load(_cas(domain)[1]).subject
    )
    result = _validate(domain, forged, T0 + timedelta(minutes=1))
    assert result.failure is Sm2ChainFailure.NO_CHAIN_FOUND
    assert result.sub_indication == "NO_CHAIN_FOUND"
    # OpenSSL agrees.
    ca = _write(tmp_path / "ca.pem", _cas(domain)[1])
    cert = _write(tmp_path / "forged.pem", forged)
    done = _openssl("verify", "-vfyopt", DISTID, "-partial_chain", "-CAfile", str(ca), str(cert))
    assert done.returncode != 0


def test_a_certificate_our_ca_key_signed_but_the_domain_never_issued_is_refused(
    domain: Domain, tmp_path: Path
) -> None:
    from keys.soft import SoftKeyStore

    store = SoftKeyStore(tmp_path / "subject", b"subject")
    unrecorded = _forged(domain, None, store)
    result = _validate(domain, unrecorded, T0 + timedelta(minutes=1))
    assert result.failure is Sm2ChainFailure.NO_CHAIN_FOUND
    assert "no record" in result.reason


def test_what_is_not_an_sm2_seal_certificate_is_refused(domain: Domain) -> None:
    at = T0 + timedelta(minutes=1)
    assert _validate(domain, b"\x30\x03\x02\x01\x01", at).failure is Sm2ChainFailure.MALFORMED
    material = _material(domain, 0)
    assert _validate(domain, material.certificate_der + b"\x00", at).failure is (
        Sm2ChainFailure.MALFORMED
    )
    with reading(domain.services.engine) as session:
        ecdsa = session.get(CertificateRecord, material.follows_serial)
        assert ecdsa is not None
    ecdsa_der = base64.b64decode("".join(ecdsa.pem.strip().splitlines()[1:-1]))
    assert _validate(domain, ecdsa_der, at).failure is Sm2ChainFailure.MALFORMED
    # The seal CA (a CA) offered as a seal certificate.
    assert _validate(domain, material.maker_certificate_der, at).failure is (
        Sm2ChainFailure.NOT_CERTIFIED
    )


def test_the_seal_maker_validates_as_a_ca_and_a_seal_certificate_does_not(domain: Domain) -> None:
    material = _material(domain, 0)
    at = T0 + timedelta(minutes=1)
    maker = _validate(domain, material.maker_certificate_der, at, Role.ISSUING_CA)
    assert maker.ok and maker.chain == (material.maker_certificate_der, _cas(domain)[0])
    # A department's seal certificate posing as the seal maker (制章人).
    posing = _validate(domain, material.certificate_der, at, Role.ISSUING_CA)
    assert posing.failure is Sm2ChainFailure.NOT_CERTIFIED


def test_a_time_outside_the_validity_is_refused(domain: Domain) -> None:
    material = _material(domain, 0)
    before = _validate(domain, material.certificate_der, T0 - timedelta(days=1))
    assert before.failure is Sm2ChainFailure.NOT_YET_VALID
    not_after = asn1_x509.Certificate.load(material.certificate_der).not_valid_after
    after = _validate(domain, material.certificate_der, not_after + timedelta(seconds=1))
    assert after.failure is Sm2ChainFailure.EXPIRED


# -- revocation: CRL, OCSP, chain -------------------------------------------------------------


def _crl(domain: Domain) -> bytes:
    response = domain.client.get("/pki/crl/sm2-seal-ca.crl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pkix-crl"
    return response.content


def _ocsp_request(tmp: Path, domain: Domain, certificate_der: bytes) -> bytes:
    issuer = _write(tmp / "issuer.pem", _cas(domain)[1])
    cert = _write(tmp / "cert.pem", certificate_der)
    out = tmp / "req.der"
    done = _openssl(
        "ocsp", "-issuer", str(issuer), "-cert", str(cert), "-reqout", str(out), "-no_nonce"
    )
    assert done.returncode == 0, done.stderr
    return out.read_bytes()


def _ocsp_status(tmp: Path, domain: Domain, certificate_der: bytes) -> tuple[str, bytes]:
    request = _ocsp_request(tmp, domain, certificate_der)
    response = domain.client.post(
        "/pki/ocsp", content=request, headers={"content-type": "application/ocsp-request"}
    )
    assert response.status_code == 200
    parsed = asn1_ocsp.OCSPResponse.load(response.content)
    assert parsed["response_status"].native == "successful"
    basic = parsed.basic_ocsp_response
    assert basic["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    single = basic["tbs_response_data"]["responses"][0]
    return single["cert_status"].name, response.content


def test_crl_and_ocsp_of_a_good_seal_certificate(domain: Domain, tmp_path: Path) -> None:
    material = _material(domain, 0)
    crl_der = _crl(domain)
    crl_file = tmp_path / "ca.crl"
    crl_file.write_bytes(crl_der)
    text = _openssl("crl", "-inform", "DER", "-in", str(crl_file), "-text", "-noout")
    assert text.returncode == 0 and b"Signature Algorithm: SM2-with-SM3" in text.stdout
    serial = material.serial.upper()
    assert serial.encode() not in text.stdout
    crl = asn1_crl.CertificateList.load(crl_der)
    assert _dgst_verify(
        tmp_path, _cas(domain)[1], bytes(crl["signature"]), crl["tbs_cert_list"].dump()
    )
    status, answer = _ocsp_status(tmp_path, domain, material.certificate_der)
    assert status == "good"
    (tmp_path / "resp.der").write_bytes(answer)
    chain = tmp_path / "chain.pem"
    chain.write_text(pem(_cas(domain)[1]) + pem(_cas(domain)[0]))
    parsed = _openssl(
        "ocsp",
        "-respin",
        str(tmp_path / "resp.der"),
        "-resp_text",
        "-CAfile",
        str(chain),
        "-issuer",
        str(tmp_path / "issuer.pem"),
        "-cert",
        str(tmp_path / "cert.pem"),
    )
    assert b"OCSP Response Status: successful" in parsed.stdout, parsed.stderr
    assert b"Signature Algorithm: SM2-with-SM3" in parsed.stdout
    assert b"Cert Status: good" in parsed.stdout
    basic = asn1_ocsp.OCSPResponse.load(answer).basic_ocsp_response
    responder = basic["certs"][0].dump()
    assert _dgst_verify(
        tmp_path, responder, bytes(basic["signature"]), basic["tbs_response_data"].dump()
    )
    # The responder's certificate is the seal CA's delegated SM2 OCSP signer.
    at = T0 + timedelta(minutes=1)
    assert _validate(domain, responder, at, Role.OCSP).ok


def test_a_seal_suspended_then_revoked_is_so_in_the_sm2_form_at_once(
    world: tuple[Domain, FixedClock], tmp_path: Path
) -> None:
    domain, clock = world
    material = _material(domain, 1)
    code = material.seal_code
    sealed_at = clock.now()
    clock.advance(timedelta(minutes=10))
    response = domain.client.post(
        f"/api/v1/seals/{code}/revoke", json={"reason": "certificateHold"}, headers=domain.auth(1)
    )
    assert response.status_code == 200, response.text
    held_at = clock.now()
    later = held_at + timedelta(minutes=1)
    assert _validate(domain, material.certificate_der, later).failure is Sm2ChainFailure.SUSPENDED
    assert _ocsp_status(tmp_path, domain, material.certificate_der)[0] == "revoked"
    assert material.serial.upper().encode() in _crl_text(domain, tmp_path)
    # Resumed: good again, off the CRL.
    clock.advance(timedelta(minutes=1))
    assert domain.client.post(f"/api/v1/seals/{code}/resume", headers=domain.auth(1)).is_success
    assert _validate(domain, material.certificate_der, clock.now()).ok
    assert material.serial.upper().encode() not in _crl_text(domain, tmp_path)
    assert _ocsp_status(tmp_path, domain, material.certificate_der)[0] == "good"
    # Revoked: refused from then on; what was sealed before still chains, with the status now.
    clock.advance(timedelta(minutes=1))
    response = domain.client.post(
        f"/api/v1/seals/{code}/revoke", json={"reason": "keyCompromise"}, headers=domain.auth(1)
    )
    assert response.status_code == 200, response.text
    after = _validate(domain, material.certificate_der, clock.now() + timedelta(seconds=1))
    assert after.failure is Sm2ChainFailure.REVOKED and after.sub_indication == "REVOKED"
    before = _validate(domain, material.certificate_der, sealed_at)
    assert before.ok and before.status.status == "revoked"
    text = _crl_text(domain, tmp_path)
    assert material.serial.upper().encode() in text and b"Key Compromise" in text
    assert _ocsp_status(tmp_path, domain, material.certificate_der)[0] == "revoked"


def _crl_text(domain: Domain, tmp: Path) -> bytes:
    (tmp / "now.crl").write_bytes(_crl(domain))
    done = _openssl("crl", "-inform", "DER", "-in", str(tmp / "now.crl"), "-text", "-noout")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_in_process_ocsp_answer_matches_the_published_one(domain: Domain) -> None:
    material = _material(domain, 0)
    with transaction(domain.services.engine) as session:
        answer = Sm2OcspResponder(domain.services.trust.sm2).status_response(
            session, material.certificate_der
        )
    single = asn1_ocsp.OCSPResponse.load(answer).basic_ocsp_response["tbs_response_data"][
        "responses"
    ][0]
    assert single["cert_id"]["serial_number"].native == int(material.serial, 16)
    assert single["cert_status"].name == "good"


# -- publication -------------------------------------------------------------------------------


def test_the_signed_trust_list_carries_the_sm2_cas_and_seals(domain: Domain) -> None:
    material = _material(domain, 0)
    document = domain.client.get("/pki/trust-list").json()
    assert verify_trust_list(document)  # still signed with the ECDSA trust-list key
    sm2 = document["sm2"]
    root_der, ca_der = _cas(domain)
    assert [ca["name"] for ca in sm2["cas"]] == [SM2_ROOT, SM2_SEAL_CA]
    assert sm2["cas"][0]["certificate"] == pem(root_der)
    assert sm2["cas"][1]["certificate"] == pem(ca_der)
    mine = [s for s in sm2["seals"] if s["serial"] == material.serial]
    assert mine and mine[0]["follows"] == material.follows_serial
    assert mine[0]["status"] == "valid"
    assert domain.client.get("/pki/ca/sm2-root.crt").content == root_der


def test_the_operator_hands_out_the_sm2_root_from_the_command_line(
    domain: Domain, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from api.cli.main import app

    data_dir = Path(domain.settings.data_dir)
    out = tmp_path / "for-the-platform"
    result = CliRunner().invoke(
        app,
        ["trust", "sm2", "--out", str(out), "--data-dir", str(data_dir)],
        env={
            "ELICENCE_KEY_PASSPHRASE": f"test-passphrase-{data_dir.name}",
            "ELICENCE_DATABASE_URL": None,
        },
    )
    assert result.exit_code == 0, result.output
    root_der, ca_der = _cas(domain)
    assert (out / "sm2-root.pem").read_text() == pem(root_der)
    assert (out / "sm2-seal-ca.pem").read_text() == pem(ca_der)
    assert hashlib.sha256(root_der).hexdigest() in result.output
    done = _openssl(
        "verify",
        "-vfyopt",
        DISTID,
        "-CAfile",
        str(out / "sm2-root.pem"),
        str(out / "sm2-seal-ca.pem"),
    )
    assert done.returncode == 0, done.stderr


def test_an_sm2_ocsp_request_by_get_with_a_nonce_gets_it_back(
    domain: Domain, tmp_path: Path
) -> None:
    material = _material(domain, 0)
    issuer = _write(tmp_path / "issuer.pem", _cas(domain)[1])
    cert = _write(tmp_path / "cert.pem", material.certificate_der)
    out = tmp_path / "req.der"
    done = _openssl("ocsp", "-issuer", str(issuer), "-cert", str(cert), "-reqout", str(out))
    assert done.returncode == 0, done.stderr
    request = asn1_ocsp.OCSPRequest.load(out.read_bytes())
    assert request.nonce_value is not None  # openssl adds one by default
    encoded = base64.urlsafe_b64encode(out.read_bytes()).decode()
    response = domain.client.get(f"/pki/ocsp/{encoded}")
    assert response.status_code == 200
    parsed = asn1_ocsp.OCSPResponse.load(response.content)
    assert parsed.nonce_value.native == request.nonce_value.native
    single = parsed.basic_ocsp_response["tbs_response_data"]["responses"][0]
    assert single["cert_status"].name == "good"
    # An oversized nonce (RFC 8954: at most 32 octets) is a malformed request.
    oversized = _with_nonce(out.read_bytes(), b"\xab" * 40)
    answer = domain.client.post("/pki/ocsp", content=oversized)
    assert asn1_ocsp.OCSPResponse.load(answer.content)["response_status"].native == (
        "malformed_request"
    )
    fitting = _with_nonce(out.read_bytes(), b"\xab" * 32)
    answer = domain.client.post("/pki/ocsp", content=fitting)
    assert asn1_ocsp.OCSPResponse.load(answer.content).nonce_value.native == b"\xab" * 32


def _with_nonce(request_der: bytes, nonce: bytes) -> bytes:
    request = asn1_ocsp.OCSPRequest.load(request_der)
    tbs = request["tbs_request"]
    der: bytes = asn1_ocsp.OCSPRequest(
        {
            "tbs_request": {
                "request_list": tbs["request_list"],
                "request_extensions": [{"extn_id": "nonce", "extn_value": nonce}],
            }
        }
    ).dump()
    return der
