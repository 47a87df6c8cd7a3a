"""The printable page of an electronic licence (电子证照版式文件): one A4 page laid out like a
paper licence, with the QR code bottom left and the issuer bottom right, where the seal goes
(``RenderedLicence.seal_box``). Text is real text in embedded subset TrueType fonts with ToUnicode
maps; the canvas is invariant, so the same view always gives the same bytes."""

from __future__ import annotations

import functools
import io
import re
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from reportlab import rl_config
from reportlab.lib.colors import Color, HexColor, white
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from core.errors import InvalidInput
from licences.qr import QUIET_ZONE, qr_matrix

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in PDF points, origin bottom left
Style = tuple[str, float, Color]  # font name, size, colour
# Drawn last, over the finished page: (canvas, regular font name, bold font name). A
# purpose-stamped copy (licences.stamped) prints its stamp this way, on a page rendered here.
Overlay = Callable[[Canvas, str, str], None]

MM = 72 / 25.4
PAGE_W, PAGE_H = A4
LEFT, RIGHT = 22 * MM, PAGE_W - 22 * MM  # content edges, inside the border
TABLE_TOP, TABLE_FLOOR = PAGE_H - 60 * MM, 84 * MM  # the floor keeps clear of QR code and seal
LABEL_W, PAD_X, MIN_PAD_Y, MAX_PAD_Y = 38 * MM, 3 * MM, 2.2 * MM, 5 * MM
VALUE_W = RIGHT - LEFT - LABEL_W - 2 * PAD_X
FIELD_SIZES = (12.0, 11.0, 10.0, 9.0, 8.0)  # tried in turn until the table fits
LEADING, EN_STEP = 1.5, 9.0  # line height over font size; room for a label's English line
QR_SIZE, QR_Y = 33 * MM, 34 * MM  # the QR symbol, quiet zone included
SEAL_SIZE, ISSUER_W = 42 * MM, 76 * MM
ISSUER_CX, ISSUER_CY = RIGHT - 40 * MM, QR_Y + QR_SIZE / 2  # centre of issuer block and seal
RED, GOLD, INK, GREY, RULE, LABEL_BG = map(
    HexColor, ("#A61B1B", "#B8892E", "#1A1A1A", "#6B6B6B", "#D9C39A", "#FBF6EC")
)


@dataclass(frozen=True, slots=True)
class LicenceView:
    """Everything printed on a licence, already formatted and (where needed) masked."""

    title: str  # licence type, e.g. 食品经营许可证
    title_en: str | None
    identifier: str  # GB/T 36904 licence identifier
    holder_label: str  # e.g. 持证主体
    holder_name: str
    holder_id: str
    fields: tuple[tuple[str, str], ...]  # (Chinese label, value)
    issuer_name: str
    issue_date: str
    valid_from: str
    valid_until: str | None  # None means indefinite (长期)
    verify_url: str  # upper case where possible, for QR alphanumeric mode
    version: str
    # The request's name of each of ``fields``, in order: a page that cannot hold them names
    # the field taking most room (``fields.<name>``).
    field_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RenderedLicence:
    pdf: bytes
    seal_box: Box  # where the issuer's seal goes, page 0
    qr_box: Box  # the QR symbol with its quiet zone, page 0
    qr_version: int


_fonts: dict[str, str] = {}
_fonts_lock = threading.Lock()


def font_name(path: Path) -> str:
    """Register the TrueType font at ``path`` once per process and return its ReportLab name."""
    key = str(path.resolve())
    with _fonts_lock:
        if key not in _fonts:
            base = name = re.sub(r"[^A-Za-z0-9-]", "", path.stem) or "Font"
            n = 1
            while name in _fonts.values():
                n += 1
                name = f"{base}-{n}"
            font = TTFont(name, key)
            # Static instances of a variable font share the internal name used as BaseFont.
            font.face.name = name.encode("ascii")
            _keep_tables(font.face)
            pdfmetrics.registerFont(font)
            _fonts[key] = name
        return _fonts[key]


def _keep_tables(face: Any) -> None:
    """ReportLab copies a table out of the whole font file each time a document's subset is
    made — for a CJK font a ~10 MB copy of ``glyf`` per font per licence, a quarter of the
    rendering time. The tables never change, so each is copied once and kept (the same bytes;
    ~10 MB per font for the life of the process)."""
    read = face.get_table
    tables: dict[str, bytes] = {}

    def get_table(tag: str) -> bytes:
        found = tables.get(tag)
        if found is None:
            found = tables[tag] = read(tag)
        return found

    face.get_table = get_table


