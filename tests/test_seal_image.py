"""The drawn seal image and the checks on uploaded seal images (seals/image.py)."""

from __future__ import annotations

import io
import math
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from core.errors import ErrorKind, InvalidInput
from core.fonts import BOLD, cjk_font_path
from seals.image import render_seal_image, validate_uploaded_seal_image

NAME = "某某市市场监督管理局"
KIND = "电子证照专用章"
SEAL_RED = (0xD7, 0x00, 0x0F)  # written out, not imported, so a change of colour is noticed


@pytest.fixture(scope="module")
def font() -> Path:
    return cjk_font_path(BOLD)


@pytest.fixture(scope="module")
def seal_png(font: Path) -> bytes:
    return render_seal_image(NAME, KIND, font_path=font)


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def rgba(image: Image.Image, x: float, y: float) -> tuple[int, int, int, int]:
    pixel = image.getpixel((round(x), round(y)))
    assert isinstance(pixel, tuple)
    return (pixel[0], pixel[1], pixel[2], pixel[3])


def is_red(image: Image.Image, x: float, y: float) -> bool:
    r, g, b, a = rgba(image, x, y)
    return a > 200 and (r, g, b) == SEAL_RED


def red_in_box(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    alpha = image.getchannel("A").crop(box).point(lambda v: 255 if v > 128 else 0)
    return alpha.histogram()[255]


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_seal_is_an_rgba_png_of_the_right_size_and_dpi(seal_png: bytes, font: Path) -> None:
    assert seal_png.startswith(b"\x89PNG\r\n\x1a\n")
    image = opened(seal_png)
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (496, 496))
    # pHYs stores pixels per metre, so 300 dpi reads back as 299.9994.
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    big = opened(render_seal_image(NAME, KIND, font_path=font, diameter_mm=40, dpi=600))
    assert big.size == (945, 945)
    assert big.info["dpi"] == pytest.approx((600, 600), abs=0.01)


def test_background_is_transparent_and_ink_is_seal_red(seal_png: bytes) -> None:
    image = opened(seal_png)
    c = image.width / 2
    for corner in [(0, 0), (495, 0), (0, 495), (495, 495)]:
        assert rgba(image, *corner)[3] == 0
    assert rgba(image, c, c - 0.24 * image.width)[3] == 0  # between the name and the star
    # Every pixel carries the seal red; only the alpha channel varies.
    colours = {rgba(image, x, y)[:3] for x in range(496) for y in range(0, 496, 7)}
    assert colours == {SEAL_RED}


def test_ring_and_star_are_red(seal_png: bytes) -> None:
    image = opened(seal_png)
    c, ring = image.width / 2, image.width / 2 - 0.9 / 42 * image.width  # middle of the border
    for degrees in range(0, 360, 15):
        a = math.radians(degrees)
        assert is_red(image, c + ring * math.sin(a), c - ring * math.cos(a)), degrees
    assert is_red(image, c, c)
    assert is_red(image, c, c - 6 / 42 * image.width)  # the star's upper point
    assert not is_red(image, c - 4 / 42 * image.width, c - 4 / 42 * image.width)  # between arms


def test_text_is_drawn_on_the_upper_arc_and_under_the_star(seal_png: bytes) -> None:
    image = opened(seal_png)
    total = red_in_box(image, (0, 0, 496, 496))
    assert 0.12 < total / 496**2 < 0.35
    # The first character of the name sits on the left, near 9 o'clock, below the centre line.
    assert red_in_box(image, (30, 250, 110, 320)) > 800
    # The top of the name, inside the ring and above the star.
    assert red_in_box(image, (150, 30, 346, 110)) > 3000
    # The seal type line under the star.
    assert red_in_box(image, (130, 340, 366, 385)) > 3000


def test_same_inputs_give_same_bytes_and_names_make_a_difference(
    seal_png: bytes, font: Path
) -> None:
    assert render_seal_image(NAME, KIND, font_path=font) == seal_png
    other = render_seal_image("某某县市场监督管理局", KIND, font_path=font)
    assert other != seal_png
    diff = ImageChops.difference(opened(other).getchannel("A"), opened(seal_png).getchannel("A"))
    assert diff.getbbox() is not None
    coded = opened(render_seal_image(NAME, KIND, font_path=font, seal_code="3301000012345"))
    assert (
        red_in_box(coded, (150, 400, 346, 470))
        > red_in_box(opened(seal_png), (150, 400, 346, 470)) + 500
    )


def test_long_and_short_names_render(font: Path) -> None:
    for name in ["某某公司", "局" * 40]:
        image = opened(render_seal_image(name, KIND, font_path=font))
        assert red_in_box(image, (0, 0, 496, 248)) > 10000
    # A single character stands full size at the top of the arc.
    image = opened(render_seal_image("国", KIND, font_path=font))
    assert red_in_box(image, (213, 30, 283, 100)) > 1500


@pytest.mark.parametrize("code", ["", "33-01", "编码", "1" * 21])
def test_bad_seal_codes_are_refused(font: Path, code: str) -> None:
    with pytest.raises(ValueError, match="seal code"):
        render_seal_image(NAME, KIND, font_path=font, seal_code=code)


