"""Page templates and photos the layout, photo and specimen tests share: a natural-person type
with a photo slot (A5 landscape, like a health certificate), defined through the API."""

from __future__ import annotations

import base64
import copy
import io
from typing import Any

from PIL import Image

from api.ops.demo_faces import placeholder_face_b64
from api.ops.demo_layouts import HEALTH_CERT_LAYOUT
from tests.domain import Domain

FIELD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["post", "exam_org", "exam_date"],
    "properties": {
        "post": {"type": "string", "title": "从业岗位", "minLength": 1, "maxLength": 32},
        "exam_org": {"type": "string", "title": "体检机构", "minLength": 1, "maxLength": 64},
        "exam_date": {"type": "string", "title": "体检日期", "minLength": 1, "maxLength": 16},
    },
}
FIELDS = {"post": "餐饮服务（厨师）", "exam_org": "示范市疾病预防控制中心", "exam_date": "2026年3月2日"}
PERSON = {"id_type": "111", "id": "350102198503120034", "name": "陈建华"}


def layout() -> dict[str, Any]:
    return copy.deepcopy(HEALTH_CERT_LAYOUT)


def define(domain: Domain, suffix: str, the_layout: Any = None, index: int = 1) -> Any:
    """POST a type of department ``index`` with ``the_layout``; the response, whatever it is."""
    body: dict[str, Any] = {
        "code": domain.department(index)["code"] + suffix,
        "name": "从业人员健康证明",
        "name_en": "Food Handler Health Certificate",
        "authority_level": "municipal",
        "holder_category": "natural_person",
        "validity_years": 1,
        "field_schema": FIELD_SCHEMA,
        "layout": layout() if the_layout is None else the_layout,
    }
    return domain.client.post(
        "/api/v1/catalogue/licence-types", json=body, headers=domain.auth(index)
    )


def issue(domain: Domain, code: str, photo: str | None, index: int = 1, **extra: Any) -> Any:
    body: dict[str, Any] = {"licence_type": code, "holder": PERSON, "fields": FIELDS, **extra}
    if photo is not None:
        body["photo"] = photo
    return domain.client.post("/api/v1/licences", json=body, headers=domain.auth(index))


def face() -> str:
    return placeholder_face_b64("test-holder")


def encoded(image: Image.Image, fmt: str, **options: Any) -> str:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return base64.b64encode(out.getvalue()).decode()
