"""What the independent OFD checks share: GB/T 38540 structures written from the standard, the
``openssl`` command line, and an OFD package made by hand with OpenSSL's own SM2 keys.

Nothing here imports the product's OFD or seal code (licences.ofd_*, seals.ses*, keys.sm2,
verify.*): the point of these checks is a second reading of the same bytes. The ASN.1 classes
are written from GB/T 38540-2020 (version 4 structures) and the OFD layout from GB/T 33190-2016;
signatures are made and checked by the ``openssl`` binary with the GB/T 35276 default
distinguishing ID, digests by ``openssl dgst -sm3``.

``handmade_ofd`` builds a small licence-like OFD (a page with text, a QR code, and a red seal
picture in a stamp annotation) sealed by a three-level SM2 PKI that OpenSSL makes: it proves the
harnesses (the reader in Chromium, the OpenSSL checks) on a file no product code touched, so a
failure on the product's OFD is the product's.
"""

from __future__ import annotations

import base64
import io
import subprocess
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from asn1crypto import core

from tests.tools import require

DISTID = "distid:1234567812345678"  # GB/T 35276 default SM2 distinguishing ID
SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM3 = "1.2.156.10197.1.401"
OFD_NS = "http://www.ofdspec.org/2016"
SIGNATURE_XML = "Doc_0/Signs/Sign_0/Signature.xml"


# --- GB/T 38540-2020 (version 4), as the standard writes them --------------------------------


class SesHeader(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("id", core.IA5String),
        ("version", core.Integer),
        ("vid", core.IA5String),
    ]


class CertList(core.SequenceOf):
    _child_spec: ClassVar[type[core.Asn1Value]] = core.OctetString


class SesEsPropertyInfo(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list_type", core.Integer),
        ("cert_list", CertList),
        ("create_date", core.GeneralizedTime),
        ("valid_start", core.GeneralizedTime),
        ("valid_end", core.GeneralizedTime),
    ]


class SesEsPictrueInfo(core.Sequence):  # sic: the standard's spelling
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("type", core.IA5String),
        ("data", core.OctetString),
        ("width", core.Integer),
        ("height", core.Integer),
    ]


