"""The page of a licence whose type carries a template (``licences.layout``): each element drawn
in its box, the holder's photo in its slot, the QR code and the seal's box where the template
puts them. Text uses the same fonts, wrapping and invariant canvas as the default page
(``licences.render``), so the same view always gives the same bytes.

A value shrinks (down to 6 pt) to fit its box; when even that does not fit, InvalidInput names
the field (``fields.<name>``) before anything is signed, as the default page does.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from reportlab import rl_config
from reportlab.lib.colors import HexColor, white
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from core.errors import InvalidInput
from licences.layout import FONT_MIN, Element, Layout
from licences.qr import QUIET_ZONE, qr_matrix
from licences.render import (
    GOLD,
    GREY,
    INK,
    LEADING,
    MM,
    RED,
    RULE,
    Box,
    LicenceView,
    Overlay,
    RenderedLicence,
    check_fits,
    font_name,
    render_licence,
    text_width,
    wrap,
)

EN_SIZE = 6.5  # a label's English line


def _box(layout: Layout, e: Element) -> Box:
    """An element's millimetre box from the top left, in PDF points from the bottom left."""
    x1 = e.x * MM
    y1 = (layout.height - e.y - e.h) * MM
    return (x1, y1, x1 + e.w * MM, y1 + e.h * MM)


def _fit(box: Box, e: Element, value: str, regular: str, name: str) -> tuple[float, list[str]]:
    """The size (shrunk from the element's, 6 pt at least) and lines at which ``value`` fits
    under its label in ``box``; InvalidInput naming ``name`` when even 6 pt does not."""
    x1, y1, x2, y2 = box
    top = y2 - max(FONT_MIN, e.font_size * 0.75) * LEADING
    size = e.font_size
    while True:
        lines = wrap(value, regular, size, x2 - x1)
        if ((len(lines) - 1) * LEADING + 1) * size <= top - y1 + 1e-6:
            return size, lines
        if size <= FONT_MIN:
            raise InvalidInput(
                f"{name} 排不进版式中的位置，请精简 / {name} does not fit its box in the "
                "type's layout; shorten it",
                field=name,
            )
        size = max(FONT_MIN, size - 0.5)


