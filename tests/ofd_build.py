"""A small SM2 world for the OFD verifier's worker tests, without a database: an SM2 root, seal CA
and department seal certificate (SM2-with-SM3, built with asn1crypto and keys.sm2), an ECDSA root
and TSA (pyHanko's in-memory time stamper), and a licence package sealed by issuance's own
sealer (seals.ofd_sealing) with that TSA's token — plus the helpers that take a package apart
and put it back together for the tamper tests."""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from keys.sm2 import SM2_WITH_SM3_OID, Sm2PrivateKey
from keys.store import KeyRef, KeyUseListener
from seals import ses
from seals.ofd_sealing import OfdSealer, Sm2SealKeys
from seals.ofd_zip import zip_package
from verify.ofd_chain import Sm2Anchors
from verify.signature import TrustAnchors

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
SIGNED_VALUE = "Doc_0/Signs/Sign_0/SignedValue.dat"
SEAL_FILE = "Doc_0/Signs/Sign_0/Seal.esl"
SIGNATURE = "Doc_0/Signs/Sign_0/Signature.xml"
NS = "http://www.ofdspec.org/2016"


def sm2_certificate(
    subject: str,
    key: Sm2PrivateKey,
    issuer: str,
    issuer_key: Sm2PrivateKey,
    serial: int,
    *,
    ca: bool,
    start: datetime = NOW - timedelta(days=30),
    end: datetime = NOW + timedelta(days=365),
) -> bytes:
    extensions = [
        {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": ca}},
        {
            "extn_id": "key_usage",
            "critical": True,
            "extn_value": {"key_cert_sign", "crl_sign"} if ca else {"digital_signature"},
        },
    ]
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial,
            "signature": {"algorithm": SM2_WITH_SM3_OID},
            "issuer": asn1_x509.Name.build({"common_name": issuer}),
            "validity": {
                "not_before": asn1_x509.Time({"utc_time": start}),
                "not_after": asn1_x509.Time({"utc_time": end}),
            },
            "subject": asn1_x509.Name.build({"common_name": subject}),
            "subject_public_key_info": asn1_keys.PublicKeyInfo.load(key.public_key().spki_der()),
            "extensions": extensions,
        }
    )
    issuer_public = issuer_key.public_key()
    signature = issuer_key.sign_digest(issuer_public.digest(tbs.dump()))
    cert = asn1_x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": {"algorithm": SM2_WITH_SM3_OID},
            "signature_value": signature,
        }
    )
    return bytes(cert.dump())


@dataclass
class Sm2Pki:
    """An SM2 root, its seal CA, and one department's seal certificate."""

    name: str = "elicence"
    root_key: Sm2PrivateKey = field(default_factory=Sm2PrivateKey.generate)
    ca_key: Sm2PrivateKey = field(default_factory=Sm2PrivateKey.generate)
    seal_key: Sm2PrivateKey = field(default_factory=Sm2PrivateKey.generate)

    def __post_init__(self) -> None:
        root, ca = f"{self.name} SM2 Root", f"{self.name} SM2 Seal CA"
        self.root = sm2_certificate(root, self.root_key, root, self.root_key, 1, ca=True)
        self.ca = sm2_certificate(ca, self.ca_key, root, self.root_key, 2, ca=True)
        self.seal = sm2_certificate(
            f"{self.name} department seal", self.seal_key, ca, self.ca_key, 0x5EA1, ca=False
        )

    @property
    def anchors(self) -> Sm2Anchors:
        return Sm2Anchors((self.root,), (self.ca,))

    def keys(self) -> Sm2SealKeys:
        return Sm2SealKeys(
            seal_code="SEAL0001",
            seal_name="测试专用章",
            picture_png=b"\x89PNG\r\n\x1a\n" + b"red seal" * 8,
            key=KeyRef("test", "seal"),
            certificate_der=self.seal,
            maker_key=KeyRef("test", "maker"),
            maker_certificate_der=self.ca,
        )

    def sign(self, ref: KeyRef, message: bytes, listener: KeyUseListener | None, why: str) -> bytes:
        key = self.seal_key if ref.label == "seal" else self.ca_key
        return key.sign_digest(key.public_key().digest(message))


