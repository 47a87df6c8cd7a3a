"""What the independent OFD checks share: GB/T 38540 structures written from the standard, the
``openssl`` command line, and zip helpers (the hand-made OFD is tests/ofd_handmade.py).

Nothing here imports the product's OFD or seal code (licences.ofd_*, seals.ses*, keys.sm2,
verify.*): the point of these checks is a second reading of the same bytes. The ASN.1 classes
are written from GB/T 38540-2020 (version 4 structures) and the OFD layout from GB/T 33190-2016;
signatures are made and checked by the ``openssl`` binary with the GB/T 35276 default
distinguishing ID, digests by ``openssl dgst -sm3``.

tests/ofd_handmade.py builds an OFD with these alone, so the harnesses are proven on a file no
product code touched: a failure on the product's OFD is then the product's.
"""

from __future__ import annotations

import io
import subprocess
import zipfile
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


# --- packages ----------------------------------------------------------------------------------


def zip_package(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def unzip_package(ofd: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(ofd)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}