def name_slots(image: Image.Image) -> list[tuple[float, float, float]]:
    """(x, y, inward angle) of each character of an eight-character name on a 42 mm seal.

    Eight characters span 210 degrees, 30 degrees apart, centred 15.5 mm from the middle.
    """
    c, r = image.width / 2, 15.5 / 42 * image.width
    slots = []
    for i in range(8):
        t = math.radians(-105 + 30 * i)
        slots.append((c + r * math.sin(t), c - r * math.cos(t), t))
    return slots


def ink_at(image: Image.Image, x: float, y: float) -> tuple[int, float, float]:
    """Opaque pixel count and ink centroid offset within 3.5 mm of (x, y).

    A disc, not a square, so a character turned 45 degrees is not clipped at its corners.
    """
    radius = 3.5 / 42 * image.width
    points = [
        (px - x, py - y)
        for px in range(math.floor(x - radius), math.ceil(x + radius) + 1)
        for py in range(math.floor(y - radius), math.ceil(y + radius) + 1)
        if math.hypot(px - x, py - y) <= radius and rgba(image, px, py)[3] > 128
    ]
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    return len(points), mx, my


def test_name_characters_stand_on_the_centre_and_read_clockwise(font: Path) -> None:
    # 丄 has its long stroke at the bottom, so its ink leans towards the character's bottom,
    # which must face the centre of the seal wherever the character stands on the arc.
    image = opened(render_seal_image("丄" * 8, KIND, font_path=font))
    for x, y, t in name_slots(image):
        count, mx, my = ink_at(image, x, y)
        assert count > 400
        inward = mx * -math.sin(t) + my * math.cos(t)
        along = mx * math.cos(t) + my * math.sin(t)
        assert inward > 4 and abs(along) < 2.5, (math.degrees(t), inward, along)
    # Left to right: the first character is on the left end of the arc.
    image = opened(render_seal_image("一" + "国" * 7, KIND, font_path=font))
    slots = name_slots(image)
    assert ink_at(image, *slots[0][:2])[0] * 3 < ink_at(image, *slots[-1][:2])[0]


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("", KIND, "empty"),
        ("   ", KIND, "empty"),
        ("局" * 41, KIND, "at most 40"),
        (NAME, "", "seal type"),
    ],
)
def test_bad_names_are_refused(font: Path, name: str, kind: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_seal_image(name, kind, font_path=font)


def test_validator_accepts_the_generated_seal(seal_png: bytes) -> None:
    assert validate_uploaded_seal_image(seal_png) == seal_png


def huge_header_png(width: int, height: int) -> bytes:
    """A tiny file whose header claims an enormous image: a decompression bomb's calling card."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def transparent(size: tuple[int, int]) -> Image.Image:
    return Image.new("RGBA", size, (215, 0, 15, 0))


def noise(size: int) -> Image.Image:
    return Image.frombytes("RGBA", (size, size), random.Random(7).randbytes(size * size * 4))


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (500, 500), SEAL_RED).save(out, format="JPEG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (jpeg, "必须是PNG"),
        (lambda: b"not an image at all" * 10, "必须是PNG"),
        (lambda: png_bytes(transparent((100, 100))), "像素之间"),
        (lambda: png_bytes(transparent((5000, 5000))), "像素之间"),
        (lambda: png_bytes(transparent((600, 400))), "正方形"),
        (lambda: png_bytes(Image.new("RGB", (500, 500), SEAL_RED)), "透明背景"),
        (lambda: png_bytes(Image.new("RGBA", (500, 500), (*SEAL_RED, 255))), "透明背景"),
        (lambda: png_bytes(noise(800)), "不得超过2000000字节"),
        (lambda: huge_header_png(60000, 60000), "像素过多"),
        (lambda: huge_header_png(900, 900), "已损坏"),
        (lambda: png_bytes(transparent((500, 500)))[:-20], "已损坏"),
    ],
    ids=[
        "jpeg", "garbage", "tiny", "huge", "not-square", "no-alpha", "opaque",
        "oversized-file", "decompression-bomb", "truncated-pixels", "truncated-file",
    ],
)  # fmt: skip
def test_validator_refuses_bad_uploads(make: Callable[[], bytes], message: str) -> None:
    data = make()
    with pytest.raises(InvalidInput) as caught:
        validate_uploaded_seal_image(data)
    assert message in caught.value.message
    assert " / " in caught.value.message  # Chinese first, English alongside
    assert caught.value.field == "image"
    assert caught.value.kind is ErrorKind.INVALID


def test_validator_limits_are_parameters(seal_png: bytes) -> None:
    with pytest.raises(InvalidInput, match="字节"):
        validate_uploaded_seal_image(seal_png, max_bytes=len(seal_png) - 1)
    with pytest.raises(InvalidInput, match="像素之间"):
        validate_uploaded_seal_image(seal_png, min_px=500)
    assert validate_uploaded_seal_image(seal_png, max_bytes=len(seal_png)) == seal_png