class _Flate(pdfdoc.PDFStreamFilterZCompress):  # type: ignore[misc]
    """Flate at zlib's level 1 instead of its default 6. A licence page is five streams (two
    font subsets, their ToUnicode maps, the page with its QR path), ~67 KB before compression;
    level 6 spends ~1.6 ms of each issuance on them and level 1 ~0.9 ms, for ~2 KB more in a
    ~110 KB sealed file. The pages stay byte-for-byte the same for the same view."""

    LEVEL = 1

    def encode(self, text: str | bytes) -> bytes:
        data = text.encode("utf8") if isinstance(text, str) else text
        return zlib.compress(data, self.LEVEL)


# ReportLab reads ``pdfdoc.PDFZCompress`` when it lays out each stream; licences are the only
# documents this process makes with it.
pdfdoc.PDFZCompress = _Flate()


# A Latin word with its trailing punctuation and spaces, a run of spaces, or any one character.
_TOKEN = re.compile(r"[A-Za-z0-9]+[!-/:-@\[-`{-~]*\s*|\s+|.", re.S)
_NO_LINE_START = frozenset("，。、；：！？）》」』】〕〉”’·…,.;:!?)]}%")


@functools.lru_cache(maxsize=65536)
def _advance(font: str, char: str) -> float:
    """Advance width of one character at size 1; ReportLab does not kern, so widths add up."""
    return float(pdfmetrics.stringWidth(char, font, 1.0))


def text_width(text: str, font: str, size: float) -> float:
    return sum(_advance(font, ch) for ch in text) * size


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Lines of at most ``width``, broken between CJK characters or Latin words, kinsoku-aware."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line: list[str] = []
        used = 0.0
        pending = _TOKEN.findall(paragraph)[::-1]
        while pending:
            tok = pending.pop()
            fits = used + text_width(tok.rstrip(), font, size) <= width + 1e-6
            if fits or (not line and len(tok) == 1):  # a lone character always goes in
                line.append(tok)
                used += text_width(tok, font, size)
            elif not line:  # one word wider than the cell: split it into characters
                pending.extend(reversed(tok))
            else:
                carry: list[str] = []  # moves down with tok so that it starts no line
                while len(line) > 1 and (carry or [tok])[0][0] in _NO_LINE_START:
                    carry.insert(0, line.pop())
                lines.append("".join(line).rstrip())
                line, used = carry, sum(text_width(t, font, size) for t in carry)
                pending.append(tok)
        lines.append("".join(line).rstrip())
    return lines


class _Row(NamedTuple):
    label: list[str]
    label_en: str | None
    value: list[str]
    size: float  # of the label; the identifier's value is smaller
    value_size: float
    label_h: float  # heights of the two blocks, without padding
    value_h: float


def _rows(view: LicenceView, regular: str, bold: str) -> tuple[list[_Row], float]:
    """The rows at the largest font size that fits, and the vertical cell padding; InvalidInput
    naming the field that takes most room when even the smallest size does not fit."""
    validity = f"{view.valid_from} 至 {view.valid_until or '长期'}"
    rows: list[_Row] = []
    for size in FIELD_SIZES:
        rows = []
        for label, label_en, value, value_size in (
            (view.holder_label, "Licence holder", view.holder_name, size),
            ("证件号码", "ID number", view.holder_id, size),
            *((label, None, value, size) for label, value in view.fields),
            ("有效期", "Period of validity", validity, size),
            ("证照标识", "Licence identifier", view.identifier, min(size, 9.0) - 0.5),
        ):
            labels = wrap(label, bold, size, LABEL_W - 2 * PAD_X)
            values = wrap(value, regular, value_size, VALUE_W)
            label_h = ((len(labels) - 1) * LEADING + 1) * size + (EN_STEP if label_en else 0)
            value_h = ((len(values) - 1) * LEADING + 1) * value_size
            rows.append(_Row(labels, label_en, values, size, value_size, label_h, value_h))
        spare = TABLE_TOP - TABLE_FLOOR - sum(max(r.label_h, r.value_h) for r in rows)
        if spare >= 2 * MIN_PAD_Y * len(rows):
            return rows, min(MAX_PAD_Y, spare / (2 * len(rows)))
    names = [f"fields.{n}" for n in view.field_names] or ["fields"] * len(view.fields)
    keys = ["holder.name", "holder.id", *names, "valid_until", "identifier"]
    heights = [max(r.label_h, r.value_h) for r in rows]
    field = keys[heights.index(max(heights))] if len(keys) == len(rows) else "fields"
    raise InvalidInput(
        f"证照内容排不进一页，请精简（{field} 最长）/ the licence does not fit on one page; "
        f"shorten it ({field} takes most room)",
        field=field,
    )


