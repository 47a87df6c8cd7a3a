"""The licence page drawn for OFD: the PDF's own drawing functions, recorded, written as
GB/T 33190 page objects.

``draw_page`` runs exactly the calls ``licences.render.render_licence`` and
``licences.layout_page.render_layout`` make on their canvas — same rows, wrapping, font sizes,
QR matrix, issuer block and seal box — on a ``RecordingCanvas``; ``content_xml`` turns the
marks into ``Content.xml``: text in mm with each glyph's advance as ``DeltaX`` (a reader then
places every glyph where the PDF does, whatever its own metrics), rules and boxes as
``PathObject``, the QR code as one filled ``PathObject`` of its dark runs (the same segno
matrix as the PDF), the photo as an ``ImageObject``. OFD measures from the top left in mm; the
PDF from the bottom left in points: ``_Mm`` converts.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from xml.sax.saxutils import escape, quoteattr

from reportlab.pdfgen.canvas import Canvas

from licences import layout_page, render
from licences.layout import Layout
from licences.ofd_canvas import ImageMark, Mark, PathMark, RecordingCanvas, TextMark
from licences.render import GREY, MM, PAGE_H, PAGE_W, Box, LicenceView, font_name

NS = "http://www.ofdspec.org/2016"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True)
class DrawnPage:
    marks: tuple[Mark, ...]
    width: float  # points
    height: float
    seal_box: Box  # points, bottom left origin, like the PDF's
    qr_version: int
    fonts: dict[str, Path]  # ReportLab font name -> the TrueType file it was registered from


def draw_page(
    view: LicenceView,
    layout: Layout | None,
    *,
    regular_font: Path,
    bold_font: Path,
    photo: bytes | None = None,
) -> DrawnPage:
    """The marks of the licence page, drawn as the PDF draws it (same order, same geometry)."""
    regular, bold = font_name(regular_font), font_name(bold_font)
    recorder = RecordingCanvas()
    c = cast(Canvas, recorder)  # the part of Canvas the page's drawing functions use
    if layout is None:
        rows, pad = render._rows(view, regular, bold)
        render._draw_border(c)
        render._draw_header(c, view, regular, bold)
        render._draw_table(c, rows, regular, bold, pad)
        _, qr_version = render._draw_qr(c, view.verify_url, render.LEFT, render.QR_Y, regular)
        seal_box = render._draw_issuer(c, view, regular, bold)
        render._centred(c, f"版本 Version {view.version}", PAGE_W / 2, 16.5 * MM,
                        (regular, 7, GREY))  # fmt: skip
        width, height = PAGE_W, PAGE_H
    else:
        page = layout_page._Page(c, layout, regular, bold)
        page.border()
        _, seal_box, qr_version = layout_page._draw(page, view, photo)
        width, height = layout.width * MM, layout.height * MM
        footer = f"证照标识 {view.identifier} · 版本 Version {view.version}"
        c.setFillColor(GREY)
        c.setFont(regular, 6.5)
        c.drawCentredString(width / 2, (layout.margin - 3.5) * MM, footer)
    return DrawnPage(
        marks=tuple(recorder.marks),
        width=width,
        height=height,
        seal_box=seal_box,
        qr_version=qr_version,
        fonts={regular: regular_font, bold: bold_font},
    )


def num(value: float) -> str:
    """A number as OFD writes it: at most three decimals (a micrometre), no trailing zeros."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class _Mm:
    """Page points from the bottom left -> millimetres from the top left."""

    def __init__(self, height: float) -> None:
        self.height = height

    def x(self, x: float) -> float:
        return x / MM

    def y(self, y: float) -> float:
        return (self.height - y) / MM

    def box(self, box: Box) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = box
        return (x1 / MM, (self.height - y2) / MM, (x2 - x1) / MM, (y2 - y1) / MM)


def boundary(box: tuple[float, float, float, float]) -> str:
    return " ".join(num(v) for v in box)


@dataclass
class PageIds:
    """The IDs the page's objects use: fonts and images are resources of the document, the
    layer and the objects are the page's. Every ID is unique in the document (GB/T 33190)."""

    fonts: dict[str, int]  # ReportLab font name -> Font ID
    images: list[int]  # MultiMedia IDs, one per ImageMark, in drawing order
    next_id: int


def _colour(tag: str, rgb: tuple[int, int, int]) -> str:
    return f'<ofd:{tag} Value="{rgb[0]} {rgb[1]} {rgb[2]}"/>'