class _Page:
    """Millimetre boxes from the top left, turned into PDF points from the bottom left."""

    def __init__(self, c: Canvas, layout: Layout, regular: str, bold: str) -> None:
        self.c, self.layout, self.regular, self.bold = c, layout, regular, bold

    def box(self, e: Element) -> Box:
        return _box(self.layout, e)

    def border(self) -> None:
        c, lay = self.c, self.layout
        w, h = lay.width * MM, lay.height * MM
        if lay.background:
            c.setFillColor(HexColor(lay.background))
            c.rect(0, 0, w, h, stroke=0, fill=1)
        rules = {"double": ((3, 1.6, RED), (4.2, 0.6, GOLD)), "line": ((3, 0.8, RED),)}
        for inset, width, colour in rules.get(lay.border, ()):
            c.setStrokeColor(colour)
            c.setLineWidth(width)
            c.rect(inset * MM, inset * MM, w - 2 * inset * MM, h - 2 * inset * MM)

    def labelled(self, e: Element, label: str, label_en: str | None, value: str, name: str) -> None:
        """A label line (Chinese, English alongside) over the value, which wraps and shrinks."""
        box = self.box(e)
        x1, _, _, y2 = box
        c = self.c
        label_size = max(FONT_MIN, e.font_size * 0.75)
        c.setFillColor(GREY)
        c.setFont(self.bold, label_size)
        c.drawString(x1, y2 - label_size, label)
        if label_en:
            c.setFont(self.regular, EN_SIZE)
            c.drawString(x1 + text_width(label, self.bold, label_size) + 2 * MM, y2 - label_size,
                         label_en)  # fmt: skip
        top = y2 - label_size * LEADING
        size, lines = _fit(box, e, value, self.regular, name)
        c.setFillColor(INK)
        c.setFont(self.regular, size)
        for i, line in enumerate(lines):
            c.drawString(x1, top - (0.88 + i * LEADING) * size, line)

    def title(self, e: Element, view: LicenceView) -> None:
        x1, y1, x2, y2 = self.box(e)
        width, cx = x2 - x1, (x1 + x2) / 2
        size = min(e.font_size, width / max(1.0, text_width(view.title, self.bold, 1) * 1.3))
        self.c.setFillColor(INK)
        self.c.setFont(self.bold, size)
        self.c.drawCentredString(cx, y2 - size, view.title, charSpace=size * 0.3)
        if view.title_en and y2 - size * 1.2 - 10 >= y1:
            en = view.title_en.upper()
            en_size = min(10.0, width / max(1.0, text_width(en, self.regular, 1)))
            self.c.setFillColor(GREY)
            self.c.setFont(self.regular, en_size)
            self.c.drawCentredString(cx, y2 - size * 1.2 - en_size, en)

    def issuer(self, e: Element, view: LicenceView) -> None:
        """The issuer and date of issue, centred in the seal's box: the seal stamps over them."""
        x1, y1, x2, y2 = self.box(e)
        cx, cy, c = (x1 + x2) / 2, (y1 + y2) / 2, self.c
        names = wrap(view.issuer_name, self.bold, 12, x2 - x1)
        lines = [("发证机关 / Issuing authority", self.regular, 7.0, GREY)]
        lines += [(n, self.bold, 12.0, INK) for n in names]
        lines += [("发证日期 / Date of issue", self.regular, 7.0, GREY)]
        lines += [(view.issue_date, self.regular, 11.0, INK)]
        y = cy + sum(size * 1.4 for *_, size, _ in lines) / 2
        for text, font, size, colour in lines:
            y -= size * 1.4
            c.setFillColor(colour)
            c.setFont(font, size)
            c.drawCentredString(cx, y + size * 0.3, text)

    def qr(self, e: Element, text: str) -> tuple[Box, int]:
        box = self.box(e)
        x1, y1, x2, _ = box
        qr = qr_matrix(text)
        c = self.c
        c.setFillColor(white)
        c.rect(x1, y1, x2 - x1, x2 - x1, stroke=0, fill=1)
        c.saveState()
        c.setFillColor(INK)
        c.translate(x1, y1)
        module = (x2 - x1) / (qr.size + 2 * QUIET_ZONE)
        c.scale(module, module)
        c.addLiteral("".join(f"{rx} {ry} {n} 1 re\n" for rx, ry, n in qr.dark_runs()) + "f")
        c.restoreState()
        return box, qr.version

    def photo(self, e: Element, image: bytes | None) -> None:
        """The photo fitted in its slot (aspect kept), or an empty frame without one."""
        x1, y1, x2, y2 = self.box(e)
        c = self.c
        if image is not None:
            # Pixels at 300 dpi of the slot, embedded Flate-compressed: a JPEG (DCT) stream is
            # one the verifier's structure check cannot decode and would refuse the page.
            size = (round((x2 - x1) / 72 * 300), round((y2 - y1) / 72 * 300))
            with Image.open(io.BytesIO(image)) as decoded:
                decoded.draft("RGB", size)  # a JPEG decodes straight to about that size
                pixels = decoded.convert("RGB")
            pixels.thumbnail(size)
            reader = ImageReader(pixels)
            iw, ih = reader.getSize()
            scale = min((x2 - x1) / iw, (y2 - y1) / ih)
            w, h = iw * scale, ih * scale
            c.drawImage(reader, x1 + (x2 - x1 - w) / 2, y1 + (y2 - y1 - h) / 2, w, h)
        c.setStrokeColor(RULE)
        c.setLineWidth(0.6)
        c.rect(x1, y1, x2 - x1, y2 - y1)


def _values(view: LicenceView) -> dict[str, tuple[str, str]]:
    return {n: pair for n, pair in zip(view.field_names, view.fields, strict=False)}


Labelled = tuple[str, str | None, str, str]  # label, English label, value, field name