def check_fits(view: LicenceView, *, regular_font: Path, bold_font: Path) -> None:
    """Refuse (InvalidInput, naming the field) a view whose table cannot fit one page, before
    anything is signed or written; the QR code and issue date do not change the table."""
    _rows(view, font_name(regular_font), font_name(bold_font))


def _centred(c: Canvas, text: str, cx: float, y: float, style: Style, space: float = 0) -> None:
    c.setFont(style[0], style[1])
    c.setFillColor(style[2])
    c.drawCentredString(cx, y, text, charSpace=space)


def _draw_border(c: Canvas) -> None:
    """Red outer rule, gold squares (a dash pattern, not hundreds of paths), inner rule, corners."""
    for inset, width, color, dash in (
        (9.5, 2.6, RED, ()),
        (11.45, 1.3 * MM, GOLD, (1.3 * MM, 0.9 * MM)),
        (13.4, 0.7, RED, ()),
    ):
        c.setStrokeColor(color)
        c.setLineWidth(width)
        c.setDash(*dash)
        c.rect(inset * MM, inset * MM, PAGE_W - 2 * inset * MM, PAGE_H - 2 * inset * MM)
    for x, y in ((0, 0), (0, 1), (1, 0), (1, 1)):
        for inset, color in ((0.0, RED), (1.4 * MM, GOLD)):
            left = 9.5 * MM + x * (PAGE_W - 24.7 * MM) + inset
            bottom = 9.5 * MM + y * (PAGE_H - 24.7 * MM) + inset
            c.setFillColor(color)
            c.rect(left, bottom, 5.2 * MM - 2 * inset, 5.2 * MM - 2 * inset, stroke=0, fill=1)


def _draw_header(c: Canvas, view: LicenceView, regular: str, bold: str) -> None:
    cx = PAGE_W / 2
    _centred(c, "电子证照 · ELECTRONIC LICENCE", cx, PAGE_H - 24 * MM, (regular, 8.5, GREY), 1.2)
    # Letter-spaced by 0.3 em like a paper licence, shrunk if a long type name needs it.
    size = min(30.0, (RIGHT - LEFT) / (text_width(view.title, bold, 1) + 0.3 * len(view.title)))
    _centred(c, view.title, cx, PAGE_H - 38 * MM, (bold, size, INK), size * 0.3)
    if view.title_en:
        en = view.title_en.upper()
        en_size = min(12.0, (RIGHT - LEFT - len(en)) / text_width(en, regular, 1))
        _centred(c, en, cx, PAGE_H - 46 * MM, (regular, en_size, GREY), 0.8)
    c.setStrokeColor(RED)
    for y, width in ((51.5, 1.2), (52.6, 0.4)):
        c.setLineWidth(width)
        c.line(LEFT, PAGE_H - y * MM, RIGHT, PAGE_H - y * MM)


def _draw_table(c: Canvas, rows: list[_Row], regular: str, bold: str, pad: float) -> None:
    y = TABLE_TOP
    c.setStrokeColor(RULE)
    c.setLineWidth(0.6)
    for row in rows:
        bottom = y - max(row.label_h, row.value_h) - 2 * pad
        c.setFillColor(LABEL_BG)
        c.rect(LEFT, bottom, LABEL_W, y - bottom, stroke=0, fill=1)
        c.line(LEFT, bottom, RIGHT, bottom)
        # Label and value blocks are each centred vertically; 0.88 em is the CJK ascent.
        label_top, value_top = (y - (y - bottom - h) / 2 for h in (row.label_h, row.value_h))
        c.setFillColor(INK)
        size = row.size
        c.setFont(bold, size)
        for i, line in enumerate(row.label):
            baseline = label_top - (0.88 + i * LEADING) * size
            if 2 <= len(line) <= 3 and all("\u4e00" <= ch <= "\u9fff" for ch in line):
                # Spread over four characters' width, as on paper licences.
                for j, ch in enumerate(line):
                    c.drawString(LEFT + PAD_X + j * 3 * size / (len(line) - 1), baseline, ch)
            else:
                c.drawString(LEFT + PAD_X, baseline, line)
        c.setFont(regular, row.value_size)
        for i, line in enumerate(row.value):
            baseline = value_top - (0.88 + i * LEADING) * row.value_size
            c.drawString(LEFT + LABEL_W + PAD_X, baseline, line)
        if row.label_en:
            c.setFillColor(GREY)
            c.setFont(regular, 6.5)
            c.drawString(LEFT + PAD_X, label_top - row.label_h + 0.12 * size, row.label_en)
        y = bottom
    c.setStrokeColor(GOLD)
    c.setLineWidth(1.0)
    c.lines([(LEFT, TABLE_TOP, RIGHT, TABLE_TOP), (LEFT, y, RIGHT, y)])
    c.setLineWidth(0.6)
    c.line(LEFT + LABEL_W, TABLE_TOP, LEFT + LABEL_W, y)


