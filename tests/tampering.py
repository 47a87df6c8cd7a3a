"""Builds tampered variants of a sealed licence, each the way an attacker would."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm


def flip_byte_in_signed_range(pdf: bytes) -> bytes:
    """Change one character inside the signed bytes, keeping the file well-formed."""
    marker = pdf.find(b"ReportLab")
    assert marker > 0
    return pdf[:marker] + b"X" + pdf[marker + 1 :]


def _writer(pdf: bytes) -> IncrementalPdfFileWriter:
    return IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)


def _out(writer: IncrementalPdfFileWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def add_annotation(pdf: bytes) -> bytes:
    writer = _writer(pdf)
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    annot = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Annot"),
            generic.NameObject("/Subtype"): generic.NameObject("/FreeText"),
            generic.NameObject("/Rect"): generic.ArrayObject(
                [generic.FloatObject(v) for v in (100, 400, 400, 450)]
            ),
            generic.NameObject("/Contents"): generic.TextStringObject("有效期至2099年"),
            generic.NameObject("/DA"): generic.TextStringObject("/Helv 24 Tf 0 g"),
        }
    )
    ref = writer.add_object(annot)
    annots = page.get("/Annots")
    if annots is None:
        page[generic.NameObject("/Annots")] = generic.ArrayObject([ref])
    else:
        annots.get_object().append(ref)
    writer.update_container(page)
    return _out(writer)


def add_form_field(pdf: bytes) -> bytes:
    writer = _writer(pdf)
    fields.append_signature_field(
        writer, fields.SigFieldSpec("Overlay", on_page=0, box=(50, 50, 200, 100))
    )
    return _out(writer)


def replace_page_content(pdf: bytes) -> bytes:
    writer = _writer(pdf)
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 100 700 Td (FORGED) Tj ET")
    page[generic.NameObject("/Contents")] = writer.add_object(stream)
    writer.update_container(page)
    return _out(writer)


def seal_with_foreign_key(pdf_unsealed: bytes, box: tuple[float, float, float, float]) -> bytes:
    """A correctly made certification seal, but from a CA outside the trust domain."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "伪造的电子印章 Forged seal")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    signer = _simple_signer(key, cert)
    meta = signers.PdfSignatureMetadata(
        field_name="Seal",
        certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES,
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    spec = fields.SigFieldSpec("Seal", on_page=0, box=box)
    out = io.BytesIO()
    signers.PdfSigner(meta, signer, new_field_spec=spec).sign_pdf(_writer(pdf_unsealed), output=out)
    return out.getvalue()


def _simple_signer(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> signers.SimpleSigner:
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    der_key = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    asn1_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    return signers.SimpleSigner(
        signing_cert=asn1_cert,
        signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
        cert_registry=SimpleCertificateStore.from_certs([asn1_cert]),
    )