def _text(mark: TextMark, font_id: int, object_id: int, mm: _Mm) -> str:
    size = mark.size / MM
    x, baseline = mm.x(mark.x), mm.y(mark.y)
    width = sum(mark.advances) / MM
    # The box holds the line with room above the ascent and below the descent; the glyphs'
    # origins are given, so the box only bounds them (readers clip to it).
    box = (x, baseline - 1.2 * size, width + 0.2 * size, 1.6 * size)
    delta = " ".join(num(a / MM) for a in mark.advances[:-1])
    delta_attr = f' DeltaX="{delta}"' if delta else ""
    return (
        f'<ofd:TextObject ID="{object_id}" Boundary="{boundary(box)}" Font="{font_id}" '
        f'Size="{num(size)}">{_colour("FillColor", mark.colour)}'
        f'<ofd:TextCode X="0" Y="{num(1.2 * size)}"{delta_attr}>{escape(mark.text)}'
        "</ofd:TextCode></ofd:TextObject>"
    )


def _path(mark: PathMark, object_id: int, mm: _Mm) -> str:
    points = [(mm.x(x), mm.y(y)) for sp in mark.subpaths for x, y in sp]
    half = mark.line_width / MM / 2 if mark.stroke else 0.0
    left = min(p[0] for p in points) - half
    top = min(p[1] for p in points) - half
    right = max(p[0] for p in points) + half
    bottom = max(p[1] for p in points) + half
    commands: list[str] = []
    for sp in mark.subpaths:
        for i, (x, y) in enumerate(sp):
            commands += ["M" if i == 0 else "L", num(mm.x(x) - left), num(mm.y(y) - top)]
        if mark.closed:
            commands.append("C")
    attrs = [f'ID="{object_id}"', f'Boundary="{boundary((left, top, right - left, bottom - top))}"']
    if mark.stroke:
        attrs.append(f'LineWidth="{num(mark.line_width / MM)}"')
        if mark.dash:
            attrs.append(f'DashPattern="{" ".join(num(d / MM) for d in mark.dash)}"')
    attrs.append(f'Stroke="{"true" if mark.stroke else "false"}"')
    attrs.append(f'Fill="{"true" if mark.fill else "false"}"')
    colours = (_colour("StrokeColor", mark.stroke) if mark.stroke else "") + (
        _colour("FillColor", mark.fill) if mark.fill else ""
    )
    return (
        f"<ofd:PathObject {' '.join(attrs)}>{colours}"
        f"<ofd:AbbreviatedData>{' '.join(commands)}</ofd:AbbreviatedData></ofd:PathObject>"
    )


def _image(mark: ImageMark, resource: int, object_id: int, mm: _Mm) -> str:
    x, y, w, h = mm.box(mark.box)
    return (
        f'<ofd:ImageObject ID="{object_id}" Boundary="{boundary((x, y, w, h))}" '
        f'CTM="{num(w)} 0 0 {num(h)} 0 0" ResourceID="{resource}"/>'
    )


def content_xml(page: DrawnPage, ids: PageIds) -> tuple[bytes, int]:
    """``Content.xml`` of the page, one body layer in drawing order; and the last ID used."""
    mm = _Mm(page.height)
    layer = ids.next_id
    next_id = layer + 1
    objects: list[str] = []
    images = iter(ids.images)
    for mark in page.marks:
        if isinstance(mark, TextMark):
            objects.append(_text(mark, ids.fonts[mark.font], next_id, mm))
        elif isinstance(mark, PathMark):
            objects.append(_path(mark, next_id, mm))
        else:
            objects.append(_image(mark, next(images), next_id, mm))
        next_id += 1
    body = "".join(objects)
    xml = (
        f'{XML_DECL}<ofd:Page xmlns:ofd="{NS}"><ofd:Content>'
        f'<ofd:Layer ID="{layer}" Type="Body">{body}</ofd:Layer></ofd:Content></ofd:Page>'
    )
    return xml.encode("utf-8"), next_id - 1


def text_of(marks: Iterable[Mark], font: str) -> str:
    """Every character printed in ``font``: what its subset must hold."""
    return "".join(m.text for m in marks if isinstance(m, TextMark) and m.font == font)


def jpeg(image: ImageMark) -> bytes:
    """The photo's pixels as the PDF embeds them (300 dpi of its slot), as a JPEG; the same
    pixels always give the same bytes."""
    out = io.BytesIO()
    image.image.convert("RGB").save(out, format="JPEG", quality=90, optimize=False)
    return out.getvalue()


def attr(value: str) -> str:
    """An XML attribute value, quoted and escaped."""
    return quoteattr(value)
