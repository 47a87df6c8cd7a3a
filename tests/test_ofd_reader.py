"""The OFD opened in a reader that is not ours: ofd.js (vendored, pinned) in Chromium.

A relying party's OFD reader must show the licence with its seal: the picture carried in the
GB/T 38540 SESeal drawn at the stamp annotation, and the QR code a phone scans. These tests open
the file in ofd.js, screenshot page 1, count seal-red pixels inside the StampAnnot's box and
decode the QR code from the screenshot with zxing-cpp; ofd.js's own verdicts (the SM2 signature
over toSign by sm-crypto, the SM3 digests of the referenced files) are asserted too.

The harness is first proven on an OFD made by hand with OpenSSL (tests/ofd_independent.py), with
the attacks that must show: a file changed after sealing fails ofd.js's digest check, a seal
whose signature is not the signer's fails its signature check, and a seal picture that is not red
gives no red pixels, so the pixel count is not vacuous. The product's OFD (issued through the API)
is read last: tests/test_ofd_e2e.py.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

from tests.ofd_handmade import QR_BOX, STAMP_BOX, HandmadePki, handmade_ofd, make_pki
from tests.ofd_independent import SesSignature, unzip_package, zip_package
from tests.ofd_reader_page import (
    BUNDLE,
    BUNDLE_SHA256,
    VENDOR,
    Reading,
    read_ofd,
    reader_browser,
    stamp_box_mm,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["reader_browser"]  # the fixture, used by name

ARTIFACTS = Path(__file__).parent / "artifacts"
URL = "HTTPS://VERIFY.EXAMPLE/V/HANDMADE0001"
MIN_RED_SHARE = 0.03  # of the stamp box's pixels: a seal's ring and star or text are well above


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> HandmadePki:
    return make_pki(tmp_path_factory.mktemp("ofd-reader-pki"))


@pytest.fixture(scope="module")
def handmade(pki: HandmadePki) -> bytes:
    return handmade_ofd(pki, verify_url=URL)


def red_share(reading: Reading, box: tuple[float, float, float, float]) -> float:
    left, top, right, bottom = reading.box_px(box)
    return reading.red_pixels(box) / max(1, (right - left) * (bottom - top))


def test_the_vendored_reader_is_the_pinned_release() -> None:
    """A changed bundle would change the judge: the file must be the pinned release's, and its
    VERSION note (written by scripts/vendor-ofdjs.sh) must name the same digest."""
    assert hashlib.sha256(BUNDLE.read_bytes()).hexdigest() == BUNDLE_SHA256
    version = (VENDOR / "VERSION").read_text()
    assert "ofd.js 0.2.6" in version and BUNDLE_SHA256 in version
    assert "Apache License" in (VENDOR / "LICENSE").read_text()


def test_the_reader_shows_a_handmade_seal_and_its_qr(reader_browser: Any, handmade: bytes) -> None:
    reading = read_ofd(reader_browser, handmade, ARTIFACTS / "ofd-reader-handmade.png")
    assert reading.pages == 1
    # ofd.js decoded the SES_Signature (v4), found a PNG picture and verified the SM2 signature
    # OpenSSL made; every referenced file's SM3 matches.
    assert reading.seals == [{"type": "png", "verified": True}]
    assert reading.digests == [True]
    assert red_share(reading, STAMP_BOX) > MIN_RED_SHARE
    assert red_share(reading, QR_BOX) == 0  # the red is the seal's, where the seal is
    assert URL in reading.qr_texts()
    assert "HAND-2026-000001" in reading.text


def test_a_file_changed_after_sealing_fails_the_readers_digest_check(
    reader_browser: Any, handmade: bytes
) -> None:
    """A holder edits the page (a later validity date, say) and repacks the zip: the seal still
    draws, but ofd.js's SM3 check of the referenced files fails."""
    files = unzip_package(handmade)
    content = "Doc_0/Pages/Page_0/Content.xml"
    files[content] = files[content].replace(b"HAND-2026-000001", b"HAND-2026-999999")
    reading = read_ofd(reader_browser, zip_package(files))
    assert reading.digests == [False]
    assert "HAND-2026-999999" in reading.text  # the reader shows the forgery; its check flags it


def test_a_seal_signed_by_another_key_fails_the_readers_signature_check(
    reader_browser: Any, pki: HandmadePki, handmade: bytes, tmp_path: Path
) -> None:
    """The SES_Signature of another file (another signer's key over another toSign) spliced in:
    the picture still draws, ofd.js's SM2 verification says no."""
    other = handmade_ofd(make_pki(tmp_path / "other"), verify_url=URL)
    files = unzip_package(handmade)
    signed_value = "Doc_0/Signs/Sign_0/SignedValue.dat"
    theirs = SesSignature.load(unzip_package(other)[signed_value])
    ours = SesSignature.load(files[signed_value])
    ours["signature"] = theirs["signature"].native  # a real SM2 signature, of something else
    files[signed_value] = ours.dump(force=False)
    reading = read_ofd(reader_browser, zip_package(files))
    assert reading.seals and not reading.seals[0]["verified"]


def test_a_seal_picture_that_is_not_red_shows_no_red(reader_browser: Any, pki: HandmadePki) -> None:
    """The pixel count is not vacuous: the same file with a blue seal picture has none."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (240, 240), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((8, 8, 232, 232), outline=(20, 40, 220, 255), width=17)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    reading = read_ofd(reader_browser, handmade_ofd(pki, seal_picture=buffer.getvalue()))
    assert reading.seals == [{"type": "png", "verified": True}]
    assert red_share(reading, stamp_box_mm(unzip_package(handmade_ofd(pki)))) < 0.001
