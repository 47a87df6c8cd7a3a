"""An OFD file opened in ofd.js (an independent reader) in Chromium: what the reader saw.

The test page and the files it loads are served by Playwright's request interception on a
made-up origin (``http://ofd-reader.test/``), from memory: no server, no network, and nothing of
the product's pages or CSP in the way. The page loads the vendored bundle, parses the OFD, renders
page 1 with ``ofd.renderOfd`` and reports what ofd.js itself concluded about the seal: whether it
decoded the GB/T 38540 SES_Signature and verified its SM2 signature (sm-crypto), and whether the
SM3 digests of the referenced files match (``ofd.digestCheck``). The page element is then
screenshotted; the tests look at the pixels (red seal picture in the stamp's box, QR code).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.tools import require, require_module

VENDOR = Path(__file__).parent / "vendor" / "ofd.js"
BUNDLE = VENDOR / "ofd.umd.min.js"
# The bundle scripts/vendor-ofdjs.sh copies out of ofd.js-0.2.6.tgz (whose SHA-256 it checks).
BUNDLE_SHA256 = "9b47d64947c94839a6cb24ef3e291ffb8047d2d372ca92836a14bef3a130eda0"
ORIGIN = "http://ofd-reader.test"
RENDER_WIDTH = 800  # CSS px handed to renderOfd; ofd.js picks its own scale below it

PAGE = (
    """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>ofd.js reader</title>
