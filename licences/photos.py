"""The holder's photo on a licence (持证人照片): checked, re-encoded and stored once per licence.

An issuing department sends the photo as base64 JPEG or PNG. Every upload is treated as hostile:
the size is bounded before decoding, the pixel count before the pixels are read (a
decompression bomb is refused, never decoded), only single-frame greyscale or RGB images pass
(a CMYK JPEG prints wrongly in most viewers; an animated PNG has no one picture to seal) and a
truncated file is refused rather than padded. What is stored and printed is a fresh JPEG of
the decoded pixels: EXIF (with its location and device), ICC profiles, comments and every other
metadata are gone, and the SHA-256 of those bytes is what the licence's record digest binds
(``licences.payload.record_digest``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from sqlmodel import Session

from core.errors import InvalidInput
from licences.models import LicencePhoto

MAX_BYTES = 512 * 1024
MAX_SIDE = 2000
MIN_W, MIN_H = 200, 250
FIELD = "photo"
KEPT = (960, 1280)  # an 80 mm slot (layout.PHOTO_MAX) at 300 dpi is 945 pixels
_FORMATS = ("JPEG", "PNG")
_MODES = frozenset({"L", "RGB", "RGBA", "LA", "P"})  # greyscale or RGB, with alpha or a palette


@dataclass(frozen=True, slots=True)
class Photo:
    """A checked photo, re-encoded: what is printed, stored and digested."""

    jpeg: bytes
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.jpeg).hexdigest()


def _refuse(zh: str, en: str) -> InvalidInput:
    return InvalidInput(f"照片无效：{zh} / invalid photo: {en}", field=FIELD)


def decode_photo(text: str) -> Photo:
    """``text`` (base64 JPEG or PNG) checked and re-encoded; InvalidInput naming the problem."""
    if len(text) > (MAX_BYTES * 4) // 3 + 4:
        raise _refuse(f"超过 {MAX_BYTES // 1024} KiB", f"larger than {MAX_BYTES // 1024} KiB")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _refuse("不是 base64 编码", "not base64") from exc
    if len(data) > MAX_BYTES:
        raise _refuse(f"超过 {MAX_BYTES // 1024} KiB", f"larger than {MAX_BYTES // 1024} KiB")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _refuse("像素过多（解压炸弹）", "too many pixels (a decompression bomb)") from exc
        except (UnidentifiedImageError, OSError) as exc:
            raise _refuse("须为 JPEG 或 PNG 图像", "not a JPEG or PNG image") from exc
        with image:
            return _checked(image)


def _checked(image: Image.Image) -> Photo:
    width, height = image.size  # from the header: nothing decoded yet
    if width > MAX_SIDE or height > MAX_SIDE:
        raise _refuse(
            f"尺寸超过 {MAX_SIDE}×{MAX_SIDE} 像素", f"larger than {MAX_SIDE}×{MAX_SIDE} pixels"
        )
    if width < MIN_W or height < MIN_H:
        raise _refuse(f"尺寸小于 {MIN_W}×{MIN_H} 像素", f"smaller than {MIN_W}×{MIN_H} pixels")
    if getattr(image, "n_frames", 1) != 1:
        raise _refuse("动画图像不能作为照片", "an animated image is not a photo")
    if image.mode not in _MODES:
        raise _refuse(
            f"色彩模式 {image.mode} 不受支持（须为 RGB 或灰度）",
            f"colour mode {image.mode} is not supported (RGB or greyscale only)",
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise _refuse("文件不完整或已损坏", "the file is truncated or corrupt") from exc
    if image.mode in ("L", "RGB"):  # the pixels alone: a fresh image carries no info dict
        clean = Image.frombytes(image.mode, image.size, image.tobytes())
    else:  # a palette or transparency prints on white
        rgba = image.convert("RGBA")
        clean = Image.new("RGB", image.size, "white")
        clean.paste(rgba, mask=rgba.getchannel("A"))
    clean.thumbnail(KEPT)  # more pixels than any slot prints at 300 dpi are not kept
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=90, optimize=True)  # no exif, icc or comment
    return Photo(out.getvalue(), *clean.size)


def store_photo(session: Session, identifier: str, photo: Photo) -> None:
    """The photo of licence ``identifier``, in the issuance's transaction."""
    session.add(
        LicencePhoto(
            identifier=identifier,
            media_type="image/jpeg",
            width=photo.width,
            height=photo.height,
            image=photo.jpeg,
        )
    )


def stored_photo(session: Session, identifier: str) -> bytes | None:
    row = session.get(LicencePhoto, identifier)
    return None if row is None else row.image


def stored_digest(session: Session, identifier: str) -> str | None:
    """The SHA-256 of the photo as stored now (not as recorded): a photo swapped in the
    database no longer matches the digest the licence's QR code carries."""
    image = stored_photo(session, identifier)
    return None if image is None else hashlib.sha256(image).hexdigest()


def carried_photo(session: Session, identifier: str) -> str | None:
    """The photo of licence ``identifier`` as a request carries it (base64), for its next
    version (amended, renewed, reissued): the holder does not send it again."""
    image = stored_photo(session, identifier)
    return None if image is None else base64.b64encode(image).decode()
