"""Small real licence PDFs for the examination tests, each built once per process: a root CA,
a seal certificate and a TSA certificate under it, another TSA outside the trust anchors; a
one-page PDF certified P=1, with or without the seal's own RFC 3161 timestamp, with document
timestamps appended (B-LTA), with certificates and CRLs in its DSS. (pyHanko's test TSA signs
with RSA only.)"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.pdfgen import canvas

from verify.signature import TrustAnchors

SEAL_SERIAL, TSA_SERIAL, ROGUE_SERIAL, ROOT_SERIAL = 0x4242, 0x7575, 0x7676, 0x1001
STAMPED = datetime(2025, 6, 1, 4, 0, tzinfo=UTC)  # the seal timestamp's genTime
ARCHIVED = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)  # the first document timestamp
REARCHIVED = datetime(2026, 2, 20, 8, 0, tzinfo=UTC)  # the second


@dataclass(frozen=True)
class Party:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def asn1(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.der)

    @property
    def asn1_key(self) -> asn1_keys.PrivateKeyInfo:
        return asn1_keys.PrivateKeyInfo.load(self.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def _party(name: str, serial: int, issuer: Party | None, *, ca: bool = False,
           tsa: bool = False) -> Party:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(65537, 2048) if tsa else ec.generate_private_key(ec.SECP256R1()))
    builder = (
        x509.CertificateBuilder().subject_name(_name(name))
        .issuer_name(issuer.cert.subject if issuer else _name(name))
        .public_key(key.public_key()).serial_number(serial)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, not ca, False, False, False, ca, ca, False, False),
                       critical=True)
    )
    if issuer is not None:  # where the root's CRL is published (never fetched here)
        point = x509.DistributionPoint(
            [x509.UniformResourceIdentifier("http://crl.invalid/root.crl")], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if tsa:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Party(key, cert)


@cache
def root() -> Party:
    return _party("测试根 Test root", ROOT_SERIAL, None, ca=True)


@cache
def seal() -> Party:
    return _party("测试印章 Test seal", SEAL_SERIAL, root())


@cache
def tsa() -> Party:
    return _party("测试时间戳 Test TSA", TSA_SERIAL, root(), tsa=True)


@cache
def rogue_tsa() -> Party:
    return _party("其他时间戳 Other TSA", ROGUE_SERIAL, None, tsa=True)


def anchors() -> TrustAnchors:
    return TrustAnchors((root().der,), ())


def stamper(party: Party, at: datetime) -> DummyTimeStamper:
    return DummyTimeStamper(
        tsa_cert=party.asn1, tsa_key=party.asn1_key, fixed_dt=at,
        certs_to_embed=SimpleCertificateStore.from_certs([party.asn1]))


@cache
def page() -> bytes:
    out = io.BytesIO()
    drawing = canvas.Canvas(out)
    drawing.drawString(100, 700, "licence")
    drawing.showPage()
    drawing.save()
    return out.getvalue()


@cache
def sealed(stamped: bool = False) -> bytes:
    """The page certified P=1 by the seal; with the seal's own timestamp at ``STAMPED``."""
    signer = signers.SimpleSigner(
        signing_cert=seal().asn1, signing_key=seal().asn1_key,
        cert_registry=SimpleCertificateStore.from_certs([seal().asn1, root().asn1]))
    meta = signers.PdfSignatureMetadata(
        field_name="Seal", certify=True, docmdp_permissions=MDPPerm.NO_CHANGES,
        md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES)
    out = io.BytesIO()
    signers.PdfSigner(meta, signer, timestamper=stamper(tsa(), STAMPED) if stamped else None
                      ).sign_pdf(IncrementalPdfFileWriter(io.BytesIO(page())), output=out)
    return out.getvalue()


def document_timestamp(data: bytes, party: Party, at: datetime) -> bytes:
    out = io.BytesIO()
    signers.PdfTimeStamper(stamper(party, at)).timestamp_pdf(
        IncrementalPdfFileWriter(io.BytesIO(data)), "sha256", output=out)
    return out.getvalue()


@cache
def archived(*stamps: tuple[str, datetime]) -> bytes:
    """The timestamped seal, then one document timestamp per (TSA, time), oldest first."""
    data = sealed(True)
    for which, at in stamps:
        data = document_timestamp(data, tsa() if which == "tsa" else rogue_tsa(), at)
    return data


def crl(revoked: tuple[int, datetime] | None, at: datetime) -> bytes:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(root().cert.subject)
               .last_update(at).next_update(at + timedelta(days=3650)))
    if revoked is not None:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(revoked[0])
            .revocation_date(revoked[1]).build())
    return builder.sign(root().key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def good_ocsp(at: datetime) -> bytes:
    """The root's OCSP answer: the seal certificate is good at ``at``."""
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(cert=seal().cert, issuer=root().cert, algorithm=hashes.SHA256(),
                      cert_status=ocsp.OCSPCertStatus.GOOD, this_update=at,
                      next_update=at + timedelta(days=7), revocation_time=None,
                      revocation_reason=None)
        .responder_id(ocsp.OCSPResponderEncoding.HASH, root().cert)
        .sign(root().key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return response.public_bytes(serialization.Encoding.DER)


@cache
def with_dss(data: bytes, *, certs: tuple[bytes, ...] = (), crls: tuple[bytes, ...] = (),
             ocsps: tuple[bytes, ...] = ()) -> bytes:
    """``data`` with a DSS holding these certificates, CRLs and OCSP responses, appended in a
    new revision."""
    out = io.BytesIO(data)
    DocumentSecurityStore.add_dss(
        out, None, certs=[asn1_x509.Certificate.load(c) for c in certs],
        crls=[asn1_crl.CertificateList.load(c) for c in crls],
        ocsps=[asn1_ocsp.OCSPResponse.load(o) for o in ocsps], embed_roots=True)
    return out.getvalue()
