"""Every cryptographic link of an OFD licence's GB/T 38540 seal, checked with the ``openssl``
command line on bytes cut out of the file by tests/ofd_independent.py — no product code.

``check_ofd`` returns what OpenSSL said of each link; ``tamper_rejections`` changes one byte of
each signed input and returns what OpenSSL said then. The tests assert both, so a check that
always says yes cannot hide here.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.ofd_independent import (
    SIGNATURE_XML,
    SesSignature,
    certificate_verifies,
    der_elements,
    pem_of,
    public_key_of,
    sm2_verifies,
    sm3_openssl,
    unzip_package,
)

SIGNS = "Doc_0/Signs/"


@dataclass
class SealFiles:
    """The seal's parts as files on disk, ready for openssl."""

    directory: Path
    files: dict[str, bytes]  # the package's entries
    references: dict[str, bytes]  # FileRef (no leading "/") -> CheckValue (decoded)
    to_sign: Path  # exact DER bytes of TBS_Sign as found in SignedValue.dat
    signature: Path  # the BIT STRING's content: DER SEQUENCE { r, s }
    signer: Path  # PEM of SES_Signature.cert
    signer_public: Path
    seal_info: Path  # exact DER of SES_SealInfo inside the SESeal inside toSign
    seal_signature: Path
    maker: Path  # PEM of SESeal.cert (制章人)
    maker_public: Path
    parsed: SesSignature
    seal_esl: bytes  # Doc_0/Signs/Sign_0/Seal.esl
    seal_der: bytes  # the SESeal's exact DER inside toSign


def _one(pattern: str, text: str, what: str) -> str:
    found = re.findall(pattern, text)
    assert len(found) == 1, f"{what}: expected exactly one, found {found!r}"
    return str(found[0])


