"""The specimen (样本) of a licence type: its page as the catalogue version lays it out, filled
with sample values, for departments checking a template and citizens learning what a genuine
licence looks like.

A specimen must never pass for a licence: "样本 SPECIMEN" is printed across the page, over
everything, and its QR code says SPECIMEN (no signed payload, nothing a verifier accepts); it
is never sealed. It is a pure function of the catalogue version, so it is rendered once per
(type, version) and kept in a small bounded cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from math import atan2, degrees, hypot
from pathlib import Path
from typing import Any

from reportlab.lib.colors import Color
from reportlab.pdfgen.canvas import Canvas

from licences.catalogue_rules import field_layout
from licences.layout import layout_of
from licences.layout_page import render_page
from licences.models import HolderCategory, LicenceType
from licences.render import LicenceView, text_width

WATERMARK = "样本 SPECIMEN"
QR_TEXT = "SPECIMEN"
CACHED = 64  # specimens kept; one per (type, version)
_SAMPLE_PERSON = ("持证人", "张三（样本）", "110101********0000")
_SAMPLE_BODY = ("持证主体", "示例有限公司（样本）", "91110000********00")


def sample_value(spec: dict[str, Any]) -> str:
    """A value for a field: its first example or enum value, else 示例 cut to its maxLength."""
    for key in ("examples", "enum"):
        values = spec.get(key)
        if isinstance(values, list) and values:
            return str(values[0])
    if spec.get("type") in ("integer", "number"):
        return str(spec.get("minimum", 1))
    return "示例 Sample"[: int(spec.get("maxLength", 12))]


def specimen_view(entry: LicenceType) -> LicenceView:
    properties: dict[str, Any] = entry.field_schema["properties"]
    values = {name: sample_value(spec) for name, spec in properties.items()}
    person = entry.holder_category == HolderCategory.NATURAL_PERSON.value
    label, name, holder_id = _SAMPLE_PERSON if person else _SAMPLE_BODY
    return LicenceView(
        title=entry.name,
        title_en=entry.name_en,
        identifier=f"{entry.code}-SPECIMEN",
        holder_label=label,
        holder_name=name,
        holder_id=holder_id,
        fields=field_layout(entry, values),
        issuer_name=entry.authority_name,
        issue_date="YYYY年MM月DD日",
        valid_from="YYYY年MM月DD日",
        valid_until="YYYY年MM月DD日" if entry.validity_years else None,
        verify_url=QR_TEXT,
        version="样本",
        field_names=tuple(properties),
    )


def _watermark(c: Canvas, regular: str, bold: str) -> None:
    """The words across the page's diagonal, translucent, over every element."""
    del regular
    width, height = c._pagesize
    size = 0.6 * hypot(width, height) / max(1.0, text_width(WATERMARK, bold, 1))
    c.saveState()
    c.setFillColor(Color(0.75, 0.1, 0.1, alpha=0.28))
    c.setFont(bold, size)
    c.translate(width / 2, height / 2)
    c.rotate(degrees(atan2(height, width)))
    c.drawCentredString(0, -size / 3, WATERMARK)
    c.restoreState()


class Specimens:
    """Specimen PDFs, rendered once per catalogue version."""

    def __init__(self, *, regular_font: Path, bold_font: Path) -> None:
        self._fonts = (regular_font, bold_font)
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def pdf(self, entry: LicenceType) -> bytes:
        key = (entry.code, entry.version)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        rendered = render_page(
            specimen_view(entry),
            layout_of(entry.layout, entry.field_schema["properties"]),
            regular_font=self._fonts[0],
            bold_font=self._fonts[1],
            overlay=_watermark,
        )
        with self._lock:
            self._cache[key] = rendered.pdf
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)
        return rendered.pdf