class ExtData(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("extn_id", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extn_value", core.OctetString),
    ]


class ExtensionDatas(core.SequenceOf):
    _child_spec: ClassVar[type[core.Asn1Value]] = ExtData


class SesSealInfo(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("header", SesHeader),
        ("es_id", core.IA5String),
        ("property", SesEsPropertyInfo),
        ("picture", SesEsPictrueInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
    ]


class SeSeal(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("eseal_info", SesSealInfo),
        ("cert", core.OctetString),
        ("sign_alg_id", core.ObjectIdentifier),
        ("signed_value", core.OctetBitString),
    ]


class TbsSign(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("version", core.Integer),
        ("eseal", SeSeal),
        ("time_info", core.GeneralizedTime),
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
        ("ext_datas", ExtensionDatas, {"explicit": 0, "optional": True}),
    ]


class SesSignature(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("to_sign", TbsSign),
        ("cert", core.OctetString),
        ("signature_alg_id", core.ObjectIdentifier),
        ("signature", core.OctetBitString),
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),
    ]


def der_elements(der: bytes) -> list[bytes]:
    """The exact encodings (tag, length, contents) of the elements of a DER SEQUENCE, cut from
    the bytes themselves, so that a signed part is checked as written, never as re-encoded."""
    (start, end), _ = _tlv(der, 0)
    out: list[bytes] = []
    pos = start
    while pos < end:
        (_, c_end), _ = _tlv(der, pos)
        out.append(der[pos:c_end])
        pos = c_end
    if pos != end:
        raise ValueError("DER: element runs past its SEQUENCE")
    return out


def _tlv(der: bytes, pos: int) -> tuple[tuple[int, int], int]:
    """((content start, content end), header length) of the TLV at ``pos`` (short tags only)."""
    if der[pos] & 0x1F == 0x1F:
        raise ValueError("DER: high tag numbers are not used in these structures")
    length = der[pos + 1]
    header = 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise ValueError("DER: indefinite or oversized length")
        length = int.from_bytes(der[pos + 2 : pos + 2 + count], "big")
        header += count
    start = pos + header
    if start + length > len(der):
        raise ValueError("DER: length runs past the data")
    return (start, start + length), header


# --- openssl -----------------------------------------------------------------------------------


def openssl(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``openssl`` binary; the result is returned whatever its exit code."""
    binary = require("openssl")
    return subprocess.run(
        [binary, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def openssl_ok(*args: str | Path, cwd: Path | None = None) -> str:
    """Run ``openssl`` and fail loudly on a non-zero exit (for set-up steps, not for checks)."""
    done = openssl(*args, cwd=cwd)
    if done.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))}: {done.stderr.strip()}")
    return done.stdout


def sm3_openssl(path: Path) -> bytes:
    """SM3 of a file's bytes, by ``openssl dgst -sm3 -binary``."""
    binary = require("openssl")
    done = subprocess.run(
        [binary, "dgst", "-sm3", "-binary", str(path)], capture_output=True, timeout=60, check=True
    )
    return done.stdout


def sm2_verifies(public_pem: Path, signature: Path, message: Path) -> bool:
    """``openssl dgst -sm3 -verify`` with the GB/T default distinguishing ID."""
    done = openssl(
        "dgst", "-sm3", "-verify", public_pem, "-sigopt", DISTID, "-signature", signature, message
    )
    return done.returncode == 0 and "Verified OK" in done.stdout


def certificate_verifies(cert: Path, issuer: Path, *, anchor_is_root: bool) -> tuple[bool, str]:
    """``openssl verify`` of one certificate under its issuer, with the GB/T distinguishing ID.

    OpenSSL 3.0's ``verify`` applies ``-vfyopt distid:`` to the certificate it is given only, not
    to intermediates it finds through ``-untrusted``: a three-level SM2 chain whose certificates
    are signed with the GB/T ID (as GB/T 20518 asks) fails there at depth 1 whatever the chain.
    So each link is verified on its own: the end certificate under the seal CA taken as a
    partial-chain anchor, and the seal CA under the root."""
    args: list[str | Path] = ["verify", "-vfyopt", DISTID, "-CAfile", issuer]
    if not anchor_is_root:
        args.insert(1, "-partial_chain")
    done = openssl(*args, cert)
    return done.returncode == 0 and done.stdout.strip().endswith("OK"), (
        done.stdout + done.stderr
    ).strip()


def pem_of(der: bytes, path: Path) -> Path:
    """Write a DER certificate as PEM (through openssl, not our code) and return the path."""
    der_path = path.with_suffix(".der")
    der_path.write_bytes(der)
    openssl_ok("x509", "-inform", "DER", "-in", der_path, "-out", path)
    return path


def public_key_of(cert_pem: Path, path: Path) -> Path:
    openssl_ok("x509", "-in", cert_pem, "-noout", "-pubkey", "-out", path)
    return path


# --- a hand-made OFD ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HandmadePki:
    directory: Path
    root: Path  # PEM
    seal_ca: Path  # PEM; signs the SESeal (制章人) and issues the seal certificate
    seal_ca_key: Path
    seal: Path  # PEM; the department's seal certificate, signs the SES_Signature
    seal_key: Path


def make_pki(directory: Path) -> HandmadePki:
    """Root → seal CA → seal certificate, all SM2-with-SM3 with the GB/T distinguishing ID."""
    directory.mkdir(parents=True, exist_ok=True)
    d = directory
    for name in ("root", "ca", "seal"):
        openssl_ok("genpkey", "-algorithm", "SM2", "-out", d / f"{name}.key")
    openssl_ok(
        "req", "-new", "-x509", "-key", d / "root.key", "-sm3", "-sigopt", DISTID,
        "-subj", "/CN=Hand-made SM2 Root", "-days", "3650", "-out", d / "root.pem",
        "-addext", "basicConstraints=critical,CA:true",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    (d / "ca.ext").write_text(
        "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
    )
    (d / "seal.ext").write_text(
        "basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature,nonRepudiation\n"
    )
    for name, subject, issuer in (
        ("ca", "/CN=Hand-made SM2 Seal CA", "root"),
        ("seal", "/CN=Hand-made Seal", "ca"),
    ):
        openssl_ok(
            "req", "-new", "-key", d / f"{name}.key", "-sm3", "-sigopt", DISTID,
            "-subj", subject, "-out", d / f"{name}.csr",
        )  # fmt: skip
        openssl_ok(
            "x509", "-req", "-in", d / f"{name}.csr", "-CA", d / f"{issuer}.pem",
            "-CAkey", d / f"{issuer}.key", "-set_serial", str(4096 + len(subject)),
            "-sm3", "-sigopt", DISTID, "-vfyopt", DISTID, "-days", "365",
            "-extfile", d / f"{name}.ext", "-out", d / f"{name}.pem",
        )  # fmt: skip
    return HandmadePki(
        d, d / "root.pem", d / "ca.pem", d / "ca.key", d / "seal.pem", d / "seal.key"
    )


def _der_of(pem: Path) -> bytes:
    out = pem.with_suffix(".cert.der")
    openssl_ok("x509", "-in", pem, "-outform", "DER", "-out", out)
    return out.read_bytes()


def _sign(key: Path, message: bytes, work: Path) -> bytes:
    msg = work / "message.bin"
    sig = work / "signature.bin"
    msg.write_bytes(message)
    openssl_ok("dgst", "-sm3", "-sign", key, "-sigopt", DISTID, "-out", sig, msg)
    return sig.read_bytes()


def red_seal_png(size: int = 240) -> bytes:
    """A round red seal picture on a transparent ground, as a department's seal image is."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, size - 8, size - 8), outline=(220, 20, 30, 255), width=size // 14)
    draw.regular_polygon((size / 2, size / 2, size / 6), 5, fill=(220, 20, 30, 255))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def qr_png(text: str) -> bytes:
    import segno

    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


PAGE_W, PAGE_H = 148, 105  # mm
STAMP_BOX = (88.0, 50.0, 40.0, 40.0)  # x y w h, mm
QR_BOX = (12.0, 48.0, 40.0, 40.0)


def _package_files(identifier: str, verify_url: str, now: datetime) -> dict[str, bytes]:
    ofd = f"""<?xml version="1.0" encoding="UTF-8"?>
<ofd:OFD xmlns:ofd="{OFD_NS}" Version="1.0" DocType="OFD"><ofd:DocBody><ofd:DocInfo>
<ofd:DocID>0123456789abcdef0123456789abcdef</ofd:DocID><ofd:Title>{identifier}</ofd:Title>
<ofd:CreationDate>{now:%Y-%m-%d}</ofd:CreationDate><ofd:CustomDatas>
<ofd:CustomData Name="licence.identifier">{identifier}</ofd:CustomData>
<ofd:CustomData Name="licence.verify_url">{verify_url}</ofd:CustomData>
</ofd:CustomDatas></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>
<ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody></ofd:OFD>"""
    document = f"""<?xml version="1.0" encoding="UTF-8"?>
<ofd:Document xmlns:ofd="{OFD_NS}"><ofd:CommonData><ofd:MaxUnitID>10</ofd:MaxUnitID>
<ofd:PageArea><ofd:PhysicalBox>0 0 {PAGE_W} {PAGE_H}</ofd:PhysicalBox></ofd:PageArea>
<ofd:PublicRes>PublicRes.xml</ofd:PublicRes><ofd:DocumentRes>DocumentRes.xml</ofd:DocumentRes>
</ofd:CommonData><ofd:Pages><ofd:Page ID="1" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages>
</ofd:Document>"""
    public_res = f"""<?xml version="1.0" encoding="UTF-8"?>
<ofd:Res xmlns:ofd="{OFD_NS}" BaseLoc="Res"><ofd:Fonts>
<ofd:Font ID="2" FontName="Noto Sans SC" FamilyName="Noto Sans SC"/></ofd:Fonts></ofd:Res>"""
    document_res = f"""<?xml version="1.0" encoding="UTF-8"?>
<ofd:Res xmlns:ofd="{OFD_NS}" BaseLoc="Res"><ofd:MultiMedias>
<ofd:MultiMedia ID="3" Type="Image"><ofd:MediaFile>qr.png</ofd:MediaFile></ofd:MultiMedia>
</ofd:MultiMedias></ofd:Res>"""
    x, y, w, h = QR_BOX
    content = f"""<?xml version="1.0" encoding="UTF-8"?>
<ofd:Page xmlns:ofd="{OFD_NS}"><ofd:Content><ofd:Layer ID="4">
<ofd:TextObject ID="5" Boundary="12 10 130 12" Font="2" Size="7"><ofd:FillColor Value="0 0 0"/>
<ofd:TextCode X="0" Y="8" DeltaX="7 7 7 7 7 3 4 4 4 4 4 4 4 4 4 4 4 4 3 4 4 4 4 4 4">独立阅读器 Independent reader</ofd:TextCode></ofd:TextObject>
<ofd:TextObject ID="6" Boundary="12 26 130 10" Font="2" Size="5"><ofd:FillColor Value="0 0 0"/>
<ofd:TextCode X="0" Y="6" DeltaX="g {len(identifier) - 1} 3.2">{identifier}</ofd:TextCode></ofd:TextObject>
<ofd:ImageObject ID="7" Boundary="{x} {y} {w} {h}" CTM="{w} 0 0 {h} 0 0" ResourceID="3"/>
</ofd:Layer></ofd:Content></ofd:Page>"""
    return {
        "OFD.xml": ofd.encode(),
        "Doc_0/Document.xml": document.encode(),
        "Doc_0/PublicRes.xml": public_res.encode(),
        "Doc_0/DocumentRes.xml": document_res.encode(),
        "Doc_0/Res/qr.png": qr_png(verify_url),
        "Doc_0/Pages/Page_0/Content.xml": content.encode(),
    }


def _sm3_b64(data: bytes, work: Path) -> str:
    path = work / "digest-input.bin"
    path.write_bytes(data)
    return base64.b64encode(sm3_openssl(path)).decode()


def handmade_ofd(
    pki: HandmadePki,
    *,
    identifier: str = "HAND-2026-000001",
    verify_url: str = "HTTPS://VERIFY.EXAMPLE/V/HANDMADE0001",
    seal_picture: bytes | None = None,
) -> bytes:
    """A sealed OFD made by hand: content files, SM3 references, SESeal signed by the seal CA's
    key, SES_Signature over DER(toSign) signed by the seal key — every signature by openssl."""
    work = pki.directory / "work"
    work.mkdir(exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    files = _package_files(identifier, verify_url, now)
    references = "".join(
        f'<ofd:Reference FileRef="/{name}"><ofd:CheckValue>{_sm3_b64(data, work)}'
        "</ofd:CheckValue></ofd:Reference>"
        for name, data in files.items()
    )
    x, y, w, h = STAMP_BOX
    signature_xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<ofd:Signature xmlns:ofd="{OFD_NS}"><ofd:SignedInfo>
<ofd:Provider ProviderName="hand-made" Version="1" Company="tests"/>
<ofd:SignatureMethod>{SM2_WITH_SM3}</ofd:SignatureMethod>
<ofd:SignatureDateTime>{now:%Y%m%d%H%M%S}Z</ofd:SignatureDateTime>
<ofd:References CheckMethod="{SM3}">{references}</ofd:References>
<ofd:StampAnnot ID="9" PageRef="1" Boundary="{x} {y} {w} {h}"/>
<ofd:Seal><ofd:BaseLoc>/Doc_0/Signs/Sign_0/Seal.esl</ofd:BaseLoc></ofd:Seal>
</ofd:SignedInfo><ofd:SignedValue>/Doc_0/Signs/Sign_0/SignedValue.dat</ofd:SignedValue>
</ofd:Signature>""".encode()
    seal_cert = _der_of(pki.seal)
    info = SesSealInfo(
        {
            "header": {"id": "ES", "version": 4, "vid": "hand-made"},
            "es_id": "HANDMADE-SEAL-1",
            "property": {
                "type": 1,
                "name": "手工测试印章",
                "cert_list_type": 1,
                "cert_list": [seal_cert],
                "create_date": now,
                "valid_start": now - timedelta(days=1),
                "valid_end": now + timedelta(days=365),
            },
            "picture": {
                "type": "PNG",
                "data": seal_picture if seal_picture is not None else red_seal_png(),
                "width": int(w),
                "height": int(h),
            },
        }
    )
    seal = SeSeal(
        {
            "eseal_info": info,
            "cert": _der_of(pki.seal_ca),
            "sign_alg_id": SM2_WITH_SM3,
            "signed_value": _sign(pki.seal_ca_key, info.dump(), work),
        }
    )
    sig_xml_path = work / "Signature.xml"
    sig_xml_path.write_bytes(signature_xml)
    to_sign = TbsSign(
        {
            "version": 4,
            "eseal": seal,
            "time_info": now,
            "data_hash": sm3_openssl(sig_xml_path),
            "property_info": "/" + SIGNATURE_XML,
        }
    )
    signature = SesSignature(
        {
            "to_sign": to_sign,
            "cert": seal_cert,
            "signature_alg_id": SM2_WITH_SM3,
            "signature": _sign(pki.seal_key, to_sign.dump(), work),
        }
    )
    files["Doc_0/Signs/Signatures.xml"] = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ofd:Signatures xmlns:ofd="{OFD_NS}">'
        '<ofd:MaxSignId>1</ofd:MaxSignId><ofd:Signature ID="1" Type="Seal" '
        'BaseLoc="Sign_0/Signature.xml"/></ofd:Signatures>'
    ).encode()
    files[SIGNATURE_XML] = signature_xml
    files["Doc_0/Signs/Sign_0/Seal.esl"] = seal.dump()
    files["Doc_0/Signs/Sign_0/SignedValue.dat"] = signature.dump()
    return zip_package(files)


def zip_package(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def unzip_package(ofd: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(ofd)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}
