"""The seal image as a PDF image XObject, compressed once per image.

pyHanko's ``PdfImage`` writes a Pillow image into each document by compressing its pixels
afresh: the seal image (RGB and its alpha mask, ~1 MB raw) cost every seal two Flate passes,
more than the signature itself. A department seals every licence with the same image, so the
two streams are compressed once per image (``_encoded``) and every document gets new stream
objects holding those same bytes — the PDF is the one pyHanko writes.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.images import PdfImage, pil_image
from pyhanko.pdf_utils.writer import BasePdfFileWriter, PdfFileWriter


@dataclass(frozen=True)
class _Stream:
    entries: tuple[tuple[str, generic.PdfObject], ...]  # the dictionary, without /Length
    encoded: bytes  # the Flate-compressed data

    def add_to(
        self, writer: BasePdfFileWriter, **extra: generic.PdfObject
    ) -> generic.IndirectObject:
        # Copies of the (small) values: nothing a document's writer does reaches another's.
        fields = {generic.NameObject(k): copy.deepcopy(v) for k, v in self.entries}
        fields |= {generic.NameObject(k): v for k, v in extra.items()}
        stream = generic.StreamObject(
            generic.DictionaryObject(fields),  # type: ignore[no-untyped-call]
            encoded_data=self.encoded,
        )
        return writer.add_object(stream)


@dataclass(frozen=True)
class _Encoded:
    image: _Stream
    mask: _Stream | None  # the alpha channel, as /SMask


class SealImage(PdfImage):
    """A ``PdfImage`` of a seal PNG whose streams come from the per-image cache."""

    def __init__(self, png: bytes) -> None:
        super().__init__(_decoded(png))  # read for its size only
        self._encoded = _encoded(png)

    @property
    def image_ref(self) -> generic.IndirectObject:
        assert self.writer is not None
        ref = self._image_ref
        if ref is None or ref.get_pdf_handler() is not self.writer:  # type: ignore[no-untyped-call]
            encoded = self._encoded
            extra = {}
            if encoded.mask is not None:
                extra["/SMask"] = encoded.mask.add_to(self.writer)
            ref = self._image_ref = encoded.image.add_to(self.writer, **extra)
        return ref


@lru_cache(maxsize=32)
def _decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


@lru_cache(maxsize=32)
def _encoded(png: bytes) -> _Encoded:
    """pyHanko's own encoding of the image, written once into a scratch document and kept."""
    scratch = PdfFileWriter()  # type: ignore[no-untyped-call]
    image = pil_image(_decoded(png), scratch).get_object()
    mask_ref = image.get("/SMask")
    mask = _stream(mask_ref.get_object()) if mask_ref is not None else None
    return _Encoded(_stream(image, skip="/SMask"), mask)


def _stream(stream: generic.StreamObject, skip: str = "") -> _Stream:
    entries = tuple((str(k), v) for k, v in stream.items() if k not in ("/Length", skip))
    return _Stream(entries, stream.encoded_data)
