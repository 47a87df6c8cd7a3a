"""A drawing surface that records what the PDF page draws, for the OFD page to write.

The PDF page (``licences.render``, ``licences.layout_page``) is drawn by functions that take a
ReportLab ``Canvas``. The OFD licence must be *the same page*: so it is drawn by those same
functions, handed this recorder in place of a canvas. It implements the part of the canvas
interface they use — fonts and colours, rectangles and lines, strings (plain, centred,
letter-spaced), the QR code's literal path, images, and the graphics state — and keeps each
mark in page points with the colour, width and dash it was drawn with. A drawing call it does
not implement fails at once (AttributeError), so a change to the PDF page that the OFD page
would miss breaks the OFD tests instead of quietly printing a different licence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from licences.render import text_width

Rgb = tuple[int, int, int]
Point = tuple[float, float]
# A matrix (a, b, c, d, e, f) as in PDF: x' = a x + c y + e, y' = b x + d y + f.
Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
_RECT = re.compile(r"^(-?[\d.]+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) re$")


@dataclass(frozen=True)
class TextMark:
    """A line of text: its baseline origin and each glyph's advance, in page points."""

    font: str  # the ReportLab font name (``licences.render.font_name``)
    size: float
    colour: Rgb
    x: float
    y: float
    text: str
    advances: tuple[float, ...]  # one per character, letter spacing included


@dataclass(frozen=True)
class PathMark:
    """Closed or open subpaths in page points, stroked and/or filled."""

    subpaths: tuple[tuple[Point, ...], ...]
    closed: bool
    stroke: Rgb | None
    fill: Rgb | None
    line_width: float
    dash: tuple[float, ...] = ()


@dataclass(frozen=True)
class ImageMark:
    image: Image.Image
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in page points


Mark = TextMark | PathMark | ImageMark


def _rgb(colour: Any) -> Rgb:
    return (
        round(float(colour.red) * 255),
        round(float(colour.green) * 255),
        round(float(colour.blue) * 255),
    )


@dataclass
class _State:
    font: str = ""
    size: float = 10.0
    fill: Rgb = (0, 0, 0)
    stroke: Rgb = (0, 0, 0)
    line_width: float = 1.0
    dash: tuple[float, ...] = ()
    matrix: Matrix = IDENTITY


