"""An OFD licence made by hand, every signature by the ``openssl`` binary: the file on which the
independent checks (ofd.js in Chromium, OpenSSL) are proven before they judge the product's.

A small licence-like page (text, a QR code, a red seal picture in a stamp annotation) sealed by a
three-level SM2 PKI that OpenSSL makes (root, seal CA, seal; SM2-with-SM3 with the GB/T
distinguishing ID), with the GB/T 38540 structures of tests/ofd_independent.py. No product code.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.ofd_independent import (
    DISTID,
    OFD_NS,
    SIGNATURE_XML,
    SM2_WITH_SM3,
    SM3,
    SeSeal,
    SesSealInfo,
    SesSignature,
    TbsSign,
    openssl_ok,
    sm3_openssl,
    zip_package,
)


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
