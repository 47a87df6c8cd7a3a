"""Seal images (印章图像): drawing a department's round official seal, and checking uploaded ones.

The drawn seal is the visible appearance of an electronic seal, so it follows the look of a
physical 公章 (red ring, name along the upper arc, five-pointed star, seal type below) closely
enough that a reader recognises it at once. Everything is drawn as one coverage mask and coloured
at the end: the background stays truly transparent, and the same inputs give the same bytes.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from core.errors import InvalidInput

SEAL_RED = (215, 0, 15)  # #D7000F, the usual official seal red
MAX_NAME_CHARS = 40
MAX_TYPE_CHARS = 16
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SUPERSAMPLE = 2  # drawn at twice the size, then reduced with LANCZOS for smooth edges


def render_seal_image(
    department_name: str,
    seal_type_name: str,
    *,
    font_path: Path,
    diameter_mm: float = 42.0,
    dpi: int = 300,
    seal_code: str | None = None,
) -> bytes:
    """A PNG (RGBA, transparent background) of the department's round seal.

    Sizes are proportions of a 42 mm seal, so other diameters look the same, only larger or
    smaller. ``font_path`` should be a bold CJK font: thin strokes vanish in a red seal.
    """
    name = department_name.strip()
    kind = seal_type_name.strip()
    if not name:
        raise ValueError("department name must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"department name has {len(name)} characters; at most {MAX_NAME_CHARS}")
    if not kind or len(kind) > MAX_TYPE_CHARS:
        raise ValueError(f"seal type name must have 1 to {MAX_TYPE_CHARS} characters")
    code = seal_code or ""  # more than 20 characters would run into the seal type line
    if seal_code is not None and not (code.isascii() and code.isalnum() and len(code) <= 20):
        raise ValueError("seal code must be 1 to 20 ASCII letters and digits")
    if not 20.0 <= diameter_mm <= 60.0 or not 72 <= dpi <= 1200:
        raise ValueError("diameter must be 20-60 mm and dpi 72-1200")

    size = round(diameter_mm / 25.4 * dpi)
    canvas = size * SUPERSAMPLE
    u = canvas / 42.0  # canvas pixels per millimetre of a 42 mm seal
    centre = canvas / 2
    mask = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(mask)
    outer = centre - 0.3 * u  # a hair of margin so the ring is never clipped
    inner = outer - 1.2 * u
    draw.ellipse((centre - outer,) * 2 + (centre + outer,) * 2, outline=255, width=round(1.2 * u))
    _draw_star(draw, centre, centre, 7.0 * u)
    _draw_name_arc(mask, font_path, name, centre, inner - 0.9 * u, u)
    _draw_type_line(mask, font_path, kind, centre, centre + 9.6 * u, u)
    if code:
        _draw_code_arc(mask, font_path, code, centre, inner - 0.5 * u, u)

    image = Image.new("RGBA", (size, size), SEAL_RED)
    image.putalpha(mask.resize((size, size), Image.Resampling.LANCZOS))
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


def _draw_star(draw: ImageDraw.ImageDraw, cx: float, cy: float, radius: float) -> None:
    """A solid five-pointed star, point up; the inner radius makes the edges straight lines."""
    ratio = math.sin(math.radians(18)) / math.sin(math.radians(126))
    points = []
    for k in range(10):
        r = radius if k % 2 == 0 else radius * ratio
        a = math.radians(-90 + 36 * k)
        points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    draw.polygon(points, fill=255)


def _glyph(font_path: Path, char: str, width: float, height: float, ref: str) -> Image.Image:
    """One character as a coverage tile of ``width`` x ``height`` pixels.

    The tile is the character's em box, centred on the ink of ``ref`` rather than on the font's
    line metrics, so every character sits on the same optical centre line; a narrower width
    squeezes the character horizontally, as seal engravers do for long names.
    """
    h = max(4, round(height))
    font = ImageFont.truetype(str(font_path), h)
    _, top, _, bottom = font.getbbox(ref, anchor="ls")
    tile = Image.new("L", (h, h), 0)
    ImageDraw.Draw(tile).text((h / 2, h / 2 - (top + bottom) / 2), char, 255, font, anchor="ms")
    return tile.resize((max(2, round(width)), h), Image.Resampling.LANCZOS)


def _stamp(mask: Image.Image, tile: Image.Image, x: float, y: float, turn: float) -> None:
    """Paste ``tile`` centred on (x, y), turned ``turn`` degrees counter-clockwise."""
    if turn:
        tile = tile.rotate(turn, resample=Image.Resampling.BICUBIC, expand=True)
    left, top = round(x - tile.width / 2), round(y - tile.height / 2)
    mask.paste(255, (left, top, left + tile.width, top + tile.height), tile)


def _draw_name_arc(
    mask: Image.Image, font_path: Path, name: str, c: float, outer_r: float, u: float
) -> None:
    """The name clockwise along the upper arc, each character's bottom towards the centre.

    Longer names take a wider arc (210-240 degrees); very short ones are kept at most 40 degrees
    apart so they do not scatter round the ring. When the arc is still too tight, characters
    are first squeezed (down to 0.6 of their height) and only then made smaller.
    """
    n = len(name)
    span = min(210 + 30 * min(max(n - 8, 0) / 12, 1), 40 * (n - 1))
    step = math.radians(span / (n - 1)) if n > 1 else math.pi  # one character: no neighbours
    height = min(6.2 * u, step * (outer_r - 3 * u) / 0.6)
    radius = outer_r - height / 2
    width = min(height, 0.92 * step * (radius - height / 4))
    for i, char in enumerate(name):
        theta = -span / 2 + i * math.degrees(step)
        t = math.radians(theta)
        tile = _glyph(font_path, char, width, height, "国")
        _stamp(mask, tile, c + radius * math.sin(t), c - radius * math.cos(t), -theta)


def _draw_type_line(
    mask: Image.Image, font_path: Path, text: str, cx: float, cy: float, u: float
) -> None:
    """The seal type horizontally under the star, squeezed to stay clear of the name's ends."""
    height = 4.2 * u
    width = min(height, 24.0 * u / len(text))
    for i, char in enumerate(text):
        x = cx + (i - (len(text) - 1) / 2) * width
        _stamp(mask, _glyph(font_path, char, width, height, "国"), x, cy, 0)


