"""Subsets of the page's CJK font for an OFD package (GB/T 33190 embeds fonts as files).

The PDF embeds subsets of the same NotoSansSC instances (``core.fonts``) through ReportLab; the
OFD embeds its own, made here with fontTools from a copy of the font parsed once per process:
the glyphs a page prints (and their components), their horizontal metrics and a cmap for them,
built into a new TrueType font. fontTools' general subsetter gives the same glyphs but parses
the 10 MB font again for every call (about 150 ms a font on these machines); this takes a few
milliseconds. No layout tables are kept: the page positions every glyph itself (``DeltaX``),
exactly where the PDF puts it, so no shaping is needed. The output depends only on the
characters, never on the time (``head`` keeps the source's dates), so the same page always
gives the same bytes.
"""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fontTools.fontBuilder import FontBuilder
from fontTools.ttLib import TTFont

_WEIGHT_WORDS = r"\s+(Thin|ExtraLight|Light|Regular|Medium|SemiBold|Bold|ExtraBold|Black)$"
_lock = threading.Lock()  # glyph objects are shared by every build: one build at a time


@dataclass(frozen=True)
class SubsetFont:
    data: bytes  # a TrueType font file
    family: str  # the source's family name, e.g. "Noto Sans SC"
    name: str  # its full name (FontName in PublicRes.xml)


class _Source:
    """The font, parsed once: cmap, outlines, metrics and the names and header values that
    every subset copies."""

    def __init__(self, path: Path) -> None:
        font = TTFont(str(path), recalcTimestamp=False)
        self.cmap: dict[int, str] = dict(font.getBestCmap())
        self.glyf: Any = font["glyf"]
        self.metrics: dict[str, tuple[int, int]] = dict(font["hmtx"].metrics)
        head, hhea, os2 = font["head"], font["hhea"], font["OS/2"]
        self.units = int(head.unitsPerEm)
        self.head = {"created": head.created, "modified": head.modified, "fontRevision": 1.0}
        self.hhea = {"ascent": hhea.ascent, "descent": hhea.descent, "lineGap": hhea.lineGap}
        self.os2 = {
            "sTypoAscender": os2.sTypoAscender,
            "sTypoDescender": os2.sTypoDescender,
            "sTypoLineGap": os2.sTypoLineGap,
            "usWinAscent": os2.usWinAscent,
            "usWinDescent": os2.usWinDescent,
            "usWeightClass": os2.usWeightClass,
            "fsType": 0,  # the licence font is SIL OFL: installable embedding
        }
        # A static instance made without updating its names is still called "… Thin": name
        # it by its weight, as a reader choosing a fallback would.
        family = str(font["name"].getDebugName(16) or font["name"].getDebugName(1) or path.stem)
        self.family = re.sub(_WEIGHT_WORDS, "", family).strip() or family
        self.style = "Bold" if os2.usWeightClass >= 600 else "Regular"
        self.full = f"{self.family} {self.style}"
        self.postscript = self.full.replace(" ", "-")


@lru_cache(maxsize=8)
def _source(path: str) -> _Source:
    return _Source(Path(path))


def subset_font(path: Path, text: str) -> SubsetFont:
    """A TrueType font holding the glyphs of ``text`` (and .notdef) from the font at ``path``;
    characters the font lacks are left out (a reader shows .notdef for them, as the PDF does)."""
    source = _source(str(path.resolve()))
    mapping = {cp: source.cmap[cp] for cp in sorted({ord(ch) for ch in text}) if cp in source.cmap}
    with _lock:
        order = _closure(source, [".notdef", *dict.fromkeys(mapping.values())])
        builder = FontBuilder(source.units, isTTF=True)
        builder.font.recalcTimestamp = False
        builder.setupGlyphOrder(order)
        builder.setupCharacterMap(mapping)
        builder.setupGlyf({name: source.glyf[name] for name in order})
        builder.setupHorizontalMetrics({name: source.metrics[name] for name in order})
        builder.setupHorizontalHeader(**source.hhea)
        builder.setupNameTable(
            {
                "familyName": source.family,
                "styleName": source.style,
                "uniqueFontIdentifier": f"{source.postscript}-subset",
                "fullName": source.full,
                "psName": source.postscript,
            }
        )
        builder.setupOS2(**source.os2)
        builder.setupPost(keepGlyphNames=False)
        builder.setupHead(unitsPerEm=source.units, **source.head)
        out = io.BytesIO()
        builder.save(out)
    return SubsetFont(out.getvalue(), source.family, source.full)


def _closure(source: _Source, names: list[str]) -> list[str]:
    """``names`` and every component glyph they are built from, in a stable order."""
    order = list(dict.fromkeys(names))
    seen = set(order)
    i = 0
    while i < len(order):
        glyph = source.glyf[order[i]]
        if glyph.isComposite():
            for component in glyph.getComponentNames(source.glyf):
                if component not in seen:
                    seen.add(component)
                    order.append(component)
        i += 1
    return order
