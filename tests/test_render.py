"""The printable licence page: fonts, QR code, layout boxes, extractable text, determinism."""

from __future__ import annotations

import html
import io
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from core.errors import InvalidInput
from core.fonts import BOLD, REGULAR, cjk_font_path
from licences.qr import ALPHANUMERIC, qr_matrix
from licences.render import (
    MM,
    LicenceView,
    RenderedLicence,
    font_name,
    render_licence,
    text_width,
    wrap,
)
from tests.tools import require, require_module

A4_W, A4_H = 595.2756, 841.8898
RESOLUTION = 150
VERIFY_URL = "HTTPS://LICENCE.EXAMPLE.GOV.CN/V/ABCDEFGHJKMNPQRSTUVWXYZ234567ABCDEFGH"
LONG_SCOPE = (
    "预包装食品销售（含冷藏冷冻食品）；散装食品销售（含冷藏冷冻食品、含熟食）；"
    "特殊食品销售（保健食品、婴幼儿配方乳粉、其他婴幼儿配方食品）；热食类食品制售；"
    "冷食类食品制售（含烧卤熟肉类、生食类）；生食类食品制售；糕点类食品制售（含裱花蛋糕）；"
    "自制饮品制售（不含自酿酒）；半成品制售；其他类食品制售（Western-style dishes, sushi）"
)
SAMPLE = LicenceView(
    title="食品经营许可证",
    title_en="Food Business Licence",
    identifier="1.2.156.3005.2.11100000000013338W.001.JY13501000001234.001.D",
    holder_label="持证主体",
    holder_name="某某餐饮管理有限公司",
    holder_id="91350100M000100Y43",
    fields=(
        ("经营场所", "福建省福州市鼓楼区某某路88号某某大厦一层101室"),
        ("主体业态", "餐饮服务经营者（大型餐馆）"),
        ("经营项目", LONG_SCOPE),
    ),
    issuer_name="某某市市场监督管理局",
    issue_date="2024年03月15日",
    valid_from="2024年03月15日",
    valid_until="2029年03月14日",
    verify_url=VERIFY_URL,
    version="1",
)

Box = tuple[float, float, float, float]


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def fonts() -> dict[str, Path]:
    return {"regular_font": cjk_font_path(REGULAR), "bold_font": cjk_font_path(BOLD)}


@pytest.fixture(scope="module")
def rendered(fonts: dict[str, Path]) -> RenderedLicence:
    return render_licence(SAMPLE, **fonts)