def _draw_qr(c: Canvas, text: str, x: float, y: float, regular: str) -> tuple[Box, int]:
    qr = qr_matrix(text)
    c.setFillColor(white)
    c.rect(x, y, QR_SIZE, QR_SIZE, stroke=0, fill=1)
    # One path of dark runs in module units: no seams between modules, and fast to format.
    c.saveState()
    c.setFillColor(INK)
    c.translate(x, y)
    module = QR_SIZE / (qr.size + 2 * QUIET_ZONE)
    c.scale(module, module)
    c.addLiteral("".join(f"{rx} {ry} {n} 1 re\n" for rx, ry, n in qr.dark_runs()) + "f")
    c.restoreState()
    _centred(c, "扫码核验", x + QR_SIZE / 2, y - 4.5 * MM, (regular, 9, INK), 1.5)
    _centred(c, "Scan to verify", x + QR_SIZE / 2, y - 8 * MM, (regular, 7.5, GREY))
    return (x, y, x + QR_SIZE, y + QR_SIZE), qr.version


def _draw_issuer(c: Canvas, view: LicenceView, regular: str, bold: str) -> Box:
    parts: list[tuple[str, Style, float]] = [
        ("发证机关 / Issuing authority", (regular, 7.5, GREY), 12),
        *((line, (bold, 13.0, INK), 17) for line in wrap(view.issuer_name, bold, 13, ISSUER_W)),
        ("发证日期 / Date of issue", (regular, 7.5, GREY), 12),
        (view.issue_date, (regular, 12.0, INK), 12),
    ]
    y = ISSUER_CY + sum(step for *_, step in parts) / 2
    for text, style, step in parts:
        y -= step
        _centred(c, text, ISSUER_CX, y + (step - style[1]) / 2, style)
    x, y = ISSUER_CX - SEAL_SIZE / 2, ISSUER_CY - SEAL_SIZE / 2
    return (x, y, x + SEAL_SIZE, y + SEAL_SIZE)


def render_licence(
    view: LicenceView, *, regular_font: Path, bold_font: Path, overlay: Overlay | None = None
) -> RenderedLicence:
    """Render ``view`` as a one-page A4 PDF; InvalidInput (see ``check_fits``) when it cannot fit."""
    regular, bold = font_name(regular_font), font_name(bold_font)
    rows, pad = _rows(view, regular, bold)
    out = io.BytesIO()
    c = Canvas(
        out, pagesize=A4, invariant=1, pageCompression=1, lang="zh-CN", initialFontName=regular
    )
    c.setTitle(view.title)
    c.setAuthor(view.issuer_name)
    c.setSubject(f"{view.title} — {view.issuer_name}")
    c.setKeywords(view.identifier)
    _draw_border(c)
    _draw_header(c, view, regular, bold)
    _draw_table(c, rows, regular, bold, pad)
    qr_box, qr_version = _draw_qr(c, view.verify_url, LEFT, QR_Y, regular)
    seal_box = _draw_issuer(c, view, regular, bold)
    _centred(c, f"版本 Version {view.version}", PAGE_W / 2, 16.5 * MM, (regular, 7, GREY))
    if overlay is not None:
        overlay(c, regular, bold)
    c.showPage()
    rl_config.useA85 = 0  # read at save: binary streams are smaller and faster than ASCII85
    c.save()
    return RenderedLicence(out.getvalue(), seal_box, qr_box, qr_version)
