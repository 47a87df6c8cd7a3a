"""Uploads are parsed *and validated* in the limited worker process.

The cryptographic validation (pyHanko's signature and timestamp validation, path building,
diff analysis) runs in the worker with the structure inspection; the server only reads the
database before and decides from the facts after. A file whose *validation* is costly — a
certificate bag that sends path building into a factorial search, passing every structure
limit — costs a worker, never the server; a worker killed mid-validation is INDETERMINATE.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pickle
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import MDPPerm
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.pdfgen import canvas
from sqlmodel import select

import verify.isolation as isolation
import verify.signature as signature
from api.app import create_app
from core.db import reading, transaction
from tests.corpus import ATTACKS
from tests.domain import Domain, demo_domain
from tests.worker_signal import announcing
from trust.models import AuthorityRecord
from verify.code import CodeVerifier
from verify.isolation import Inspection, Inspector, Limits, inspect_bytes
from verify.pdf import CachedAnchors, PdfVerifier, TrustAnchors, anchors_from
from verify.report import SubIndication
from verify.service import VerificationService
from verify.signature import Revocation, SignatureFacts, examine


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "isolated")


@pytest.fixture(scope="module")
def sealed(domain: Domain) -> bytes:
    return domain.pdf(domain.issue())


@pytest.fixture(scope="module")
def anchors(domain: Domain) -> TrustAnchors:
    with reading(domain.services.engine) as session:
        trust = domain.services.trust
        return anchors_from(trust.roots(session), trust.intermediates(session))  # type: ignore[arg-type]


def _pdf_verifier(domain: Domain) -> PdfVerifier:
    trust = domain.services.trust

    def load(session: Any) -> TrustAnchors:
        return anchors_from(trust.roots(session), trust.intermediates(session))  # type: ignore[arg-type]

    return PdfVerifier(
        clock=domain.services.clock,
        anchors=CachedAnchors(load),
        max_bytes=domain.settings.max_upload_bytes,
    )


def _service(domain: Domain, inspector: Inspector | None) -> VerificationService:
    services = domain.services
    return VerificationService(
        engine=services.engine,
        pdf=_pdf_verifier(domain),
        code=CodeVerifier(services.clock, services.qr_keys),
        audit=services.audit,
        inspector=inspector,
    )


@pytest.fixture
def serve(domain: Domain) -> Iterator[Any]:
    """A server of the same domain whose worker pool has the given limits; the pool is shut
    down afterwards."""
    inspectors: list[Inspector] = []

    def start(limits: Limits) -> tuple[TestClient, Inspector]:
        inspector = Inspector(limits)
        inspectors.append(inspector)
        services = dataclasses.replace(domain.services, verification=_service(domain, inspector))
        return TestClient(create_app(services=services)), inspector

    yield start
    for inspector in inspectors:
        inspector.close()


def _upload(client: TestClient, data: bytes) -> tuple[int, dict[str, Any]]:
    response = client.post(
        "/api/v1/verify", files={"file": ("licence.pdf", data, "application/pdf")}
    )
    return response.status_code, response.json()


def _path_building_bomb(decoys: int) -> bytes:
    """A one-page PDF with one certification seal (DocMDP P=1) whose CMS carries ``decoys``
    certificates that all have the same subject and issuer and no key identifiers: path
    building from the signer tries every ordering of them (decoys! paths). The file is a few
    kilobytes and passes every structure limit; only validation is costly (8 decoys take ~20 s
    of CPU here, 10 about half an hour)."""
    key = ec.generate_private_key(ec.SECP256R1())
    loop = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Loop")])
    now = datetime.now(UTC)

    def certificate(subject: x509.Name, serial: int) -> asn1_x509.Certificate:
        built = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(loop)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        return asn1_x509.Certificate.load(built.public_bytes(serialization.Encoding.DER))

    signer = signers.SimpleSigner(
        signing_cert=certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Signer")]), 7),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs(
            [certificate(loop, 1000 + i) for i in range(decoys)]
        ),
    )
    page = io.BytesIO()
    drawing = canvas.Canvas(page)
    drawing.drawString(100, 700, "licence")
    drawing.showPage()
    drawing.save()
    meta = signers.PdfSignatureMetadata(
        field_name="Seal",
        certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES,
        md_algorithm="sha256",
    )
    out = io.BytesIO()
    signers.PdfSigner(meta, signer).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(page.getvalue())), output=out
    )
    return out.getvalue()


# --- the pure step ---------------------------------------------------------------------------


def test_examine_gives_plain_picklable_facts(sealed: bytes, anchors: TrustAnchors) -> None:
    moment = datetime.now(UTC)
    facts = examine(sealed, anchors, moment=moment)
    assert pickle.loads(pickle.dumps(facts)) == facts
    assert (facts.signatures, facts.docmdp, facts.error) == (1, 1, None)
    assert facts.intact and facts.valid and facts.trusted and facts.trust_problem is None
    assert facts.coverage == "ENTIRE_REVISION" and facts.modification == "LTA_UPDATES"
    assert facts.docmdp_ok is True
    assert facts.signer_der is not None and facts.chain[0] == facts.signer_der
    assert facts.chain[-1] == anchors.roots[0]  # leaf first, root last
    assert facts.timestamp is not None and facts.timestamp.trusted
    assert facts.archive.count == 1 and facts.archive.proof_time is not None
    assert facts.embedded.certificates and facts.embedded.ocsp_responses
    assert facts.moment == moment


def test_examine_with_another_domains_anchors_reports_why_the_chain_fails(
    sealed: bytes,
) -> None:
    """The same call serves another trust domain: with its roots, this seal is intact and
    valid but does not chain."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Another domain Root CA")])
    now = datetime.now(UTC)
    root = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    foreign = TrustAnchors((root.public_bytes(serialization.Encoding.DER),), ())
    facts = examine(sealed, foreign, moment=now)
    assert facts.intact and facts.valid
    assert not facts.trusted and facts.trust_problem == "NO_CERTIFICATE_CHAIN_FOUND"
    assert facts.signer_der is not None and facts.chain == ()