@pytest.fixture(scope="module")
def pdf_path(rendered: RenderedLicence, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("licence") / "licence.pdf"
    path.write_bytes(rendered.pdf)
    return path


def words(pdf: Path) -> list[tuple[str, Box]]:
    """Words with their boxes in PDF points, origin bottom left as in RenderedLicence."""
    out = run(require("pdftotext"), "-bbox", str(pdf), "-")
    found = []
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>'
    for x1, y1, x2, y2, text in re.findall(pattern, out):
        found.append(
            (html.unescape(text), (float(x1), A4_H - float(y2), float(x2), A4_H - float(y1)))
        )
    return found


def intersects(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_qpdf_check_passes(pdf_path: Path) -> None:
    result = subprocess.run(
        [require("qpdf"), "--check", str(pdf_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_a4_page_with_metadata(rendered: RenderedLicence) -> None:
    with pikepdf.open(io.BytesIO(rendered.pdf)) as pdf:
        assert len(pdf.pages) == 1
        box = [float(v) for v in pdf.pages[0].mediabox]
        assert box == pytest.approx([0, 0, A4_W, A4_H], abs=0.01)
        assert str(pdf.docinfo["/Title"]) == SAMPLE.title
        assert str(pdf.docinfo["/Author"]) == SAMPLE.issuer_name
        assert SAMPLE.title in str(pdf.docinfo["/Subject"])


def test_fonts_are_embedded_subset_with_unicode_maps(pdf_path: Path) -> None:
    lines = run(require("pdffonts"), str(pdf_path)).splitlines()[2:]
    assert len(lines) >= 2, "expected the regular and the bold font"
    names = set()
    for line in lines:
        # name type encoding emb sub uni object-id generation; type may contain spaces.
        name, *_, emb, sub, uni, _obj, _gen = line.split()
        assert (emb, sub, uni) == ("yes", "yes", "yes"), line
        assert re.fullmatch(r"[A-Z]{6}\+.+", name), line
        names.add(name.split("+", 1)[1])
    assert len(names) == 2, f"regular and bold must stay distinct fonts: {names}"


def test_qr_code_decodes_to_the_verify_url_inside_qr_box(
    rendered: RenderedLicence, pdf_path: Path, tmp_path: Path
) -> None:
    zxingcpp = require_module("zxingcpp")
    prefix = tmp_path / "page"
    run(require("pdftoppm"), "-r", str(RESOLUTION), "-png", "-f", "1", "-l", "1",
        "-singlefile", str(pdf_path), str(prefix))  # fmt: skip
    image = Image.open(prefix.with_suffix(".png"))
    results = zxingcpp.read_barcodes(image)
    assert [r.text for r in results] == [VERIFY_URL]
    qr = results[0]
    assert qr.ec_level == "M"
    assert qr.extra.get("Version") == str(rendered.qr_version) == "4"
    assert qr.extra.get("DataMask") == 0
    scale = RESOLUTION / 72
    x1, y1, x2, y2 = rendered.qr_box
    for corner in (qr.position.top_left, qr.position.bottom_right):
        assert x1 * scale <= corner.x <= x2 * scale
        assert (A4_H - y2) * scale <= corner.y <= (A4_H - y1) * scale
    assert 30 * MM <= x2 - x1 <= 35 * MM


def test_seal_box_is_on_the_page_over_the_issuer_and_clear_of_other_content(
    rendered: RenderedLicence, pdf_path: Path
) -> None:
    seal, qr = rendered.seal_box, rendered.qr_box
    assert 12 * MM <= seal[0] < seal[2] <= A4_W - 12 * MM
    assert 12 * MM <= seal[1] < seal[3] <= A4_H - 12 * MM
    assert seal[2] - seal[0] == pytest.approx(42 * MM, abs=2 * MM)
    assert seal[3] - seal[1] == pytest.approx(42 * MM, abs=2 * MM)
    assert not intersects(seal, qr)
    page = words(pdf_path)
    issuer_block = {SAMPLE.issuer_name, SAMPLE.issue_date, "发证机关", "发证日期", "/"}
    issuer_block |= {"Issuing", "authority", "Date", "of", "issue"}
    under_seal = {text for text, box in page if intersects(box, seal)}
    assert SAMPLE.issuer_name in under_seal and SAMPLE.issue_date in under_seal
    assert under_seal <= issuer_block, under_seal - issuer_block
    assert not [text for text, box in page if intersects(box, qr)]


def test_cjk_text_is_extractable(pdf_path: Path) -> None:
    text = run(require("pdftotext"), "-layout", str(pdf_path), "-")
    for expected in (SAMPLE.title, SAMPLE.holder_name, SAMPLE.holder_id, SAMPLE.issuer_name):
        assert expected in text
    assert "扫码核验" in text and "Scan to verify" in text


def test_long_values_wrap_inside_their_cell(pdf_path: Path) -> None:
    text = run(require("pdftotext"), str(pdf_path), "-")
    assert LONG_SCOPE.replace(" ", "") in re.sub(r"\s", "", text)
    lines = [(t, box) for t, box in words(pdf_path) if t and t in LONG_SCOPE]
    assert len({round(box[1]) for _, box in lines}) >= 3, "the long value should span lines"
    right_edge = max(box[2] for _, box in words(pdf_path) if box[1] > 84 * MM)
    assert right_edge <= A4_W - 22 * MM


def test_same_input_gives_identical_bytes(fonts: dict[str, Path]) -> None:
    first = render_licence(SAMPLE, **fonts)
    second = render_licence(SAMPLE, **fonts)
    assert first == second
    other = render_licence(replace(SAMPLE, holder_name="另一家公司"), **fonts)
    assert other.pdf != first.pdf


def test_indefinite_validity_and_missing_english_title(
    fonts: dict[str, Path], tmp_path: Path
) -> None:
    view = replace(SAMPLE, valid_until=None, title_en=None, verify_url=VERIFY_URL.lower())
    result = render_licence(view, **fonts)
    path = tmp_path / "l.pdf"
    path.write_bytes(result.pdf)
    text = run(require("pdftotext"), str(path), "-")
    assert "2024年03月15日 至 长期" in text
    assert "FOOD BUSINESS LICENCE" not in text
    assert result.qr_version > 4  # lower case forces byte mode


def test_too_much_text_for_one_page_is_refused(fonts: dict[str, Path]) -> None:
    view = replace(SAMPLE, fields=tuple((f"项目{i}", LONG_SCOPE) for i in range(8)))
    with pytest.raises(InvalidInput, match="one page") as refused:
        render_licence(view, **fonts)
    assert refused.value.field == "fields"
    named = replace(view, field_names=tuple(f"item{i}" for i in range(8)))
    longest = replace(named, fields=(*view.fields[:3], ("项目3", LONG_SCOPE * 2), *view.fields[4:]))
    with pytest.raises(InvalidInput, match="one page") as refused:
        render_licence(longest, **fonts)
    assert refused.value.field == "fields.item3"


def test_many_fields_shrink_but_stay_on_one_page(fonts: dict[str, Path]) -> None:
    view = replace(SAMPLE, fields=tuple((f"项目{i}", LONG_SCOPE[:60]) for i in range(9)))
    with pikepdf.open(io.BytesIO(render_licence(view, **fonts).pdf)) as pdf:
        assert len(pdf.pages) == 1


def test_wrap_keeps_every_character_within_width(fonts: dict[str, Path]) -> None:
    font = font_name(fonts["regular_font"])
    text = SAMPLE.identifier + "；" + LONG_SCOPE
    for width in (40.0, 120.0, 300.0):
        lines = wrap(text, font, 10, width)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
        assert all(text_width(line, font, 10) <= width + 1e-6 for line in lines)
        assert not any(line[0] in "，。；：）" for line in lines if line)


def test_qr_matrix_uses_alphanumeric_mode_for_upper_case_urls() -> None:
    assert set(VERIFY_URL) <= ALPHANUMERIC
    upper, lower = qr_matrix(VERIFY_URL), qr_matrix(VERIFY_URL.lower())
    # 70 characters: alphanumeric fits version 4-M (90), byte mode needs version 5 (84).
    assert (upper.version, upper.size) == (4, 33)
    assert lower.version == 5
    assert qr_matrix("证照").version == 1
