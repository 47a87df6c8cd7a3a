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
import struct
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fontTools.fontBuilder import FontBuilder
from fontTools.ttLib import TTFont, newTable

_WEIGHT_WORDS = r"\s+(Thin|ExtraLight|Light|Regular|Medium|SemiBold|Bold|ExtraBold|Black)$"
_MAXP_FIELDS = (
    "maxPoints", "maxContours", "maxCompositePoints", "maxCompositeContours", "maxZones",
    "maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
    "maxStackElements", "maxSizeOfInstructions", "maxComponentElements", "maxComponentDepth",
)  # fmt: skip
_HEADER = struct.Struct(">hhhhh")  # numberOfContours, xMin, yMin, xMax, yMax
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
        head, hhea, os2, maxp = font["head"], font["hhea"], font["OS/2"], font["maxp"]
        # The source's limits hold for any subset of it (maxp is an upper bound per font).
        self.maxp = {name: getattr(maxp, name) for name in _MAXP_FIELDS}
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
        glyphs = {name: _glyph(source, name) for name in order}
        metrics = {name: source.metrics[name] for name in order}
        builder = FontBuilder(source.units, isTTF=True)
        # Simple glyphs keep the source's compiled bytes (bounds included): nothing is
        # recompiled or recomputed, so the tables that summarise them are written here.
        builder.font.recalcTimestamp = False
        builder.font.recalcBBoxes = False
        builder.setupGlyphOrder(order)
        builder.setupCharacterMap(mapping)
        # FontBuilder.setupGlyf would parse every glyph (to refuse cubic curves a TrueType
        # source cannot hold): the tables are set up as it does, without that.
        builder.font["loca"] = newTable("loca")
        glyf = builder.font["glyf"] = newTable("glyf")
        glyf.glyphs, glyf.glyphOrder = glyphs, order
        builder.setupHorizontalMetrics(metrics)
        builder.setupHorizontalHeader(**source.hhea, **_extents(glyphs, metrics))
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
        builder.setupMaxp()
        for name, value in source.maxp.items():
            setattr(builder.font["maxp"], name, value)
        builder.setupHead(unitsPerEm=source.units, **source.head, **_bounds(glyphs))
        out = io.BytesIO()
        builder.save(out)
    return SubsetFont(out.getvalue(), source.family, source.full)


def _glyph(source: _Source, name: str) -> Any:
    """The source's glyph: as compiled, for a simple one (its bytes are written as they are);
    parsed, for a composite (its components are renumbered in the subset)."""
    raw = source.glyf.glyphs[name]
    if hasattr(raw, "data") and (not raw.data or _HEADER.unpack_from(raw.data)[0] >= 0):
        return raw
    return source.glyf[name]


def _box(glyph: Any) -> tuple[int, int, int, int] | None:
    if hasattr(glyph, "data"):
        if not glyph.data:
            return None
        _, x_min, y_min, x_max, y_max = _HEADER.unpack_from(glyph.data)
        return (x_min, y_min, x_max, y_max)
    if not hasattr(glyph, "xMin"):
        return None
    return (glyph.xMin, glyph.yMin, glyph.xMax, glyph.yMax)


def _bounds(glyphs: dict[str, Any]) -> dict[str, int]:
    boxes = [b for b in map(_box, glyphs.values()) if b is not None]
    if not boxes:
        return {"xMin": 0, "yMin": 0, "xMax": 0, "yMax": 0}
    return {
        "xMin": min(b[0] for b in boxes),
        "yMin": min(b[1] for b in boxes),
        "xMax": max(b[2] for b in boxes),
        "yMax": max(b[3] for b in boxes),
    }


def _extents(glyphs: dict[str, Any], metrics: dict[str, tuple[int, int]]) -> dict[str, int]:
    """hhea's summary of the glyphs' horizontal metrics (OpenType hhea)."""
    advances = [advance for advance, _ in metrics.values()]
    lsbs, rsbs, extents = [], [], []
    for name, glyph in glyphs.items():
        box = _box(glyph)
        if box is None:
            continue
        advance, lsb = metrics[name]
        width = box[2] - box[0]
        lsbs.append(lsb)
        rsbs.append(advance - lsb - width)
        extents.append(lsb + width)
    return {
        "advanceWidthMax": max(advances, default=0),
        "minLeftSideBearing": min(lsbs, default=0),
        "minRightSideBearing": min(rsbs, default=0),
        "xMaxExtent": max(extents, default=0),
    }


def _closure(source: _Source, names: list[str]) -> list[str]:
    """``names`` and every component glyph they are built from, in a stable order; a simple
    glyph is told by its compiled header and never parsed."""
    order = list(dict.fromkeys(names))
    seen = set(order)
    i = 0
    while i < len(order):
        glyph = _glyph(source, order[i])
        if not hasattr(glyph, "data") and glyph.isComposite():
            for component in glyph.getComponentNames(source.glyf):
                if component not in seen:
                    seen.add(component)
                    order.append(component)
        i += 1
    return order
