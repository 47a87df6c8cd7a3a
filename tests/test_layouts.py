"""Page templates per licence type (照面版式): a hostile department's templates are refused,
naming the element, when the catalogue version is defined or replaced; a good template prints
each element in its box, and its licences seal and verify like every other.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from licences.layout import MAX_ELEMENTS, parse_layout
from tests.domain import Domain, demo_domain
from tests.layout_support import FIELD_SCHEMA, FIELDS, define, face, issue, layout
from tests.tools import require

PROPS = FIELD_SCHEMA["properties"]
MM = 72 / 25.4


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "layouts")


def _with(index: int, **changes: Any) -> dict[str, Any]:
    bad = layout()
    bad["elements"][index].update(changes)
    return bad


def _too_many() -> dict[str, Any]:
    bad = layout()
    extra = {"kind": "field", "field": "post", "box": [54, 48, 70, 12]}
    bad["elements"] += [dict(extra) for _ in range(MAX_ELEMENTS)]
    return bad


# (the hostile template, the member named, words the message must carry)
BAD_LAYOUTS = [
    (_with(3, box=[180, 33, 70, 12]), "layout.elements[3]", "outside the page's margins"),
    (_with(2, box=[54, -5, 70, 12]), "layout.elements[2]", "box must be"),
    (_with(8, box=[54, 78, 144, 20]), "layout.elements[8]", "overlaps the seal box"),
    (_with(1, box=[14, 80, 33, 43]), "layout.elements[1]", "overlaps the qr box"),
    (_with(4, field="salary"), "layout.elements[4]", "unknown field 'salary'"),
    (_with(4, font_size=72), "layout.elements[4]", "font_size must be 6-36"),
    (_with(4, font_size=2), "layout.elements[4]", "font_size must be 6-36"),
    (_with(9, box=[14, 94, 20, 20]), "layout.elements[9]", "qr box must be 30-80"),
    (_with(9, box=[14, 94, 34, 30]), "layout.elements[9]", "must be square"),
    (_with(10, box=[140, 90, 30, 30]), "layout.elements[10]", "seal box must be 42-80"),
    (_with(0, kind="banner"), "layout.elements[0]", "unknown kind 'banner'"),
    (_with(0, colour="red"), "layout.elements[0]", "unknown members colour"),
    (_with(9, kind="photo"), "layout.elements[9]", "photo appears twice"),
    (_too_many(), "layout.elements", f"at most {MAX_ELEMENTS} elements"),
    ({**layout(), "elements": layout()["elements"][:-1]}, "layout.elements", "needs a seal"),
    ({**layout(), "page": {"width": 2000, "height": 148}}, "layout.page", "width must be"),
    ({**layout(), "border": "flames"}, "layout.border", "must be one of"),
    ({**layout(), "background": "url(x)"}, "layout.background", "#RRGGBB"),
    ({**layout(), "script": "alert(1)"}, "layout", "unknown members script"),
    ([1, 2, 3], "layout", "must be an object"),
]


@pytest.mark.parametrize(("bad", "member", "words"), BAD_LAYOUTS)
def test_a_bad_template_is_refused_naming_its_element(bad: Any, member: str, words: str) -> None:
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput) as refused:
        parse_layout(bad, PROPS)
    assert refused.value.field == member
    assert words in str(refused.value)


def test_the_demo_templates_pass() -> None:
    assert parse_layout(layout(), PROPS).has_photo


@pytest.mark.parametrize(("bad", "member", "words"), BAD_LAYOUTS[:6])
def test_the_api_refuses_a_bad_template_with_422_naming_the_element(
    domain: Domain, bad: Any, member: str, words: str
) -> None:
    response = define(domain, "201", bad)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == member and words in problem["detail"], problem
    # nothing half-written: the code is still free
    assert domain.client.get(f"/api/v1/catalogue/licence-types/{domain.department(1)['code']}201").status_code == 404


def test_replacing_a_version_with_a_bad_template_is_refused_and_keeps_the_version(
    domain: Domain,
) -> None:
    created = define(domain, "202")
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["layout"] == layout() and entry["version"] == 1
    body = {k: entry[k] for k in ("name", "name_en", "authority_level", "holder_category",
                                  "validity_years", "field_schema")}  # fmt: skip
    url = f"/api/v1/catalogue/licence-types/{entry['code']}"
    refused = domain.client.put(
        url, json={**body, "layout": _with(5, box=[128, 85, 70, 12])}, headers=domain.auth(1)
    )
    assert refused.status_code == 422 and refused.json()["field"] == "layout.elements[5]"
    assert domain.client.get(url).json()["version"] == 1
    # a field removed from the schema while the template still names it is refused too
    narrowed = {**FIELD_SCHEMA, "properties": {"post": PROPS["post"]}, "required": ["post"]}
    refused = domain.client.put(
        url, json={**body, "field_schema": narrowed, "layout": layout()}, headers=domain.auth(1)
    )
    assert refused.status_code == 422 and "unknown field 'exam_org'" in refused.json()["detail"]
    # a good template is a new version, kept in the history
    moved = _with(9, box=[16, 94, 34, 34])
    replaced = domain.client.put(url, json={**body, "layout": moved}, headers=domain.auth(1))
    assert replaced.status_code == 200 and replaced.json()["version"] == 2
    history = domain.client.get(url + "/versions").json()
    assert [v["definition"]["layout"]["elements"][9]["box"] for v in history] == [
        [14, 94, 34, 34],
        [16, 94, 34, 34],
    ]


def _words(pdf: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Each word pdftotext finds, with its box in millimetres from the top left."""
    out = subprocess.run(
        [require("pdftotext"), "-bbox", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    import re

    found = []
    for m in re.finditer(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', out
    ):
        x1, y1, x2, y2 = (float(m.group(i)) / MM for i in range(1, 5))
        found.append((m.group(5), (x1, y1, x2, y2)))
    return found


def _inside(inner: tuple[float, ...], box: list[float]) -> bool:
    x, y, w, h = box
    return x - 0.5 <= inner[0] and inner[2] <= x + w + 0.5 and y - 0.5 <= inner[1] and inner[3] <= y + h + 0.5


def test_a_templated_licence_prints_each_element_in_its_box_and_verifies(
    domain: Domain, tmp_path: Path
) -> None:
    code = define(domain, "203").json()["code"]
    issued = issue(domain, code, face())
    assert issued.status_code == 201, issued.text
    pdf = tmp_path / "licence.pdf"
    pdf.write_bytes(domain.pdf(issued.json(), 1))
    words = _words(pdf)
    boxes = {e.get("field", e["kind"]): e["box"] for e in layout()["elements"]}
    expected = {"post": "餐饮服务（厨师）", "exam_org": FIELDS["exam_org"], "holder_name": "陈建华"}
    for name, value in expected.items():
        hits = [bbox for word, bbox in words if word == value]
        assert hits and all(_inside(b, boxes[name]) for b in hits), (name, hits, boxes[name])
    # the page is A5 landscape, as the template says
    info = subprocess.run(
        [require("pdfinfo"), str(pdf)], check=True, capture_output=True, text=True
    ).stdout
    assert "595.276 x 419.528 pts" in info
    subprocess.run([require("qpdf"), "--check", str(pdf)], check=True, capture_output=True)
    sig = subprocess.run([require("pdfsig"), str(pdf)], capture_output=True, text=True).stdout
    assert "Signature #1" in sig
    report = domain.verify_pdf(pdf.read_bytes())
    assert report["indication"] == "PASSED", report
    qr = domain.client.post("/api/v1/verify", json={"qr": issued.json()["links"]["verify"]})
    assert qr.json()["indication"] == "PASSED", qr.json()


def test_a_templated_qr_code_scans_from_a_150_dpi_copy(domain: Domain, tmp_path: Path) -> None:
    import zxingcpp
    from PIL import Image

    code = define(domain, "204").json()["code"]
    issued = issue(domain, code, face()).json()
    pdf = tmp_path / "licence.pdf"
    pdf.write_bytes(domain.pdf(issued, 1))
    subprocess.run(
        [require("pdftoppm"), "-r", "150", "-gray", "-png", "-singlefile", str(pdf),
         str(tmp_path / "page")],
        check=True,
    )  # fmt: skip
    image = Image.open(tmp_path / "page.png")
    [symbol] = [
        b for b in zxingcpp.read_barcodes(image) if b.format == zxingcpp.BarcodeFormat.QRCode
    ]
    assert symbol.text == issued["links"]["verify"]


def test_a_value_too_long_for_its_box_is_refused_naming_the_field(domain: Domain) -> None:
    code = define(domain, "205", _with(5, box=[128, 48, 30, 8])).json()["code"]
    long = {**FIELDS, "exam_org": "示范市疾病预防控制中心第一门诊部" * 3}
    response = domain.client.post(
        "/api/v1/licences",
        json={"licence_type": code, "holder": {"id_type": "111", "id": "350102198503120034",
              "name": "陈建华"}, "fields": long},
        headers=domain.auth(1),
    )  # fmt: skip
    assert response.status_code == 422 and response.json()["field"] == "fields.exam_org"


def test_types_without_a_template_print_the_default_page(domain: Domain, tmp_path: Path) -> None:
    """The demo's food licence has no template: the A4 page of licences.render, as before."""
    pdf = tmp_path / "food.pdf"
    pdf.write_bytes(domain.pdf(domain.issue(0), 0))
    info = subprocess.run(
        [require("pdfinfo"), str(pdf)], check=True, capture_output=True, text=True
    ).stdout
    assert "595.276 x 841.89 pts (A4)" in info


@pytest.mark.parametrize("index", [0, 1])
def test_the_demo_templated_licences_with_photos_render_and_verify(
    domain: Domain, index: int, tmp_path: Path
) -> None:
    """The demo's two templated types each have a licence with a drawn placeholder photo:
    sealed (pdfsig, qpdf), PASSED as a PDF and by its QR code, the photo in its slot."""
    from sqlalchemy import text

    from api.ops import demo

    kind = (demo.OPERATOR_CERTIFICATE, demo.HEALTH_CERTIFICATE)[index]
    with domain.services.engine.connect() as conn:
        identifier, code = conn.execute(
            text("SELECT identifier, verify_code FROM licence WHERE type_code = :t"),
            {"t": kind["code"]},
        ).one()
        photos = conn.execute(
            text("SELECT count(*) FROM licence_photo WHERE identifier = :i"), {"i": identifier}
        ).scalar_one()
    assert photos == 1
    pdf = tmp_path / "demo.pdf"
    pdf.write_bytes(domain.pdf({"identifier": identifier}, index))
    subprocess.run([require("qpdf"), "--check", str(pdf)], check=True, capture_output=True)
    sig = subprocess.run([require("pdfsig"), str(pdf)], capture_output=True, text=True).stdout
    assert "Signature #1" in sig and kind["authority_name"] in sig
    images = subprocess.run(
        [require("pdfimages"), "-list", str(pdf)], check=True, capture_output=True, text=True
    ).stdout
    assert len([line for line in images.splitlines()[2:] if " image " in line]) >= 1
    assert domain.verify_pdf(pdf.read_bytes())["indication"] == "PASSED"
    report = domain.client.post("/api/v1/verify", json={"qr": code}).json()
    assert report["indication"] == "PASSED", report


def _view(holder_name: str, fields: dict[str, str], identifier: str) -> Any:
    from licences.render import LicenceView

    names = tuple(fields)
    return LicenceView(
        title="从业人员健康证明",
        title_en="Food Handler Health Certificate",
        identifier=identifier,
        holder_label="姓名",
        holder_name=holder_name,
        holder_id="350102198503120034",
        fields=tuple((PROPS[n].get("title", n), v) for n, v in fields.items()),
        issuer_name="示范市卫生健康委员会",
        issue_date="2026-12-07",
        valid_from="2026-12-07",
        valid_until="2027-12-06",
        verify_url="HTTPS://LICENCE.EXAMPLE.GOV.CN/V/",
        version="001",
        field_names=names,
    )


# (what grows, how many times the base text) — from fitting easily to far past 6 pt
GROWN = [(what, times) for what in ("holder.name", "fields.exam_org", "identifier")
         for times in range(1, 10)]  # fmt: skip


@pytest.mark.parametrize(("what", "times"), GROWN)
def test_the_fit_check_before_sealing_agrees_with_the_page(
    domain: Domain, what: str, times: int
) -> None:
    """Issuance refuses an overflowing value before the QR code is signed, by fitting each
    labelled value without drawing the page; the page itself fits them again when drawn. The
    two must agree on every value: the check passing a value the page then refuses would fail
    an issuance after signing, and the other way round would refuse a licence that fits."""
    from core.errors import InvalidInput
    from licences.layout import parse_layout
    from licences.layout_page import check_page_fits, render_layout

    fonts = domain.services.issuance._fonts
    parsed = parse_layout(layout(), PROPS)
    name, fields, identifier = "陈建华", dict(FIELDS), "1135010000360001XN205" + "00000001001"
    if what == "holder.name":
        name = "欧阳" * (4 * times)
    elif what == "fields.exam_org":
        fields["exam_org"] = "示范市疾病预防控制中心" * times
    else:
        identifier = identifier * times
    view = _view(name, fields, identifier)

    def outcome(check: Any) -> str | None:
        try:
            check(view, parsed, regular_font=fonts.regular, bold_font=fonts.bold)
        except InvalidInput as refused:
            return refused.field or "?"
        return None

    checked, drawn = outcome(check_page_fits), outcome(render_layout)
    assert checked == drawn
    assert checked in (None, what)
    if times == 9:  # nine times the text overflows every one of these boxes
        assert checked == what
