"""A licence type's page template (照面版式): a declarative layout stored with the catalogue
version, so a driving-school permit and a food business licence each print like their paper
forms while the service still renders, seals and verifies every page the same way.

A layout is JSON, in millimetres from the page's top left corner::

    {"page": {"width": 210, "height": 297, "margin": 12},
     "border": "double" | "line" | "none", "background": "#FFFDF7",
     "elements": [{"kind": "title", "box": [x, y, w, h], "font_size": 26}, ...,
                  {"kind": "field", "field": "scope", "label_zh": "经营范围",
                   "label_en": "Scope", "font_size": 11, "box": [...]},
                  {"kind": "photo", "box": [...]}, {"kind": "qr", "box": [...]},
                  {"kind": "seal", "box": [...]}]}

Why the rules below: the seal is stamped over its box and the QR code must decode from a 150 dpi
copy, so nothing may print into either box, the QR is at least 30 mm square and the seal box
holds the 42 mm seal; every element stays inside the margins (a clipped value is a different
licence); a template names only the type's own fields. A type without a layout prints the
default page (``licences.render``), byte for byte as before layouts existed.

The checks run when the catalogue version is defined or replaced (``catalogue_rules.normalise``)
and name the element (``layout.elements[3]``), so a department fixes its template before any
licence is issued under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInput

TEXT_KINDS = frozenset(
    {"title", "holder_name", "holder_id", "field", "validity", "identifier", "issuer"}
)
KINDS = TEXT_KINDS | {"photo", "qr", "seal"}
BORDERS = ("double", "line", "none")
MAX_ELEMENTS = 40
FONT_MIN, FONT_MAX = 6.0, 36.0
PAGE_MIN, PAGE_MAX = 100.0, 420.0  # A6 is 105 mm; A3 is 420 mm
MARGIN_MIN, MARGIN_MAX = 8.0, 30.0  # the footer (identifier and version) prints in the margin
QR_MIN, QR_MAX = 30.0, 80.0  # decodes from a 150 dpi copy (tests/test_qr_payload.py)
SEAL_MIN, SEAL_MAX = 42.0, 80.0  # the seal image is 42 mm (licences.render.SEAL_SIZE)
PHOTO_MIN, PHOTO_MAX = 20.0, 80.0
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_ELEMENT_KEYS = frozenset({"kind", "box", "field", "label_zh", "label_en", "font_size"})
_LAYOUT_KEYS = frozenset({"page", "border", "background", "elements"})
_PAGE_KEYS = frozenset({"width", "height", "margin"})


@dataclass(frozen=True, slots=True)
class Element:
    kind: str
    x: float  # mm from the left edge
    y: float  # mm from the top edge
    w: float
    h: float
    field: str | None = None
    label_zh: str | None = None
    label_en: str | None = None
    font_size: float = 11.0

    def overlaps(self, other: Element) -> bool:
        return (
            self.x < other.x + other.w
            and other.x < self.x + self.w
            and self.y < other.y + other.h
            and other.y < self.y + self.h
        )


@dataclass(frozen=True, slots=True)
class Layout:
    width: float
    height: float
    margin: float
    border: str
    background: str | None
    elements: tuple[Element, ...]

    def one(self, kind: str) -> Element | None:
        return next((e for e in self.elements if e.kind == kind), None)

    @property
    def has_photo(self) -> bool:
        return self.one("photo") is not None


def _bad(where: str, what: str) -> InvalidInput:
    return InvalidInput(f"照面版式无效 / invalid layout: {where}: {what}", field=where)


def _number(value: Any, where: str, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(where, f"{name} 须为数字 / {name} must be a number")
    if not low <= float(value) <= high:
        raise _bad(where, f"{name} 应在 {low:g}-{high:g} 之间 / {name} must be {low:g}-{high:g}")
    return float(value)


def _text(value: Any, where: str, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 32:
        raise _bad(where, f"{name} 须为 1-32 字 / {name} must be 1-32 characters")
    return value


def _element(raw: Any, where: str, properties: dict[str, Any]) -> Element:
    if not isinstance(raw, dict):
        raise _bad(where, "须为对象 / must be an object")
    unknown = sorted(set(raw) - _ELEMENT_KEYS)
    if unknown:
        raise _bad(where, f"未知的成员 / unknown members {', '.join(unknown)}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise _bad(
            where, f"未知的元素类型 / unknown kind {kind!r} (one of {', '.join(sorted(KINDS))})"
        )
    box = raw.get("box")
    if not isinstance(box, list) or len(box) != 4:
        raise _bad(where, "box 须为 [x, y, 宽, 高]（毫米）/ box must be [x, y, w, h] in mm")
    x, y = (_number(v, where, "box", 0, PAGE_MAX) for v in box[:2])
    w, h = (_number(v, where, "box", 1, PAGE_MAX) for v in box[2:])
    name = raw.get("field")
    if (kind == "field") != (name is not None):
        raise _bad(
            where,
            "field 仅且必须用于 kind=field / field is for kind 'field' only, and needed there",
        )
    if name is not None and (not isinstance(name, str) or name not in properties):
        raise _bad(where, f"未知的字段 / unknown field {name!r}: not in the type's field_schema")
    if kind in TEXT_KINDS:
        size = _number(raw.get("font_size", 11), where, "font_size", FONT_MIN, FONT_MAX)
    elif "font_size" in raw:
        raise _bad(where, f"{kind} 不设 font_size / {kind} has no font_size")
    else:
        size = 11.0
    return Element(
        kind=kind, x=x, y=y, w=w, h=h, field=name, font_size=size,
        label_zh=_text(raw.get("label_zh"), where, "label_zh"),
        label_en=_text(raw.get("label_en"), where, "label_en"),
    )  # fmt: skip


def _check_sizes(e: Element, where: str) -> None:
    for kind, low, high, square in (
        ("qr", QR_MIN, QR_MAX, True),
        ("seal", SEAL_MIN, SEAL_MAX, False),
        ("photo", PHOTO_MIN, PHOTO_MAX, False),
    ):
        if e.kind != kind:
            continue
        if square and e.w != e.h:
            raise _bad(where, f"{kind} 须为正方形 / the {kind} box must be square")
        for side in (e.w, e.h):
            _number(side, where, f"{kind} box", low, high)


def parse_layout(raw: Any, properties: dict[str, Any]) -> Layout:
    """The layout ``raw`` as checked; InvalidInput naming the member or element at fault."""
    if not isinstance(raw, dict):
        raise _bad("layout", "须为对象 / must be an object")
    unknown = sorted(set(raw) - _LAYOUT_KEYS)
    if unknown:
        raise _bad("layout", f"未知的成员 / unknown members {', '.join(unknown)}")
    page = raw.get("page", {})
    if not isinstance(page, dict) or set(page) - _PAGE_KEYS:
        raise _bad(
            "layout.page",
            "须为 {width, height, margin}（毫米）/ must be {width, height, margin} in mm",
        )
    width = _number(page.get("width", 210), "layout.page", "width", PAGE_MIN, PAGE_MAX)
    height = _number(page.get("height", 297), "layout.page", "height", PAGE_MIN, PAGE_MAX)
    margin = _number(page.get("margin", 12), "layout.page", "margin", MARGIN_MIN, MARGIN_MAX)
    border = raw.get("border", "double")
    if border not in BORDERS:
        raise _bad(
            "layout.border", f"应为 {' | '.join(BORDERS)} / must be one of {', '.join(BORDERS)}"
        )
    background = raw.get("background")
    if background is not None and (
        not isinstance(background, str) or not _COLOUR.match(background)
    ):
        raise _bad("layout.background", "应为 #RRGGBB / must be a colour #RRGGBB")
    items = raw.get("elements")
    if not isinstance(items, list) or not items:
        raise _bad("layout.elements", "须为非空列表 / must be a non-empty list")
    if len(items) > MAX_ELEMENTS:
        raise _bad("layout.elements", f"元素过多 / at most {MAX_ELEMENTS} elements")
    elements = tuple(
        _element(item, f"layout.elements[{i}]", properties) for i, item in enumerate(items)
    )
    seen: set[str] = set()
    for i, e in enumerate(elements):
        where = f"layout.elements[{i}]"
        key, name = (f"field:{e.field}", str(e.field)) if e.kind == "field" else (e.kind, e.kind)
        if key in seen:
            raise _bad(where, f"{name} 重复 / {name} appears twice")
        seen.add(key)
        _check_sizes(e, where)
        if (
            e.x < margin
            or e.y < margin
            or e.x + e.w > width - margin
            or e.y + e.h > height - margin
        ):
            raise _bad(where, f"{name} 超出页面边距 / {name} lies outside the page's margins")
    for kind in ("qr", "seal"):
        if kind not in seen:
            raise _bad("layout.elements", f"缺少 {kind} 元素 / the layout needs a {kind} element")
    reserved = [e for e in elements if e.kind in ("qr", "seal")]
    for i, e in enumerate(elements):
        for r in reserved:
            if e is not r and e.overlaps(r):
                name = str(e.field) if e.kind == "field" else e.kind
                raise _bad(
                    f"layout.elements[{i}]",
                    f"{name} 与{'二维码' if r.kind == 'qr' else '印章'}区域重叠 / {name} overlaps "
                    f"the {r.kind} box",
                )
    return Layout(width, height, margin, border, background, elements)


def check_layout(raw: Any, properties: dict[str, Any]) -> dict[str, Any] | None:
    """The layout to store for a catalogue version: None (the default page) or ``raw``, checked."""
    if raw is None:
        return None
    parse_layout(raw, properties)
    return dict(raw)


def layout_of(raw: dict[str, Any] | None, properties: dict[str, Any]) -> Layout | None:
    """The stored layout of a type, parsed for rendering; None for the default page."""
    return None if raw is None else parse_layout(raw, properties)


def has_photo_slot(raw: dict[str, Any] | None) -> bool:
    """Whether a stored (checked) layout prints a photo; the default page has none."""
    return raw is not None and any(e.get("kind") == "photo" for e in raw.get("elements", ()))
