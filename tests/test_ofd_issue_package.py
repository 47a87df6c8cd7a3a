"""The OFD licence as issuance makes it, before any database: the page (the PDF's own drawing,
recorded), the package files, the font subsets, and the GB/T 38540 seal over them.

Attack first: what a hostile holder name or field value could do to the package's XML, and a
content file changed after sealing. Then the contract's chain of evidence, checked with the
independent primitives (keys.sm2 over the exact DER; SM3 of the exact bytes)."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from defusedxml import ElementTree
from fontTools.pens.boundsPen import BoundsPen
from fontTools.pens.recordingPen import RecordingPen
from fontTools.ttLib import TTFont

from core.fonts import BOLD, cjk_font_path
from keys.audit import KeyUseRecorder
from keys.sm2 import SM2_WITH_SM3_OID, Sm2PublicKey, sm3
from keys.store import KeyRef, KeyUseListener
from licences.layout import parse_layout
from licences.layout_page import render_page
from licences.ofd_fonts import subset_font
from licences.ofd_package import build_package
from licences.qr import QUIET_ZONE, qr_matrix
from licences.render import MM, LicenceView
from seals import ses
from seals.ofd_sealing import OfdSealer
from seals.ofd_zip import zip_package
from tests.ofd_build import Sm2Pki

OFD = "{http://www.ofdspec.org/2016}"
VIEW = LicenceView(
    title="食品经营许可证",
    title_en="Food Business Licence",
    identifier="91350100M000100Y43001-00001-91350100M000100Y43-ABCDEFGHJK-001",
    holder_label="持证主体",
    holder_name="示范餐饮管理有限公司",
    holder_id="91350100M000100Y43",
    fields=(
        ("经营场所", "示范市鼓楼区五四路128号一层"),
        ("经营项目", "热食类食品制售、冷食类食品制售"),
    ),
    issuer_name="示范市市场监督管理局",
    issue_date="2026年12月6日",
    valid_from="2026年12月6日",
    valid_until="2031年12月5日",
    verify_url="HTTPS://LICENCE.EXAMPLE.GOV.CN/V/ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJ",
    version="001",
    field_names=("premises", "scope"),
)
CONTRACT_FILES = {
    "OFD.xml",
    "Doc_0/Document.xml",
    "Doc_0/PublicRes.xml",
    "Doc_0/DocumentRes.xml",
    "Doc_0/Res/font_0.ttf",
    "Doc_0/Res/font_1.ttf",
    "Doc_0/Pages/Page_0/Content.xml",
}
SIGNS = {
    "Doc_0/Signs/Signatures.xml",
    "Doc_0/Signs/Sign_0/Signature.xml",
    "Doc_0/Signs/Sign_0/Seal.esl",
    "Doc_0/Signs/Sign_0/SignedValue.dat",
}


@pytest.fixture(scope="module")
def fonts() -> tuple[Path, Path]:
    return cjk_font_path(), cjk_font_path(BOLD)


def package(view: LicenceView, fonts: tuple[Path, Path], **kwargs: object) -> dict[str, bytes]:
    return build_package(
        view, None, created=date(2026, 12, 6), regular_font=fonts[0], bold_font=fonts[1],
        **kwargs,  # type: ignore[arg-type]
    ).files  # fmt: skip


def texts(content: bytes) -> list[str]:
    root = ElementTree.fromstring(content)
    return [code.text or "" for code in root.iter(f"{OFD}TextCode")]


def sealed(files: dict[str, bytes], pki: Sm2Pki, recorder: KeyUseRecorder | None = None) -> bytes:
    return (
        OfdSealer(pki.sign)
        .seal(
            files,
            keys=pki.keys(),
            when=datetime(2026, 12, 6, 8, 0, tzinfo=UTC),
            page_id=1,
            stamp_box="127 225.5 42 42",
            company="示范市市场监督管理局",
            timestamps=None,
            listener=recorder,
        )
        .data
    )


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# -- attacks ---------------------------------------------------------------------------------


def test_markup_in_a_holder_name_or_field_stays_text_and_never_becomes_xml(
    fonts: tuple[Path, Path],
) -> None:
    """A department's data is printed, never parsed: a name closing the TextCode and opening a
    PathObject, an entity and a quote must come back as the same characters."""
    hostile = '恶意</ofd:TextCode><ofd:PathObject ID="424242"/>&amp;"\'<!ENTITY x>'
    view = replace(VIEW, holder_name=hostile, fields=(("经营场所", "a<b>&c"),))
    files = package(view, fonts)
    content = files["Doc_0/Pages/Page_0/Content.xml"]
    printed = "".join(texts(content))
    assert hostile in printed and "a<b>&c" in printed
    root = ElementTree.fromstring(content)
    # Only the page's own path objects: the one in the name was not smuggled in.
    assert all(p.get("ID") != "424242" for p in root.iter(f"{OFD}PathObject"))
    info = ElementTree.fromstring(files["OFD.xml"])
    names = {c.get("Name"): c.text for c in info.iter(f"{OFD}CustomData")}
    assert names == {"licence.identifier": VIEW.identifier, "licence.verify_url": VIEW.verify_url}


def test_a_content_file_changed_after_sealing_no_longer_matches_its_check_value(
    fonts: tuple[Path, Path],
) -> None:
    pki = Sm2Pki()
    parts = unzip(sealed(package(VIEW, fonts), pki))
    signature = ElementTree.fromstring(parts["Doc_0/Signs/Sign_0/Signature.xml"])
    values = {
        r.get("FileRef"): base64.b64decode(r.findtext(f"{OFD}CheckValue") or "")
        for r in signature.iter(f"{OFD}Reference")
    }
    page = "Doc_0/Pages/Page_0/Content.xml"
    changed = parts[page].replace("示范餐饮管理有限公司".encode(), "另一家公司有限公司".encode())
    assert changed != parts[page]
    assert values[f"/{page}"] == sm3(parts[page])
    assert values[f"/{page}"] != sm3(changed)


# -- the page and the package ------------------------------------------------------------------


def test_the_package_has_the_contracts_files_and_is_the_same_bytes_for_the_same_view(
    fonts: tuple[Path, Path],
) -> None:
    first, second = package(VIEW, fonts), package(VIEW, fonts)
    assert set(first) == CONTRACT_FILES
    assert first == second
    assert zip_package(first) == zip_package(second)
    with zipfile.ZipFile(io.BytesIO(zip_package(first))) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == list(first)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}
    for path, data in first.items():
        if path.endswith(".xml"):
            ElementTree.fromstring(data)  # well-formed, through the hardened parser


def test_the_page_prints_what_the_pdf_prints_in_the_same_place(fonts: tuple[Path, Path]) -> None:
    """Every string of the view is on the page; the seal's box is the PDF's, in mm from the
    top left; each TextCode's advances sum to its box's text width."""
    built = build_package(
        VIEW, None, created=date(2026, 12, 6), regular_font=fonts[0], bold_font=fonts[1]
    )
    printed = texts(built.files["Doc_0/Pages/Page_0/Content.xml"])
    joined = "".join(printed)
    for value in (VIEW.title, VIEW.holder_name, VIEW.holder_id, VIEW.issuer_name, VIEW.identifier,
                  *(v for _, v in VIEW.fields), "扫码核验", VIEW.issue_date):  # fmt: skip
        assert value.replace(" ", "") in joined.replace(" ", ""), value
    pdf = render_page(VIEW, None, regular_font=fonts[0], bold_font=fonts[1])
    x1, y1, x2, y2 = pdf.seal_box
    expected = (x1 / MM, 297 - y2 / MM, (x2 - x1) / MM, (y2 - y1) / MM)
    assert built.stamp_box == pytest.approx(expected, abs=1e-6)
    assert built.qr_version == pdf.qr_version


def test_the_qr_code_is_the_same_matrix_as_the_pdfs_as_one_vector_path(
    fonts: tuple[Path, Path],
) -> None:
    content = package(VIEW, fonts)["Doc_0/Pages/Page_0/Content.xml"]
    root = ElementTree.fromstring(content)
    paths = [
        p
        for p in root.iter(f"{OFD}PathObject")
        if (p.findtext(f"{OFD}AbbreviatedData") or "").count("M") > 50
    ]
    assert len(paths) == 1
    data = paths[0].findtext(f"{OFD}AbbreviatedData") or ""
    x, y, w, _ = (float(v) for v in (paths[0].get("Boundary") or "").split())
    qr = qr_matrix(VIEW.verify_url)
    module = 33 / (qr.size + 2 * QUIET_ZONE)  # the PDF's QR_SIZE is 33 mm, quiet zone included
    runs = list(qr.dark_runs())
    rects = re.findall(r"M ([\d.]+) ([\d.]+) L ([\d.]+) [\d.]+ L [\d.]+ ([\d.]+)", data)
    assert len(rects) == len(runs)
    # Left edge of each run, in modules from the QR box's left edge (quiet zone included).
    left = min(float(r[0]) for r in rects)
    starts = sorted(round((float(r[0]) - left) / module) for r in rects)
    assert starts == sorted(rx - min(r[0] for r in runs) for rx, _, _ in runs)
    assert w == pytest.approx(
        max(rx + n for rx, _, n in runs) * module - min(r[0] for r in runs) * module, abs=0.01
    )
    assert 0 < x < 60 and y > 200  # bottom left of the page, as on the PDF


def test_each_font_holds_exactly_the_characters_printed_in_it(fonts: tuple[Path, Path]) -> None:
    files = package(VIEW, fonts)
    content = ElementTree.fromstring(files["Doc_0/Pages/Page_0/Content.xml"])
    public = ElementTree.fromstring(files["Doc_0/PublicRes.xml"])
    by_id = {f.get("ID"): f.findtext(f"{OFD}FontFile") for f in public.iter(f"{OFD}Font")}
    used: dict[str, set[str]] = {}
    for text in content.iter(f"{OFD}TextObject"):
        code = text.find(f"{OFD}TextCode")
        assert code is not None
        used.setdefault(by_id[text.get("Font")] or "", set()).update(code.text or "")
        deltas = (code.get("DeltaX") or "").split()
        assert len(deltas) == len(code.text or "") - 1  # one advance between each two glyphs
    assert set(used) == {"font_0.ttf", "font_1.ttf"}
    for name, chars in used.items():
        font = TTFont(io.BytesIO(files[f"Doc_0/Res/{name}"]))
        assert set(map(chr, font.getBestCmap())) == chars
        assert len(font.getGlyphOrder()) < 200  # a subset, not the 30,000-glyph font
        assert font["OS/2"].fsType == 0  # installable: a reader may use it


def test_a_templated_page_carries_the_photo_as_an_image_resource(fonts: tuple[Path, Path]) -> None:
    from api.ops.demo import OPERATOR_CERTIFICATE
    from api.ops.demo_faces import placeholder_face

    properties = OPERATOR_CERTIFICATE["field_schema"]["properties"]
    layout = parse_layout(OPERATOR_CERTIFICATE["layout"], properties)
    view = replace(
        VIEW,
        fields=(
            ("作业类别", "特种设备作业"),
            ("作业项目", "叉车司机（N1）"),
            ("用人单位", "港务物流"),
        ),
        field_names=("category", "item", "employer"),
    )
    photo = placeholder_face("郑雅琴")
    files = build_package(
        view, layout, created=date(2026, 12, 6), regular_font=fonts[0], bold_font=fonts[1],
        photo=photo,
    ).files  # fmt: skip
    assert "Doc_0/Res/image_0.jpg" in files and files["Doc_0/Res/image_0.jpg"][:2] == b"\xff\xd8"
    media = ElementTree.fromstring(files["Doc_0/DocumentRes.xml"]).find(f".//{OFD}MultiMedia")
    assert media is not None and media.findtext(f"{OFD}MediaFile") == "image_0.jpg"
    images = list(
        ElementTree.fromstring(files["Doc_0/Pages/Page_0/Content.xml"]).iter(f"{OFD}ImageObject")
    )
    assert [i.get("ResourceID") for i in images] == [media.get("ID")]
    box = ElementTree.fromstring(files["Doc_0/Document.xml"]).findtext(f".//{OFD}PhysicalBox")
    assert box == f"0 0 {layout.width:g} {layout.height:g}"


# -- the seal --------------------------------------------------------------------------------


def test_every_check_value_data_hash_and_both_sm2_signatures_hold(fonts: tuple[Path, Path]) -> None:
    pki = Sm2Pki()
    files = package(VIEW, fonts)
    parts = unzip(sealed(files, pki))
    assert set(parts) == CONTRACT_FILES | SIGNS
    assert {p: parts[p] for p in files} == files  # the content files, byte for byte
    signature_xml = parts["Doc_0/Signs/Sign_0/Signature.xml"]
    signature = ElementTree.fromstring(signature_xml)
    refs = {
        r.get("FileRef"): r.findtext(f"{OFD}CheckValue") for r in signature.iter(f"{OFD}Reference")
    }
    assert set(refs) == {f"/{p}" for p in CONTRACT_FILES}  # every content file, nothing else
    for path in CONTRACT_FILES:
        assert base64.b64decode(refs[f"/{path}"] or "") == sm3(parts[path]), path
    assert signature.findtext(f".//{OFD}SignatureMethod") == SM2_WITH_SM3_OID
    annot = signature.find(f".//{OFD}StampAnnot")
    assert annot is not None and annot.get("PageRef") == "1"
    signatures = ElementTree.fromstring(parts["Doc_0/Signs/Signatures.xml"])
    assert [s.get("BaseLoc") for s in signatures.iter(f"{OFD}Signature")] == [
        "Sign_0/Signature.xml"
    ]

    value = ses.SES_Signature.load(parts["Doc_0/Signs/Sign_0/SignedValue.dat"])
    tbs = value["to_sign"]
    assert tbs["data_hash"].native == sm3(signature_xml)
    assert tbs["property_info"].native == "/Doc_0/Signs/Sign_0/Signature.xml"
    assert value["cert"].native == pki.seal
    seal_key = Sm2PublicKey.from_certificate_der(pki.seal)
    assert seal_key.verify(value["signature"].native, tbs.dump())
    assert not seal_key.verify(value["signature"].native, tbs.dump()[:-1] + b"\x00")
    seseal = tbs["eseal"]
    assert seseal.dump() == parts["Doc_0/Signs/Sign_0/Seal.esl"]
    maker = Sm2PublicKey.from_certificate_der(seseal["cert"].native)
    assert seseal["cert"].native == pki.ca
    assert maker.verify(seseal["signed_value"].native, seseal["eseal_info"].dump())
    info = seseal["eseal_info"]
    assert info["header"]["version"].native == 4 and info["header"]["id"].native == "ES"
    assert list(info["property"]["cert_list"].native) == [pki.seal]
    assert info["picture"]["type"].native == "PNG"


def test_the_seal_maker_signs_a_seal_once_and_the_seal_key_once_per_document(
    fonts: tuple[Path, Path],
) -> None:
    pki = Sm2Pki()

    def sign(ref: KeyRef, message: bytes, listener: KeyUseListener | None, why: str) -> bytes:
        if listener is not None:  # as keys.sm2.sign_message tells the listener
            listener.key_used(ref, why)
        return pki.sign(ref, message, listener, why)

    sealer = OfdSealer(sign)
    recorder = KeyUseRecorder()
    files = package(VIEW, fonts)
    for _ in range(3):
        sealer.seal(
            files, keys=pki.keys(), when=datetime(2026, 12, 6, tzinfo=UTC), page_id=1,
            stamp_box="1 1 42 42", company="部门", timestamps=None, listener=recorder,
        )  # fmt: skip
    purposes = [purpose for _, purpose in recorder.uses]
    assert purposes.count("seal-maker") == 1
    assert purposes.count("ofd-seal") == 3


def test_a_package_that_already_carries_signatures_is_not_sealed_again(
    fonts: tuple[Path, Path],
) -> None:
    files = {**package(VIEW, fonts), "Doc_0/Signs/Signatures.xml": b"<x/>"}
    with pytest.raises(ValueError, match="already has signatures"):
        sealed(files, Sm2Pki())


def test_each_subset_glyph_is_the_source_fonts_outline_and_advance(
    fonts: tuple[Path, Path],
) -> None:
    """The subset reuses the source's compiled glyphs: every outline, advance and the font's
    bounding box must be the source's, as a reader draws them."""
    text = "食品经营许可证（一层）、。ABC xyz 0123 示范市鼓楼区五四路128号"
    for path in fonts:
        subset = TTFont(io.BytesIO(subset_font(path, text).data))
        source = TTFont(str(path))
        new_set, old_set = subset.getGlyphSet(), source.getGlyphSet()
        new_map, old_map = subset.getBestCmap(), source.getBestCmap()
        boxes = []
        for char in set(text):
            new, old = new_set[new_map[ord(char)]], old_set[old_map[ord(char)]]
            drawn_new, drawn_old = RecordingPen(), RecordingPen()
            new.draw(drawn_new)
            old.draw(drawn_old)
            assert drawn_new.value == drawn_old.value, char
            assert new.width == old.width, char
            bounds = BoundsPen(old_set)
            old.draw(bounds)
            if bounds.bounds:
                boxes.append(bounds.bounds)
        notdef = BoundsPen(old_set)
        old_set[".notdef"].draw(notdef)
        boxes.append(notdef.bounds)  # the subset holds .notdef too
        head = subset["head"]
        assert (head.xMin, head.yMin) == (min(b[0] for b in boxes), min(b[1] for b in boxes))
        assert (head.xMax, head.yMax) == (max(b[2] for b in boxes), max(b[3] for b in boxes))
        assert subset["hhea"].advanceWidthMax == max(
            source["hmtx"][old_map[ord(c)]][0] for c in set(text)
        )