def _draw_code_arc(
    mask: Image.Image, font_path: Path, code: str, c: float, outer_r: float, u: float
) -> None:
    """The seal code left to right along the bottom arc, tops towards the centre."""
    height, width = 2.4 * u, 1.5 * u
    radius = outer_r - height / 2
    step = (width * 1.05) / radius
    for i in range(len(code)):
        a = (i - (len(code) - 1) / 2) * step
        tile = _glyph(font_path, code[i], width, height, "0")
        _stamp(mask, tile, c + radius * math.sin(a), c + radius * math.cos(a), math.degrees(a))


def validate_uploaded_seal_image(
    data: bytes, *, max_bytes: int = 2_000_000, min_px: int = 300, max_px: int = 4000
) -> bytes:
    """``data`` unchanged if it is a usable seal image; else ``InvalidInput`` on field "image".

    A seal is stamped over a document, so it must be a PNG with transparency, roughly square
    and of a sensible resolution. Dimensions are read from the header and checked before any
    pixel is decoded, so a small file that claims a huge image is refused without decoding it;
    the global ``Image.MAX_IMAGE_PIXELS`` is left alone (other code shares it), and a header
    beyond even Pillow's limit surfaces as ``DecompressionBombError``, refused the same way.
    """

    def refuse(message: str) -> InvalidInput:
        return InvalidInput(message, field="image")

    if len(data) > max_bytes:
        raise refuse(
            f"印章图片不得超过{max_bytes}字节 / seal image must be at most {max_bytes} bytes"
        )
    if not data.startswith(PNG_MAGIC):
        raise refuse("印章图片必须是PNG / seal image must be a PNG")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as probe:
            width, height = probe.size
            if not (min_px <= min(width, height) and max(width, height) <= max_px):
                raise refuse(
                    f"印章图片边长须在{min_px}至{max_px}像素之间 / "
                    f"seal image sides must be {min_px} to {max_px} pixels"
                )
            probe.verify()
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            alpha_low = image.convert("RGBA").getchannel("A").getextrema()[0]
    except InvalidInput:
        raise
    except Image.DecompressionBombError:
        raise refuse("印章图片像素过多 / seal image has too many pixels") from None
    except Exception:
        raise refuse("印章图片已损坏或无法读取 / seal image is corrupt or unreadable") from None
    if abs(width - height) > 0.1 * max(width, height):
        raise refuse("印章图片必须近似正方形 / seal image must be roughly square")
    if not isinstance(alpha_low, int) or alpha_low == 255:  # no alpha, or nothing transparent
        raise refuse("印章图片必须有透明背景 / seal image must have a transparent background")
    return data
