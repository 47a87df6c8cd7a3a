"""What an OFD licence package says about itself: its entry file, its one seal, what the seal
signs — read from the XML (GB/T 33190) into plain values, in the worker, nothing verified yet.

A licence package is one document (``Doc_0``) with one seal. Its signatures list
(``Doc_0/Signs/Signatures.xml``) must name exactly one ``Seal`` signature; that signature's
``Signature.xml`` names the SM3 check method, the SM2-with-SM3 signature method, one reference
per signed file (``FileRef`` and its ``CheckValue``), the seal file (``Seal.esl``) and the
signed value (``SignedValue.dat``). Paths are resolved inside the package: absolute ("/Doc_0/…")
from its root, relative from the folder of the file that names them; ``..``, backslashes, drive
letters and a path named twice are refused. The licence identifier in ``DocInfo`` is the
uploader's claim, used to find the repository's record, never shown.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from verify.ofd_package import Package, Refused, forbidden, shown
from verify.ofd_xml import parse_xml
from verify.report import Indication, SubIndication
from verify.structure import refuse

if TYPE_CHECKING:
    from verify.isolation import Limits

NS = "{http://www.ofdspec.org/2016}"
ENTRY = "OFD.xml"
SIGNS = "Doc_0/Signs/"
SIGNATURES = SIGNS + "Signatures.xml"
SM3_OID = "1.2.156.10197.1.401"
SM2_SM3_OID = "1.2.156.10197.1.501"
_IDENTIFIER = re.compile(r"[0-9A-Za-z.\-]{8,96}")


@dataclass(frozen=True)
class Reference:
    path: str  # inside the package, no leading slash
    check_value: bytes  # the SM3 the signature claims for it


@dataclass(frozen=True)
class Layout:
    """The package's own account of itself (claims, to be checked)."""

    identifier: str | None  # DocInfo CustomData "licence.identifier"
    signature_count: int  # Signature entries in Signatures.xml
    signature_xml: str  # the one seal's Signature.xml
    references: tuple[Reference, ...]
    seal_file: str  # Seal.esl
    signed_value_file: str  # SignedValue.dat


def not_ofd(detail: str) -> Refused:
    return Refused(refuse("structure", detail, Indication.FAILED, SubIndication.FORMAT_FAILURE))


def resolve(location: str, base: str) -> str:
    """A path named in the package, as an entry name: "/a/b" from the root, "a/b" from the
    folder ``base`` (a folder name ending in "/" or "")."""
    text = location.strip()
    if not text or "\\" in text or ":" in text or any(ord(c) < 0x20 for c in text):
        raise forbidden(f"无效的包内路径 / path {shown(text)} in the package is refused")
    path = text[1:] if text.startswith("/") else base + text
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise forbidden(f"路径穿越 / path {shown(text)} leaves the package or is empty")
    return path


def folder(path: str) -> str:
    return path.rsplit("/", 1)[0] + "/" if "/" in path else ""


def read_layout(package: Package, limits: Limits) -> Layout:
    """The entry file, the signatures list and the one seal's Signature.xml; raises Refused."""
    files = package.files
    if ENTRY not in files:
        raise not_ofd("包根目录没有OFD.xml / no OFD.xml at the package root: not an OFD")
    entry = _root(parse_xml(ENTRY, files[ENTRY], limits), "OFD", ENTRY)
    bodies = entry.findall(f"{NS}DocBody")
    if len(bodies) != 1:
        raise not_ofd(f"文档数量 / {len(bodies)} documents; a licence package has one")
    body = bodies[0]
    signatures = resolve(_text(body, "Signatures", ENTRY), "")
    if signatures != SIGNATURES:
        raise not_ofd(f"签名列表位置 / signatures listed at {shown(signatures)}, not {SIGNATURES}")
    if resolve(_text(body, "DocRoot", ENTRY), "") not in files:
        raise not_ofd("文档根文件缺失 / the document named by DocRoot is missing")
    if signatures not in files:
        raise not_ofd("签名列表缺失 / Signatures.xml is missing: the file carries no seal")
    listed = _root(parse_xml(signatures, files[signatures], limits), "Signatures", signatures)
    entries = listed.findall(f"{NS}Signature")
    count = len(entries)
    if count != 1:
        return Layout(_identifier(body), count, "", (), "", "")
    seal = entries[0]
    if seal.get("Type", "Seal") != "Seal":
        raise not_ofd("签名类型 / a signature not of type Seal; a licence is sealed")
    signature_xml = resolve(seal.get("BaseLoc", ""), folder(signatures))
    if not signature_xml.startswith(SIGNS) or signature_xml not in files:
        raise not_ofd(f"签名文件缺失 / the seal's Signature.xml {shown(signature_xml)} is missing")
    return _signature(body, signature_xml, files[signature_xml], limits)


def _signature(body: Element, path: str, data: bytes, limits: Limits) -> Layout:
    signature = _root(parse_xml(path, data, limits), "Signature", path)
    info = signature.find(f"{NS}SignedInfo")
    if info is None:
        raise not_ofd(f"{shown(path)}: 缺少SignedInfo / no SignedInfo")
    method = _text(info, "SignatureMethod", path)
    if method != SM2_SM3_OID:
        raise not_ofd("签名算法 / the signature method is not SM2-with-SM3")
    references = info.find(f"{NS}References")
    if references is None or references.get("CheckMethod") != SM3_OID:
        raise not_ofd(f"摘要算法 / references not checked with SM3 ({SM3_OID})")
    base = folder(path)
    found: list[Reference] = []
    seen: set[str] = set()
    for reference in references.findall(f"{NS}Reference"):
        target = resolve(reference.get("FileRef", ""), base)
        if target.casefold() in seen:
            raise not_ofd(f"重复引用 / {shown(target)} is referenced twice")
        seen.add(target.casefold())
        found.append(Reference(target, _check_value(reference, target)))
    seal_path = resolve(_text(info, "Seal/" + NS + "BaseLoc", path), base)
    signed_value = resolve(_text(signature, "SignedValue", path), base)
    for named in (seal_path, signed_value):
        if not named.startswith(folder(path)):
            raise not_ofd(f"印章文件位置 / {shown(named)} lies outside the seal's folder")
    return Layout(_identifier(body), 1, path, tuple(found), seal_path, signed_value)


def _root(element: Element, name: str, path: str) -> Element:
    if element.tag != NS + name:
        raise not_ofd(f"{shown(path)}: 根元素不是 ofd:{name} / root element is not ofd:{name}")
    return element


def _text(element: Element, name: str, path: str) -> str:
    child = element.find(NS + name)
    if child is None or not (child.text or "").strip():
        raise not_ofd(
            f"{shown(path)}: 缺少 {name.rsplit('}', 1)[-1]} / no {name.rsplit('}', 1)[-1]}"
        )
    return (child.text or "").strip()


def _check_value(reference: Element, target: str) -> bytes:
    child = reference.find(f"{NS}CheckValue")
    try:
        value = base64.b64decode(
            (child.text or "").strip() if child is not None else "", validate=True
        )
    except (binascii.Error, ValueError):
        value = b""
    if len(value) != 32:
        raise not_ofd(f"校验值无效 / the CheckValue of {shown(target)} is not a base64 SM3 digest")
    return value


def _identifier(body: Element) -> str | None:
    """The identifier the package claims (a lookup key only; never displayed)."""
    for data in body.iterfind(f"{NS}DocInfo/{NS}CustomDatas/{NS}CustomData"):
        if data.get("Name") == "licence.identifier":
            text = (data.text or "").strip()
            return text if _IDENTIFIER.fullmatch(text) else None
    return None