def extract(ofd: bytes, directory: Path) -> SealFiles:
    """Cut the seal's parts out of the package (regexes over the XML, DER slicing)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = unzip_package(ofd)
    signatures = files["Doc_0/Signs/Signatures.xml"].decode()
    base = _one(r"<ofd:Signature\b[^>]*\bBaseLoc=\"([^\"]+)\"", signatures, "Signatures.xml")
    assert base.lstrip("/") in ("Sign_0/Signature.xml", SIGNATURE_XML), base
    signature_xml = files[SIGNATURE_XML].decode()
    references = {
        ref.lstrip("/"): base64.b64decode(value)
        for ref, value in re.findall(
            r"<ofd:Reference\s+FileRef=\"([^\"]+)\"\s*>\s*<ofd:CheckValue>\s*([A-Za-z0-9+/=]+)"
            r"\s*</ofd:CheckValue>",
            signature_xml,
        )
    }
    assert references, "Signature.xml references no file"
    signed_value = _one(
        r"<ofd:SignedValue>\s*([^<\s]+)\s*</ofd:SignedValue>", signature_xml, "SignedValue"
    )
    seal_loc = _one(r"<ofd:BaseLoc>\s*([^<\s]+)\s*</ofd:BaseLoc>", signature_xml, "Seal BaseLoc")
    value_der = files[signed_value.lstrip("/")]

    to_sign_der, _cert, _alg, signature_bits, *_rest = der_elements(value_der)
    parsed = SesSignature.load(value_der)
    _version, seal_der, *_ = der_elements(to_sign_der)
    seal_info_der, _maker, _seal_alg, seal_bits = der_elements(seal_der)

    def write(name: str, data: bytes) -> Path:
        path = directory / name
        path.write_bytes(data)
        return path

    signer = pem_of(parsed["cert"].native, directory / "signer.pem")
    maker = pem_of(parsed["to_sign"]["eseal"]["cert"].native, directory / "maker.pem")
    return SealFiles(
        directory=directory,
        files=files,
        references=references,
        to_sign=write("tosign.der", to_sign_der),
        signature=write("signature.bin", _bit_string_content(signature_bits)),
        signer=signer,
        signer_public=public_key_of(signer, directory / "signer-public.pem"),
        seal_info=write("sealinfo.der", seal_info_der),
        seal_signature=write("seal-signature.bin", _bit_string_content(seal_bits)),
        maker=maker,
        maker_public=public_key_of(maker, directory / "maker-public.pem"),
        parsed=parsed,
        seal_esl=files[seal_loc.lstrip("/")],
        seal_der=seal_der,
    )


def _bit_string_content(tlv: bytes) -> bytes:
    """The octets of a DER BIT STRING with no unused bits (tag 0x03)."""
    assert tlv[0] == 0x03, f"expected a BIT STRING, found tag {tlv[0]:#x}"
    (start, end), _ = _header(tlv)
    assert tlv[start] == 0, "BIT STRING with unused bits"
    return tlv[start + 1 : end]


def _header(tlv: bytes) -> tuple[tuple[int, int], int]:
    from tests.ofd_independent import _tlv

    return _tlv(tlv, 0)


@dataclass
class Findings:
    """What OpenSSL said of each link of the seal (True = accepted)."""

    digests: dict[str, bool] = field(default_factory=dict)  # file -> SM3 == CheckValue
    unreferenced: list[str] = field(default_factory=list)  # content files outside the seal
    data_hash: bool = False  # SM3(Signature.xml) == toSign.dataHash
    seal_signature: bool = False  # SES_Signature.signature over DER(toSign), signer's key
    maker_signature: bool = False  # SESeal.signedValue over DER(esealInfo), maker's key
    signer_in_cert_list: bool = False
    seal_esl_matches: bool = False  # Seal.esl is the SESeal inside toSign
    signer_under_maker: tuple[bool, str] = (False, "")
    maker_under_root: tuple[bool, str] = (False, "")


def check_ofd(seal: SealFiles, root: Path) -> Findings:
    found = Findings()
    for name, expected in seal.references.items():
        path = seal.directory / ("content-" + name.replace("/", "_"))
        path.write_bytes(seal.files[name])
        found.digests[name] = sm3_openssl(path) == expected
    found.unreferenced = sorted(
        n for n in seal.files if not n.startswith(SIGNS) and n not in seal.references
    )
    sig_xml = seal.directory / "Signature.xml"
    sig_xml.write_bytes(seal.files[SIGNATURE_XML])
    found.data_hash = sm3_openssl(sig_xml) == seal.parsed["to_sign"]["data_hash"].native
    found.seal_signature = sm2_verifies(seal.signer_public, seal.signature, seal.to_sign)
    found.maker_signature = sm2_verifies(seal.maker_public, seal.seal_signature, seal.seal_info)
    signer_der = seal.parsed["cert"].native
    cert_list = seal.parsed["to_sign"]["eseal"]["eseal_info"]["property"]["cert_list"].native
    found.signer_in_cert_list = signer_der in cert_list
    found.seal_esl_matches = seal.seal_esl == seal.seal_der
    found.signer_under_maker = certificate_verifies(seal.signer, seal.maker, anchor_is_root=False)
    found.maker_under_root = certificate_verifies(seal.maker, root, anchor_is_root=True)
    return found


def flip(data: bytes, at: int | None = None) -> bytes:
    """The same bytes with one byte changed (the middle one unless told)."""
    index = len(data) // 2 if at is None else at
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def tamper_rejections(seal: SealFiles, root: Path) -> dict[str, bool]:
    """For each signed input, one byte changed: True where OpenSSL rejects the change."""
    d = seal.directory
    out: dict[str, bool] = {}

    changed = d / "tosign-changed.der"
    changed.write_bytes(flip(seal.to_sign.read_bytes()))
    out["toSign"] = not sm2_verifies(seal.signer_public, seal.signature, changed)

    changed = d / "signature-changed.bin"
    changed.write_bytes(flip(seal.signature.read_bytes(), at=len(seal.signature.read_bytes()) - 2))
    out["signature"] = not sm2_verifies(seal.signer_public, changed, seal.to_sign)

    changed = d / "sealinfo-changed.der"
    changed.write_bytes(flip(seal.seal_info.read_bytes()))
    out["esealInfo"] = not sm2_verifies(seal.maker_public, seal.seal_signature, changed)

    name = next(iter(seal.references))
    changed = d / "content-changed.bin"
    changed.write_bytes(flip(seal.files[name]))
    out["content file"] = sm3_openssl(changed) != seal.references[name]

    # A certificate with one byte of its signature changed no longer verifies under its issuer.
    for label, cert, issuer, is_root in (
        ("signer certificate", seal.signer, seal.maker, False),
        ("maker certificate", seal.maker, root, True),
    ):
        der = (cert.with_suffix(".der")).read_bytes()
        bad = pem_of(flip(der, at=len(der) - 3), d / f"{label.replace(' ', '-')}-changed.pem")
        out[label] = not certificate_verifies(bad, issuer, anchor_is_root=is_root)[0]
    return out