def test_the_worker_gives_the_same_facts_as_in_process_with_revocations(
    sealed: bytes, anchors: TrustAnchors
) -> None:
    """Revocation data travels into the worker as plain values: a TSA certificate revoked
    before the document timestamp cuts the archive chain, in the worker as in-process."""
    moment = datetime.now(UTC)
    plain = examine(sealed, anchors, moment=moment)
    assert plain.timestamp is not None
    revoked = (
        Revocation(plain.timestamp.signer_serial, plain.timestamp.time - timedelta(days=1), "x"),
    )
    in_process = examine(sealed, anchors, moment=moment, revoked=revoked)
    assert in_process.archive.proof_time is None
    assert "revoked at" in in_process.archive.detail
    inspector = Inspector(Limits(workers=1, wall_seconds=60))
    try:
        assert inspector.examine(sealed, anchors, moment=moment) == plain
        assert inspector.examine(sealed, anchors, moment=moment, revoked=revoked) == in_process
    finally:
        inspector._discard(inspector._executor())


# --- the server never validates an upload itself ---------------------------------------------


def test_with_isolation_the_server_process_never_validates(
    domain: Domain, sealed: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[str] = []

    def forbidden(name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            called.append(name)
            raise AssertionError(f"{name} ran in the server process")

        return call

    for name in (
        "validate_pdf_signature",
        "validate_pdf_timestamp",
        "PdfFileReader",
        "examine",
        "examine_parsed",
        "parse",
    ):
        monkeypatch.setattr(signature, name, forbidden(name))
    monkeypatch.setattr("pikepdf.open", forbidden("pikepdf.open"))

    isolated = _service(domain, Inspector(Limits(workers=2))).verify_pdf(
        sealed, channel="api-upload", actor="public"
    )
    assert isolated.indication.value == "PASSED", isolated.checks
    assert called == []
    # The same patch bites in-process: without isolation the server would have validated.
    with reading(domain.services.engine) as session:
        local = _pdf_verifier(domain).verify(session, sealed, "api-upload")
    assert local.indication.value != "PASSED" and called


def test_reports_are_the_same_with_and_without_isolation(domain: Domain, sealed: bytes) -> None:
    """Whenever the worker gets as far as the facts, the server decides exactly as the
    in-process pipeline does: same indication, message, checks and repository data."""
    isolated = _service(domain, Inspector(Limits(workers=2)))
    local = _pdf_verifier(domain)
    compared = 0
    for data in [sealed] + [a.build(sealed) for a in ATTACKS[:17]]:
        if not inspect_bytes(data, Limits()).ok:
            continue
        a = isolated.verify_pdf(data, channel="api-upload", actor="public")
        with reading(domain.services.engine) as session:
            b = local.verify(session, data, "api-upload")
        assert (a.indication, a.sub_indication, a.message) == (
            b.indication,
            b.sub_indication,
            b.message,
        )
        assert a.checks == b.checks
        assert (a.licence, a.seal) == (b.licence, b.seal)
        compared += 1
    assert compared >= 10


# --- limits hit by validation, and workers killed mid-validation ----------------------------


@pytest.mark.slow
def test_a_file_costly_only_to_validate_is_limit_exceeded_and_the_server_stays_healthy(
    sealed: bytes, serve: Any
) -> None:
    bomb = _path_building_bomb(10)
    assert inspect_bytes(bomb, Limits()).ok  # every structure limit holds
    client, _ = serve(Limits(cpu_seconds=2, wall_seconds=40, workers=1))
    start = time.monotonic()
    status, report = _upload(client, bomb)
    elapsed = time.monotonic() - start
    assert status == 200
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "LIMIT_EXCEEDED")
    assert report["checks"][0]["name"] == "limits" and report["checks"][0]["detail"]
    assert elapsed < 40
    assert client.get("/healthz").status_code == 200
    assert _upload(client, sealed)[1]["indication"] == "PASSED"


HANG = 600  # seconds: only a hung upload takes this long; no check depends on the clock


@pytest.mark.slow
def test_a_worker_killed_mid_validation_is_indeterminate_not_500(
    sealed: bytes, serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker that starts validating the upload's signature is SIGKILLed (the upload is
    retried once on a fresh pool, and that worker is killed too). Workers announce the start of
    validation (tests/worker_signal.py), so the kill never depends on CPU time or the clock."""
    limits = Limits(cpu_seconds=120, wall_seconds=120, workers=1)
    client, _ = serve(limits)
    assert _upload(client, sealed)[1]["indication"] == "PASSED"  # a warm worker
    monkeypatch.setattr(isolation, "inspect_and_examine", announcing(tmp_path))
    result: dict[str, Any] = {}
    bomb = _path_building_bomb(10)  # validation would take about half an hour

    def upload() -> None:
        result["answer"] = _upload(client, bomb)

    thread = threading.Thread(target=upload)
    start = time.monotonic()
    thread.start()
    killed: set[int] = set()
    while thread.is_alive() and time.monotonic() - start < HANG:
        for marker in tmp_path.iterdir():
            if int(marker.name) not in killed:
                os.kill(int(marker.name), signal.SIGKILL)
                killed.add(int(marker.name))
        time.sleep(0.05)
    thread.join(timeout=HANG)
    status, report = result["answer"]
    assert status == 200
    assert killed
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "LIMIT_EXCEEDED")
    assert client.get("/healthz").status_code == 200
    assert _upload(client, sealed)[1]["indication"] == "PASSED"


# --- trust anchors are cached ---------------------------------------------------------------


def test_trust_anchors_are_read_again_only_when_a_ca_changes(
    domain: Domain, anchors: TrustAnchors
) -> None:
    loads: list[int] = []
    trust = domain.services.trust

    def load(session: Any) -> TrustAnchors:
        loads.append(1)
        return anchors_from(trust.roots(session), trust.intermediates(session))  # type: ignore[arg-type]

    cached = CachedAnchors(load)
    engine = domain.services.engine
    for _ in range(3):
        with reading(engine) as session:
            assert cached(session) == anchors
    assert len(loads) == 1
    with transaction(engine) as session:
        seal_ca = session.exec(
            select(AuthorityRecord).where(AuthorityRecord.name == "seal-ca")
        ).one()
        session.add(
            AuthorityRecord(name="seal-ca-2", certificate_serial=seal_ca.certificate_serial)
        )
    try:
        with reading(engine) as session:
            cached(session)
        assert len(loads) == 2  # a new CA row is seen at the next upload
    finally:
        with transaction(engine) as session:
            extra = session.get(AuthorityRecord, "seal-ca-2")
            assert extra is not None
            session.delete(extra)
    with reading(engine) as session:
        cached(session)
    assert len(loads) == 3


def test_facts_type_is_what_the_worker_returns(sealed: bytes, anchors: TrustAnchors) -> None:
    inspector = Inspector(Limits(workers=1, wall_seconds=60))
    try:
        found = inspector.examine(sealed, anchors, moment=datetime.now(UTC))
        refused = inspector.examine(b"%PDF-1.7\nnot really", anchors, moment=datetime.now(UTC))
    finally:
        inspector._discard(inspector._executor())
    assert isinstance(found, SignatureFacts) and found.trusted
    assert isinstance(refused, Inspection) and not refused.ok and refused.check == "format"


def _pdf_with_streams(*streams: tuple[bytes, dict[str, Any]]) -> bytes:
    import pikepdf

    pdf = pikepdf.new()
    pdf.add_blank_page()
    for n, (data, entries) in enumerate(streams):
        stream = pikepdf.Stream(pdf, data)
        for key, value in entries.items():
            stream[key] = value
        pdf.Root[pikepdf.Name(f"/Test{n}")] = pdf.make_indirect(stream)
    out = io.BytesIO()
    pdf.save(out, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return out.getvalue()


@contextlib.contextmanager
def _streams(data: bytes) -> Iterator[list[Any]]:
    """The test streams of ``data`` in the order given, while the file is open."""
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        tests = [key for key in pdf.Root.keys() if key.startswith("/Test")]
        yield [pdf.Root[key] for key in sorted(tests, key=lambda key: int(key[5:]))]


def test_decoded_size_is_what_qpdf_decodes_and_a_bomb_is_stopped_at_the_limit() -> None:
    import zlib

    import pikepdf

    from verify.structure import _decoded_size

    plain = b"BT /F1 12 Tf (licence) Tj ET\n" * 200
    bomb = zlib.compress(b"\0" * (64 * 1024 * 1024), 9)  # 64 MiB from ~64 KiB
    flate = pikepdf.Name.FlateDecode
    data = _pdf_with_streams(
        (zlib.compress(plain), {"/Filter": flate}),
        (zlib.compress(plain), {"/Filter": pikepdf.Array([flate])}),
        (plain, {}),
        (zlib.compress(plain)[:-6], {"/Filter": flate}),  # cut short: qpdf decides
        (bomb, {"/Filter": flate}),
    )
    with _streams(data) as streams:
        *ordinary, bombed = streams
        for stream in ordinary[:3]:
            assert _decoded_size(stream, 10**9) == len(stream.read_bytes()) == len(plain)
        try:
            qpdf: int | None = len(ordinary[3].read_bytes())
        except pikepdf.PdfError:
            qpdf = None
        if qpdf is None:
            with pytest.raises(pikepdf.PdfError):
                _decoded_size(ordinary[3], 10**9)
        else:
            assert _decoded_size(ordinary[3], 10**9) == qpdf
        counted = _decoded_size(bombed, 1024 * 1024)
        assert 1024 * 1024 < counted <= 1024 * 1024 + 64 * 1024  # stopped just past the budget
    refusal = inspect_bytes(data, Limits(max_stream_bytes=8 * 1024 * 1024))
    assert not refusal.ok and refusal.sub is SubIndication.LIMIT_EXCEEDED
    assert "decoded streams" in refusal.detail