@dataclass
class RecordingCanvas:
    """The page's marks, in drawing order (later marks paint over earlier ones)."""

    marks: list[Mark] = field(default_factory=list)
    _state: _State = field(default_factory=_State)
    _saved: list[_State] = field(default_factory=list)

    # -- graphics state -------------------------------------------------------------------

    def setFont(self, name: str, size: float) -> None:
        self._state.font, self._state.size = name, float(size)

    def setFillColor(self, colour: Any, alpha: float | None = None) -> None:
        self._state.fill = _rgb(colour)

    def setStrokeColor(self, colour: Any, alpha: float | None = None) -> None:
        self._state.stroke = _rgb(colour)

    def setLineWidth(self, width: float) -> None:
        self._state.line_width = float(width)

    def setDash(self, array: Any = (), phase: float = 0) -> None:
        if isinstance(array, int | float):  # ReportLab's two-number form: on, off
            array = (array, phase)
        self._state.dash = tuple(float(v) for v in array)

    def saveState(self) -> None:
        self._saved.append(_State(**vars(self._state)))

    def restoreState(self) -> None:
        self._state = self._saved.pop()

    def translate(self, dx: float, dy: float) -> None:
        self._concat((1.0, 0.0, 0.0, 1.0, float(dx), float(dy)))

    def scale(self, x: float, y: float) -> None:
        self._concat((float(x), 0.0, 0.0, float(y), 0.0, 0.0))

    def _concat(self, m: Matrix) -> None:
        a, b, c, d, e, f = self._state.matrix
        a2, b2, c2, d2, e2, f2 = m
        self._state.matrix = (
            a2 * a + b2 * c,
            a2 * b + b2 * d,
            c2 * a + d2 * c,
            c2 * b + d2 * d,
            e2 * a + f2 * c + e,
            e2 * b + f2 * d + f,
        )

    def _point(self, x: float, y: float) -> Point:
        a, b, c, d, e, f = self._state.matrix
        return (a * x + c * y + e, b * x + d * y + f)

    def _scale(self) -> float:
        a, b, *_ = self._state.matrix
        return float((a * a + b * b) ** 0.5)

    # -- paths ----------------------------------------------------------------------------

    def _path(self, subpaths: list[list[Point]], closed: bool, stroke: int, fill: int) -> None:
        if not stroke and not fill:
            return
        s = self._state
        self.marks.append(
            PathMark(
                subpaths=tuple(tuple(self._point(x, y) for x, y in sp) for sp in subpaths),
                closed=closed,
                stroke=s.stroke if stroke else None,
                fill=s.fill if fill else None,
                line_width=s.line_width * self._scale(),
                dash=tuple(v * self._scale() for v in s.dash),
            )
        )

    def rect(self, x: float, y: float, width: float, height: float, stroke: int = 1,
             fill: int = 0) -> None:  # fmt: skip
        corners = [(x, y), (x + width, y), (x + width, y + height), (x, y + height)]
        self._path([corners], True, stroke, fill)

    def line(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self._path([[(x1, y1), (x2, y2)]], False, 1, 0)

    def lines(self, segments: list[tuple[float, float, float, float]]) -> None:
        self._path([[(x1, y1), (x2, y2)] for x1, y1, x2, y2 in segments], False, 1, 0)

    def addLiteral(self, code: str) -> None:
        """The QR code: rectangles (``x y w h re``) then one fill (``f``) — nothing else."""
        lines = code.strip().split("\n")
        if lines[-1].strip() != "f":
            raise ValueError("only a filled path of rectangles is recorded")
        rects: list[list[Point]] = []
        for line in lines[:-1]:
            match = _RECT.match(line.strip())
            if match is None:
                raise ValueError(f"unsupported path operator in {line!r}")
            x, y, w, h = (float(v) for v in match.groups())
            rects.append([(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
        self._path(rects, True, 0, 1)

    # -- text -----------------------------------------------------------------------------

    def drawString(self, x: float, y: float, text: str, mode: int | None = None,
                   charSpace: float = 0, **_: Any) -> None:  # fmt: skip
        self._text(x, y, text, charSpace)

    def drawCentredString(self, x: float, y: float, text: str, mode: int | None = None,
                          charSpace: float = 0, **_: Any) -> None:  # fmt: skip
        # As ReportLab centres it: the string's width plus the spacing between its characters.
        width = text_width(text, self._state.font, self._state.size)
        width += (len(text) - 1) * charSpace if charSpace else 0
        self._text(x - width / 2, y, text, charSpace)

    def _text(self, x: float, y: float, text: str, space: float) -> None:
        if not text:
            return
        s = self._state
        advances = tuple(text_width(ch, s.font, s.size) + space for ch in text)
        ox, oy = self._point(x, y)
        self.marks.append(TextMark(s.font, s.size * self._scale(), s.fill, ox, oy, text,
                                   tuple(a * self._scale() for a in advances)))  # fmt: skip

    # -- images ---------------------------------------------------------------------------

    def drawImage(self, image: Any, x: float, y: float, width: float,
                  height: float, **_: Any) -> None:  # fmt: skip
        pixels = getattr(image, "_image", image)  # ReportLab's ImageReader of a PIL image
        if not isinstance(pixels, Image.Image):
            raise TypeError("only PIL images are recorded")
        x1, y1 = self._point(x, y)
        x2, y2 = self._point(x + width, y + height)
        self.marks.append(ImageMark(pixels, (x1, y1, x2, y2)))
