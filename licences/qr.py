"""QR code matrices for the verification URL printed on every licence.

Error correction is M without boosting, and the mask pattern is fixed: segno's automatic mask
search evaluates all eight masks and is the slow part of encoding, while any valid mask scans
equally well. Text made only of QR alphanumeric characters (upper-case URLs such as
``HTTPS://HOST/V/CODE``) is encoded in alphanumeric mode, 5.5 bits a character; anything else
falls back to byte mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import segno

ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
FIXED_MASK = 0
QUIET_ZONE = 4  # modules of white border the QR specification requires


@dataclass(frozen=True, slots=True)
class QrMatrix:
    """The modules of one QR symbol, without the quiet zone; ``True`` is a dark module."""

    version: int
    modules: tuple[tuple[bool, ...], ...]

    @property
    def size(self) -> int:
        return len(self.modules)

    def dark_runs(self) -> Iterator[tuple[int, int, int]]:
        """Horizontal runs of dark modules as (x, y, length) in module units, quiet zone
        included, y counted upwards from the bottom edge as in PDF coordinates."""
        for r, cells in enumerate(self.modules):
            start: int | None = None
            for col, dark in enumerate((*cells, False)):
                if dark and start is None:
                    start = col
                elif not dark and start is not None:
                    yield QUIET_ZONE + start, QUIET_ZONE + self.size - 1 - r, col - start
                    start = None


def is_alphanumeric(text: str) -> bool:
    return bool(text) and set(text) <= ALPHANUMERIC


def _make(text: str) -> segno.QRCode:
    mode = "alphanumeric" if is_alphanumeric(text) else "byte"
    return segno.make_qr(
        text,
        error="m",
        boost_error=False,
        mask=FIXED_MASK,
        mode=mode,
        encoding="utf-8" if mode == "byte" else None,
    )


def qr_svg_data_uri(text: str) -> str:
    """The symbol as an SVG ``data:`` URI for a web page (allowed by ``img-src data:``), one
    unit a module, quiet zone included; the page scales it."""
    return str(_make(text).svg_data_uri(scale=1, border=QUIET_ZONE, xmldecl=False, svgns=True))


def qr_matrix(text: str) -> QrMatrix:
    """Encode ``text`` at error correction M with a fixed mask, in the most compact mode."""
    code = _make(text)
    modules = tuple(tuple(bool(cell) for cell in row) for row in code.matrix)
    version = code.version
    if not isinstance(version, int):  # pragma: no cover - make_qr never yields a Micro QR
        raise TypeError(f"unexpected QR version {version!r}")
    return QrMatrix(version=version, modules=modules)