@dataclass
class Tsa:
    """An ECDSA root and a time-stamping unit under it (RSA: pyHanko's in-memory stamper signs
    only with RSA; the verifier does not mind which), in memory."""

    name: str = "elicence"

    def __post_init__(self) -> None:
        root_key = ec.generate_private_key(ec.SECP256R1())
        tsa_key = rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )  # pyHanko's stamper
        root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{self.name} Root")])
        tsa_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{self.name} TSA")])
        self.root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(10)
            .not_valid_before(NOW - timedelta(days=60))
            .not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        self.tsa = (
            x509.CertificateBuilder()
            .subject_name(tsa_name)
            .issuer_name(root_name)
            .public_key(tsa_key.public_key())
            .serial_number(11)
            .not_valid_before(NOW - timedelta(days=60))
            .not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .sign(root_key, hashes.SHA256())
        )
        der = self.tsa.public_bytes(serialization.Encoding.DER)
        key_der = tsa_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.stamper = DummyTimeStamper(
            tsa_cert=asn1_x509.Certificate.load(der),
            tsa_key=asn1_keys.PrivateKeyInfo.load(key_der),
            fixed_dt=NOW,
        )

    @property
    def anchors(self) -> TrustAnchors:
        return TrustAnchors((self.root.public_bytes(serialization.Encoding.DER),), ())

    def token(self, message: bytes) -> bytes:
        digest = hashlib.sha256(message).digest()
        token = asyncio.run(self.stamper.async_timestamp(digest, "sha256"))
        return bytes(token.dump())


CONTENT = {
    "OFD.xml": (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="{NS}" Version="1.0" '
        'DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>0123456789abcdef0123456789abcdef'
        "</ofd:DocID><ofd:Title>测试证照</ofd:Title><ofd:CustomDatas>"
        '<ofd:CustomData Name="licence.identifier">11000000000000000X-TEST-0001</ofd:CustomData>'
        "</ofd:CustomDatas></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>"
        "<ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody></ofd:OFD>"
    ).encode(),
    "Doc_0/Document.xml": (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document xmlns:ofd="{NS}"><ofd:CommonData>'
        "<ofd:MaxUnitID>10</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 210 297"
        "</ofd:PhysicalBox></ofd:PageArea></ofd:CommonData><ofd:Pages>"
        '<ofd:Page ID="1" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages></ofd:Document>'
    ).encode(),
    "Doc_0/Pages/Page_0/Content.xml": (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{NS}"><ofd:Content>'
        '<ofd:Layer ID="2"><ofd:TextObject ID="3" Boundary="10 10 100 10" Font="4" Size="5">'
        '<ofd:TextCode X="0" Y="5">持证人：张三</ofd:TextCode></ofd:TextObject></ofd:Layer>'
        "</ofd:Content></ofd:Page>"
    ).encode(),
}


def seal_files(pki: Sm2Pki, tsa: Tsa | None, files: dict[str, bytes] | None = None) -> bytes:
    """A package sealed by issuance's sealer, with ``tsa``'s token over the signature."""
    sealer = OfdSealer(pki.sign)
    sealed = sealer.seal(
        dict(files or CONTENT),
        keys=pki.keys(),
        when=NOW,
        page_id=1,
        stamp_box="120 200 42 42",
        company="测试部门",
        timestamps=None,
        listener=None,
    )
    if tsa is None:
        return sealed.data
    parts = unzip(sealed.data)
    signature = ses.SES_Signature.load(parts[SIGNED_VALUE])
    parts[SIGNED_VALUE] = with_timestamp(signature, tsa.token(signature["signature"].native))
    return zip_package(parts)


def with_timestamp(signature: ses.SES_Signature, token: bytes | None) -> bytes:
    value = {
        "to_sign": ses.TBS_Sign.load(signature["to_sign"].dump()),
        "cert": signature["cert"].native,
        "signature_alg_id": signature["signature_alg_id"].native,
        "signature": signature["signature"].native,
    }
    if token is not None:
        value["time_stamp"] = token
    return bytes(ses.SES_Signature(value).dump())


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
