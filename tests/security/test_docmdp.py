"""A licence carries one certification seal with DocMDP P=1 (no changes allowed). Anything else —
a certification allowing form filling (P=2) or annotations (P=3), or an approval signature — is
refused in both layers: the examination does not validate it (verify/signature.py) and the
decision fails it as NOT_CERTIFIED (verify/pdf.py), even when every other fact is good."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.pdfgen import canvas
from sqlmodel import Session

from core.clock import FixedClock
from tests.security.support import NOW, memory_engine
from verify.pdf import PdfVerifier, Prepared
from verify.report import CheckResult, Indication, SubIndication
from verify.signature import SignatureFacts, TrustAnchors, examine

MOMENT = NOW


@cache
def _seal_material() -> tuple[signers.SimpleSigner, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "测试印章 Test seal")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(4242)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, True, False, False, False),
                       critical=True)
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    asn1_cert = asn1_x509.Certificate.load(der)
    signer = signers.SimpleSigner(
        signing_cert=asn1_cert,
        signing_key=asn1_keys.PrivateKeyInfo.load(key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())),
        cert_registry=SimpleCertificateStore.from_certs([asn1_cert]),
    )
    return signer, der


def anchors() -> TrustAnchors:
    return TrustAnchors((_seal_material()[1],), ())


@cache
def sealed(permission: int | None) -> bytes:
    """A one-page PDF certified with DocMDP P=``permission``, or approval-signed (None)."""
    page = io.BytesIO()
    drawing = canvas.Canvas(page)
    drawing.drawString(100, 700, "licence")
    drawing.showPage()
    drawing.save()
    meta = signers.PdfSignatureMetadata(
        field_name="Seal", certify=permission is not None,
        docmdp_permissions=MDPPerm(permission or 1), md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    out = io.BytesIO()
    signers.PdfSigner(meta, _seal_material()[0]).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(page.getvalue())), output=out)
    return out.getvalue()


def test_a_p1_certification_is_examined() -> None:
    facts = examine(sealed(1), anchors(), moment=MOMENT)
    assert (facts.signatures, facts.docmdp, facts.error) == (1, 1, None)
    assert facts.intact and facts.valid and facts.trusted
    assert facts.coverage == "ENTIRE_FILE" and facts.signer_serial == 4242


@pytest.mark.parametrize(("permission", "docmdp"), [(2, 2), (3, 3), (None, None)],
                         ids=["P=2", "P=3", "approval"])
def test_anything_but_p1_is_not_examined(permission: int | None, docmdp: int | None) -> None:
    facts = examine(sealed(permission), anchors(), moment=MOMENT)
    assert facts == SignatureFacts(moment=MOMENT, signatures=1, docmdp=docmdp)


def verifier() -> PdfVerifier:
    return PdfVerifier(clock=FixedClock(NOW), anchors=lambda _session: anchors(), max_bytes=10**7)


def good_facts(docmdp: int | None) -> SignatureFacts:
    """Every fact a verifier looks at is good, apart from the DocMDP level."""
    facts = examine(sealed(1), anchors(), moment=MOMENT)
    return replace(facts, docmdp=docmdp)


@pytest.mark.parametrize(("docmdp", "named"), [(2, "MDPPerm.FILL_FORMS"), (3, "MDPPerm.ANNOTATE"),
                                               (None, "None")])
def test_the_decision_fails_anything_but_p1_as_not_certified(docmdp: int | None, named: str) -> None:
    prepared = Prepared(data=sealed(1), digest="0" * 64, anchors=anchors(), revoked=(),
                        moment=MOMENT)
    with Session(memory_engine()) as session:
        report = verifier().decide(session, prepared, good_facts(docmdp), "upload")
    assert (report.indication, report.sub_indication) == (Indication.FAILED,
                                                          SubIndication.NOT_CERTIFIED)
    assert [(c.name, c.result, c.detail) for c in report.checks] == [
        ("format", CheckResult.PASSED, "PDF parsed"),
        ("seal_count", CheckResult.PASSED, "exactly one seal"),
        ("certification", CheckResult.FAILED, f"DocMDP {named}; P=1 required"),
    ]


@pytest.mark.parametrize("permission", [2, 3, None], ids=["P=2", "P=3", "approval"])
def test_a_real_upload_that_is_not_p1_fails_as_not_certified(permission: int | None) -> None:
    with Session(memory_engine()) as session:
        report = verifier().verify(session, sealed(permission))
    assert (report.indication, report.sub_indication) == (Indication.FAILED,
                                                          SubIndication.NOT_CERTIFIED)


def test_p1_passes_the_certification_check_and_goes_on() -> None:
    prepared = Prepared(data=sealed(1), digest="0" * 64, anchors=anchors(), revoked=(),
                        moment=MOMENT + timedelta(0))
    with Session(memory_engine()) as session:
        report = verifier().decide(session, prepared, good_facts(1), "upload")
    assert ("certification", CheckResult.PASSED,
            "certification seal, DocMDP P=1 (no changes allowed)") in [
        (c.name, c.result, c.detail) for c in report.checks]
    assert report.sub_indication is not SubIndication.NOT_CERTIFIED
