"""The specimen (样本) of a licence type: the type's page with sample values, watermarked
"样本 SPECIMEN" over everything, never sealed, its QR code saying SPECIMEN — so a specimen
printed and shown at a counter can never pass as a licence — and rendered once per version.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.domain import Domain, demo_domain
from tests.layout_support import define, layout
from tests.tools import require


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "specimen")


def _get(domain: Domain, code: str, tmp_path: Path, query: str = "") -> Path:
    response = domain.client.get(f"/api/v1/catalogue/licence-types/{code}/specimen{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    path = tmp_path / f"specimen{query.replace('?', '_').replace('=', '')}.pdf"
    path.write_bytes(response.content)
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require(args[0]), *args[1:]], capture_output=True, text=True)


def test_a_specimen_is_unsealed_watermarked_and_its_qr_says_specimen(
    domain: Domain, tmp_path: Path
) -> None:
    import zxingcpp
    from PIL import Image

    code = define(domain, "401").json()["code"]
    pdf = _get(domain, code, tmp_path)
    assert _run("qpdf", "--check", str(pdf)).returncode == 0
    sig = _run("pdfsig", str(pdf))
    assert "does not contain any signatures" in sig.stdout + sig.stderr
    text = _run("pdftotext", str(pdf), "-").stdout
    assert "从业人员健康证明" in text and _watermarked(pdf)
    subprocess.run(
        [require("pdftoppm"), "-r", "150", "-gray", "-png", "-singlefile", str(pdf),
         str(tmp_path / "page")],
        check=True,
    )  # fmt: skip
    symbols = zxingcpp.read_barcodes(Image.open(tmp_path / "page.png"))
    assert [s.text for s in symbols if s.format == zxingcpp.BarcodeFormat.QRCode] == ["SPECIMEN"]
    # and a verifier given a specimen's "code" finds nothing to pass
    report = domain.client.post("/api/v1/verify", json={"qr": "SPECIMEN"}).json()
    assert report["indication"] != "PASSED"
    # uploaded as if it were a licence: no signature, never PASSED
    assert domain.verify_pdf(pdf.read_bytes())["indication"] != "PASSED"


def watermark_lines(pdf: Path) -> list[str]:
    """The words of the diagonal watermark: pdftotext -raw gives the rotated text lines of their
    own, apart from the identifier and footer (which also say SPECIMEN and 样本)."""
    lines = _run("pdftotext", "-raw", str(pdf), "-").stdout.splitlines()
    return [line for line in lines if line.strip() in ("样", "本", "样本", "SPECIMEN", "样本 SPECIMEN")]


def _watermarked(pdf: Path) -> bool:
    found = watermark_lines(pdf)
    return "样本" in found or {"样", "本"} <= set(found)


def test_the_watermark_is_printed_over_the_page(domain: Domain, tmp_path: Path) -> None:
    code = define(domain, "402").json()["code"]
    pdf = _get(domain, code, tmp_path)
    assert _watermarked(pdf)
    # and it is drawn in translucent red across the middle, where no element is red
    from PIL import Image

    subprocess.run([require("pdftoppm"), "-r", "50", "-png", "-singlefile", str(pdf),
                    str(tmp_path / "page")], check=True)  # fmt: skip
    page = Image.open(tmp_path / "page.png").convert("RGB")
    w, h = page.size
    middle = page.crop((w // 3, h // 3, 2 * w // 3, 2 * h // 3))
    reddish = sum(1 for r, g, b in middle.getdata() if r > g + 40 and r > b + 40)  # type: ignore[misc]
    assert reddish > 100, reddish


def test_a_type_without_a_template_has_a_specimen_of_the_default_page(
    domain: Domain, tmp_path: Path
) -> None:
    code = domain.department(0)["sample_request"]["licence_type"]
    pdf = _get(domain, code, tmp_path)
    assert "A4" in _run("pdfinfo", str(pdf)).stdout
    text = _run("pdftotext", str(pdf), "-").stdout
    assert "食品经营许可证" in text and _watermarked(pdf)
    assert "does not contain any signatures" in _run("pdfsig", str(pdf)).stdout


def test_specimens_are_per_version_and_cached(domain: Domain, tmp_path: Path) -> None:
    entry = define(domain, "403").json()
    code = entry["code"]
    first = _get(domain, code, tmp_path).read_bytes()
    assert _get(domain, code, tmp_path).read_bytes() == first  # the same bytes, once rendered
    body = {k: entry[k] for k in ("name", "name_en", "authority_level", "holder_category",
                                  "validity_years", "field_schema")}  # fmt: skip
    moved = layout()
    moved["elements"][9]["box"] = [16, 94, 34, 34]
    put = domain.client.put(
        f"/api/v1/catalogue/licence-types/{code}",
        json={**body, "name": "从业人员健康证明（新版）", "layout": moved},
        headers=domain.auth(1),
    )
    assert put.status_code == 200, put.text
    now = _run("pdftotext", str(_get(domain, code, tmp_path)), "-").stdout
    then = _run("pdftotext", str(_get(domain, code, tmp_path, "?version=1")), "-").stdout
    assert "新版" in now and "新版" not in then


def test_an_unknown_type_has_no_specimen(domain: Domain) -> None:
    response = domain.client.get("/api/v1/catalogue/licence-types/NOPE/specimen")
    assert response.status_code == 404 and response.json()["field"] == "licence_type"
