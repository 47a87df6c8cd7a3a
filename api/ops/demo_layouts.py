"""The demo's page templates (照面版式, ``licences.layout``) and the two types that use them,
each with a slot for the holder's photo. Millimetres from the page's top left corner.

* 从业人员健康证明 (food handler health certificate), the health commission's: A5 landscape,
  the photo left of the holder's details, the QR code bottom left and the seal bottom right.
* 特种设备作业人员证 (special equipment operator certificate), the market regulator's: A4
  portrait, the photo top right as on the paper certificate.

The people are fictitious and their photos are drawn placeholders (``api.ops.demo_faces``).
"""

from __future__ import annotations

from typing import Any

HEALTH_CERT_LAYOUT: dict[str, Any] = {
    "page": {"width": 210, "height": 148, "margin": 10},
    "border": "double",
    "background": "#FFFDF7",
    "elements": [
        {"kind": "title", "box": [10, 11, 190, 17], "font_size": 22},
        {"kind": "photo", "box": [14, 33, 33, 43]},
        {"kind": "holder_name", "box": [54, 33, 70, 12], "font_size": 12},
        {"kind": "holder_id", "box": [128, 33, 70, 12], "font_size": 11},
        {"kind": "field", "field": "post", "label_en": "Post", "box": [54, 48, 70, 12]},
        {"kind": "field", "field": "exam_org", "label_en": "Examined by", "box": [128, 48, 70, 12]},
        {"kind": "field", "field": "exam_date", "label_en": "Examined on", "box": [54, 63, 70, 12]},
        {"kind": "validity", "box": [128, 63, 70, 12], "font_size": 10},
        {"kind": "identifier", "box": [54, 78, 144, 10], "font_size": 8},
        {"kind": "qr", "box": [14, 94, 34, 34]},
        {"kind": "seal", "box": [140, 90, 50, 46]},
    ],
}

OPERATOR_CERT_LAYOUT: dict[str, Any] = {
    "page": {"width": 210, "height": 297, "margin": 15},
    "border": "line",
    "elements": [
        {"kind": "title", "box": [15, 20, 180, 20], "font_size": 26},
        {"kind": "photo", "box": [152, 46, 38, 50]},
        {"kind": "holder_name", "box": [15, 46, 125, 14], "font_size": 13},
        {"kind": "holder_id", "box": [15, 63, 125, 14], "font_size": 12},
        {"kind": "field", "field": "category", "label_en": "Category", "box": [15, 80, 125, 14]},
        {"kind": "field", "field": "item", "label_en": "Operation", "box": [15, 100, 175, 14]},
        {"kind": "field", "field": "employer", "label_en": "Employer", "box": [15, 118, 175, 14]},
        {"kind": "validity", "box": [15, 136, 175, 14], "font_size": 12},
        {"kind": "identifier", "box": [15, 154, 175, 12], "font_size": 9},
        {"kind": "qr", "box": [22, 228, 36, 36]},
        {"kind": "seal", "box": [128, 220, 56, 52]},
    ],
}
