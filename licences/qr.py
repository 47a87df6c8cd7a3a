"""QR code matrices for the verification URL printed on every licence.

Error correction is M without boosting, and the mask pattern is fixed: segno's automatic mask
search evaluates all eight masks and is the slow part of encoding, while any valid mask scans
equally well. Text made only of QR alphanumeric characters (upper-case URLs such as
``HTTPS://HOST/V/CODE``) is encoded in alphanumeric mode, 5.5 bits a character; anything else
falls back to byte mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import segno

from licences.qr_layout import symbol

ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
FIXED_MASK = 0
QUIET_ZONE = 4  # modules of white border the QR specification requires
DARK_RUN = re.compile(rb"\x01+")


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
            y = QUIET_ZONE + self.size - 1 - r
            for run in DARK_RUN.finditer(bytes(cells)):  # True is byte 1
                yield QUIET_ZONE + run.start(), y, run.end() - run.start()


def is_alphanumeric(text: str) -> bool:
    return bool(text) and set(text) <= ALPHANUMERIC


def _mode(text: str) -> tuple[str, str | None]:
    """The QR mode for ``text`` and the encoding of its bytes (UTF-8 in byte mode)."""
    return ("alphanumeric", None) if is_alphanumeric(text) else ("byte", "utf-8")


def _make(text: str) -> segno.QRCode:
    mode, encoding = _mode(text)
    return segno.make_qr(
        text, error="m", boost_error=False, mask=FIXED_MASK, mode=mode, encoding=encoding
    )


def qr_svg_data_uri(text: str) -> str:
    """The symbol as an SVG ``data:`` URI for a web page (allowed by ``img-src data:``), one
    unit a module, quiet zone included; the page scales it."""
    return str(_make(text).svg_data_uri(scale=1, border=QUIET_ZONE, xmldecl=False, svgns=True))


def qr_matrix(text: str) -> QrMatrix:
    """Encode ``text`` at error correction M with a fixed mask, in the most compact mode: the
    same symbol as segno's, placed from a per-version plan (``licences/qr_layout.py``)."""
    mode, encoding = _mode(text)
    version, rows = symbol(text, mode, encoding, FIXED_MASK)
    return QrMatrix(version=version, modules=tuple(tuple(map(bool, row)) for row in rows))
