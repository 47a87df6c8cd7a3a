"""The font tables kept per process (licences/render.py ``_keep_tables``) change no byte of a
rendered licence: the same page rendered with ReportLab reading every table afresh from the
font file is identical, and the kept tables are the font file's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reportlab.pdfbase import pdfmetrics

from core.fonts import BOLD, REGULAR, cjk_font_path
from licences.render import LicenceView, font_name, render_licence

VIEW = LicenceView(
    title="医师执业证书",
    title_en="Medical Practitioner's Licence",
    identifier="1.2.156.3005.2.11100000000013338W.001.JY13501000001234.001.D",
    holder_label="持证人",
    holder_name="陈建华",
    holder_id="350102198001011234",
    fields=(("执业地点", "福建省福州市鼓楼区某某医院"), ("执业范围", "内科专业；全科医学专业")),
    issuer_name="某某市卫生健康委员会",
    issue_date="2026年12月07日",
    valid_from="2026年12月07日",
    valid_until=None,
    verify_url="HTTPS://LICENCE.EXAMPLE.GOV.CN/V/ABCDEFGHJKMNPQRSTUVWXYZ234567ABCDEFGH",
    version="1",
)


@pytest.fixture(scope="module")
def fonts() -> dict[str, Path]:
    return {"regular_font": cjk_font_path(REGULAR), "bold_font": cjk_font_path(BOLD)}


def render(fonts: dict[str, Path]) -> bytes:
    return render_licence(
        VIEW, regular_font=fonts["regular_font"], bold_font=fonts["bold_font"]
    ).pdf


def faces(fonts: dict[str, Path]) -> list[Any]:
    return [pdfmetrics.getFont(font_name(path)).face for path in fonts.values()]


def test_a_page_rendered_with_the_kept_tables_is_byte_identical(
    fonts: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = render(fonts)  # first use fills the tables
    again = render(fonts)  # second use reads them
    for face in faces(fonts):  # ReportLab's own reading, copied from the file every time
        monkeypatch.setattr(face, "get_table", type(face).get_table.__get__(face))
    fresh = render(fonts)
    assert kept == again == fresh


def test_the_kept_tables_are_the_font_files_own(fonts: dict[str, Path]) -> None:
    render(fonts)
    for face in faces(fonts):
        for tag in ("glyf", "loca", "hmtx", "head", "cmap"):
            assert face.get_table(tag) == type(face).get_table(face, tag)
            assert face.get_table(tag) is face.get_table(tag)  # copied once, then kept