<style>body{margin:0;background:#808080}#page>div{margin:0 !important}</style>
<div id="page"></div><script src="ofd.umd.min.js"></script><script>
window.reader = null;
fetch('licence.ofd').then(r => r.arrayBuffer()).then(buffer => {
  ofd.parseOfdDocument({ofd: buffer, success(docs) {
    try {
      const doc = docs[0];
      const pages = ofd.renderOfd(RENDER_WIDTH, doc);
      document.getElementById('page').appendChild(pages[0]);
      const checked = window.toBeChecked || new Map();
      const digests = Array.from(checked.keys()).map(id => ofd.digestCheck(checked.get(id)));
      const seals = [];
      for (const list of Object.values(doc.stampAnnot || {})) {
        for (const stamp of [].concat(list)) {
          const obj = stamp.stamp && stamp.stamp.sealObj || {};
          seals.push({type: obj.type || null, verified: obj.verifyRet === true});
        }
      }
      window.reader = {pages: pages.length, digests, seals,
                       text: document.getElementById('page').textContent};
    } catch (e) { window.reader = {error: String(e)}; }
  }, fail(e) { window.reader = {error: String(e)}; }});
}).catch(e => { window.reader = {error: String(e)}; });
</script></html>"""
).replace("RENDER_WIDTH", str(RENDER_WIDTH))


@dataclass(frozen=True)
class Reading:
    """What ofd.js made of a file: its own verdicts and a screenshot of page 1."""

    pages: int
    digests: list[bool]  # ofd.digestCheck per signature: SM3 of every referenced file matches
    seals: list[dict[str, Any]]  # per stamp annotation: picture type, SM2 signature verified
    text: str  # the page's text as rendered (one glyph per element, so joined without spaces)
    png: bytes  # screenshot of the rendered page 1, device pixels
    page_mm: tuple[float, float]  # the page's physical box

    def image(self) -> Any:
        from PIL import Image

        return Image.open(io.BytesIO(self.png)).convert("RGB")

    def box_px(self, box_mm: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        """A box in the page's millimetres as (left, top, right, bottom) screenshot pixels."""
        width, height = self.image().size
        sx, sy = width / self.page_mm[0], height / self.page_mm[1]
        x, y, w, h = box_mm
        return round(x * sx), round(y * sy), round((x + w) * sx), round((y + h) * sy)

    def red_pixels(self, box_mm: tuple[float, float, float, float]) -> int:
        """Pixels in the box that are seal red (strong red, little green or blue)."""
        data = self.image().crop(self.box_px(box_mm)).tobytes()
        return sum(
            1
            for r, g, b in zip(data[0::3], data[1::3], data[2::3], strict=True)
            if r > 150 and g < 110 and b < 110
        )

    def qr_texts(self) -> list[str]:
        zxingcpp = require_module("zxingcpp")
        return [
            b.text
            for b in zxingcpp.read_barcodes(self.image())
            if b.format == zxingcpp.BarcodeFormat.QRCode
        ]


def check_bundle() -> bytes:
    """The vendored bundle, refused unless it is byte for byte the pinned release."""
    data = BUNDLE.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == BUNDLE_SHA256, (
        f"{BUNDLE} has SHA-256 {digest}, not the pinned ofd.js 0.2.6 bundle: "
        "regenerate it with scripts/vendor-ofdjs.sh"
    )
    return data


@pytest.fixture(scope="module")
def reader_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's Chromium through Playwright, with the service's CJK font findable."""
    from tests.test_browser import CHROMIUM_ARGS, _fontconfig

    executable = require("chromium")  # first: in strict mode a missing browser fails
    sync_api = require_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=CHROMIUM_ARGS,
            headless=True,
            env=_fontconfig(tmp_path_factory.mktemp("ofd-fontconfig")),
        )
        yield browser
        browser.close()


def page_box_mm(files: dict[str, bytes]) -> tuple[float, float]:
    """The PhysicalBox of Document.xml's PageArea (width, height in mm), read with a regex so
    that this harness depends on no XML code of ours."""
    document = files["Doc_0/Document.xml"].decode()
    match = re.search(r"<ofd:PhysicalBox>\s*([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)\s*<", document)
    assert match, "Document.xml has no PageArea/PhysicalBox"
    return float(match.group(3)), float(match.group(4))


def read_ofd(browser: Any, ofd: bytes, screenshot: Path | None = None) -> Reading:
    """Open ``ofd`` in ofd.js and render page 1."""
    from tests.ofd_independent import unzip_package

    bundle = check_bundle()
    files = {
        "index.html": (PAGE.encode(), "text/html; charset=utf-8"),
        "ofd.umd.min.js": (bundle, "text/javascript"),
        "licence.ofd": (ofd, "application/ofd"),
    }
    context = browser.new_context(
        viewport={"width": RENDER_WIDTH + 100, "height": 1200}, device_scale_factor=2
    )
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        def serve(route: Any) -> None:
            name = route.request.url.removeprefix(ORIGIN + "/")
            if name not in files:
                route.fulfill(status=404, body=b"")
                return
            body, content_type = files[name]
            route.fulfill(status=200, body=body, content_type=content_type)

        page.route(ORIGIN + "/**", serve)
        page.goto(f"{ORIGIN}/index.html")
        page.wait_for_function("window.reader !== null", timeout=60_000)
        result = page.evaluate("window.reader")
        assert "error" not in result, f"ofd.js could not open the file: {result['error']}"
        assert not errors, f"errors in the reader page: {errors}"
        # Pictures are <img> elements whose data: URLs decode asynchronously.
        page.wait_for_function(
            "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        png = page.locator("#page > div").first.screenshot()
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(png)
        return Reading(
            pages=int(result["pages"]),
            digests=[bool(d) for d in result["digests"]],
            seals=list(result["seals"]),
            text=str(result["text"]),
            png=png,
            page_mm=page_box_mm(unzip_package(ofd)),
        )
    finally:
        context.close()


def stamp_box_mm(files: dict[str, bytes]) -> tuple[float, float, float, float]:
    """The StampAnnot's Boundary in Signature.xml (x, y, w, h in mm)."""
    signature = files["Doc_0/Signs/Sign_0/Signature.xml"].decode()
    match = re.search(r"<ofd:StampAnnot\b[^>]*\bBoundary=\"([^\"]+)\"", signature)
    assert match, "Signature.xml has no StampAnnot Boundary"
    x, y, w, h = (float(v) for v in match.group(1).split())
    return x, y, w, h