def _labelled(e: Element, view: LicenceView, values: dict[str, tuple[str, str]]) -> Labelled | None:
    """What a text element prints under its label, and the field a refusal names; None for
    the elements that are not a labelled value (title, photo, QR code, seal)."""
    if e.kind == "field":
        name = str(e.field)
        label, value = values.get(name, (name, ""))
        return e.label_zh or label, e.label_en, value, f"fields.{name}"
    validity = f"{view.valid_from} 至 {view.valid_until or '长期'}"
    known = {
        "holder_name": (view.holder_label, "Holder", view.holder_name, "holder.name"),
        "holder_id": ("证件号码", "ID number", view.holder_id, "holder.id"),
        "validity": ("有效期", "Validity", validity, "valid_until"),
        "identifier": ("证照标识", "Identifier", view.identifier, "identifier"),
        "issuer": ("发证机关", "Issuing authority", view.issuer_name, "issuer"),
    }.get(e.kind)
    if known is None:
        return None
    label, label_en, value, name = known
    return e.label_zh or label, e.label_en or label_en, value, name


def _draw(page: _Page, view: LicenceView, photo: bytes | None) -> tuple[Box, Box, int]:
    values = _values(view)
    qr_box: Box = (0, 0, 0, 0)
    seal_box: Box = (0, 0, 0, 0)
    qr_version = 0
    for e in page.layout.elements:
        labelled = _labelled(e, view, values)
        if e.kind == "title":
            page.title(e, view)
        elif labelled is not None:
            page.labelled(e, *labelled)
        elif e.kind == "photo":
            page.photo(e, photo)
        elif e.kind == "qr":
            qr_box, qr_version = page.qr(e, view.verify_url)
        else:  # the seal: the issuer and date under where it is stamped
            page.issuer(e, view)
            seal_box = page.box(e)
    return qr_box, seal_box, qr_version


def render_layout(
    view: LicenceView,
    layout: Layout,
    *,
    regular_font: Path,
    bold_font: Path,
    photo: bytes | None = None,
    overlay: Overlay | None = None,
) -> RenderedLicence:
    """Render ``view`` on one page of ``layout``; InvalidInput naming a value that cannot fit."""
    regular, bold = font_name(regular_font), font_name(bold_font)
    rl_config.useA85 = 0  # binary streams: the photo's pixels are not ASCII85-encoded
    out = io.BytesIO()
    size = (layout.width * MM, layout.height * MM)
    c = Canvas(
        out, pagesize=size, invariant=1, pageCompression=1, lang="zh-CN", initialFontName=regular
    )
    c.setTitle(view.title)
    c.setAuthor(view.issuer_name)
    c.setSubject(f"{view.title} — {view.issuer_name}")
    c.setKeywords(view.identifier)
    page = _Page(c, layout, regular, bold)
    page.border()
    qr_box, seal_box, qr_version = _draw(page, view, photo)
    footer = f"证照标识 {view.identifier} · 版本 Version {view.version}"
    c.setFillColor(GREY)
    c.setFont(regular, 6.5)
    c.drawCentredString(size[0] / 2, (layout.margin - 3.5) * MM, footer)  # below the elements
    if overlay is not None:
        overlay(c, regular, bold)
    c.showPage()
    rl_config.useA85 = 0
    c.save()
    return RenderedLicence(out.getvalue(), seal_box, qr_box, qr_version)


def render_page(
    view: LicenceView,
    layout: Layout | None,
    *,
    regular_font: Path,
    bold_font: Path,
    photo: bytes | None = None,
    overlay: Overlay | None = None,
) -> RenderedLicence:
    """The page of a type: its template's, or the default page for a type without one."""
    if layout is None:
        return render_licence(view, regular_font=regular_font, bold_font=bold_font, overlay=overlay)
    return render_layout(
        view, layout, regular_font=regular_font, bold_font=bold_font, photo=photo,
        overlay=overlay,
    )  # fmt: skip


def check_page_fits(
    view: LicenceView, layout: Layout | None, *, regular_font: Path, bold_font: Path
) -> None:
    """Refuse a view that cannot fit its type's page (InvalidInput naming the field)."""
    if layout is None:
        check_fits(view, regular_font=regular_font, bold_font=bold_font)
        return
    # Only the labelled values can overflow: each is fitted as the page fits it, with nothing
    # drawn (a whole render here cost the issuance a second page's serialising and compressing).
    regular = font_name(regular_font)
    values = _values(view)
    for e in layout.elements:
        labelled = _labelled(e, view, values)
        if labelled is not None:
            _, _, value, name = labelled
            _fit(_box(layout, e), e, value, regular, name)
