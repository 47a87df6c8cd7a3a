"""Demo data for ``elicence init --demo``: two departments, two licence types, licences, keys.

Every code here passes its own check (credit codes, resident IDs); the people and companies are
fictitious.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

from api.ops.demo_faces import placeholder_face_b64
from api.ops.demo_layouts import HEALTH_CERT_LAYOUT, OPERATOR_CERT_LAYOUT
from licences.issuance import IssueRequest

MARKET = {
    "code": "1135010000360001XN",
    "name": "示范市市场监督管理局",
    "division": "350100",
    "level": "municipal",
}
HEALTH = {
    "code": "11350100003600028N",
    "name": "示范市卫生健康委员会",
    "division": "350100",
    "level": "municipal",
}
DEPARTMENTS = [MARKET, HEALTH]
# The municipal supervision office (电子监察) over the demo departments' division: a department
# row that issues nothing; its one client holds the supervise scope alone.
SUPERVISION_OFFICE = {
    "code": "11350100003600037L",
    "name": "示范市政务服务电子监察中心",
    "division": "350100",
    "level": "municipal",
}


def _string(title: str, max_length: int) -> dict[str, Any]:
    return {"type": "string", "title": title, "minLength": 1, "maxLength": max_length}


FOOD_LICENCE: dict[str, Any] = {
    "code": MARKET["code"] + "001",
    "name": "食品经营许可证",
    "name_en": "Food Business Licence",
    "authority_code": MARKET["code"],
    "authority_name": MARKET["name"],
    "authority_level": "municipal",
    "holder_category": "legal_person",
    "validity_years": 5,
    "issuer_codes": [MARKET["code"]],
    # Service items (事项编码, fictitious) and the fields each needs: a department the holder
    # grants the licence to for one of them pulls only these fields.
    "service_items": ["000125006000-01", "000130003000-01"],
    "service_item_fields": {
        "000125006000-01": ["premises", "business_form", "scope"],  # 食品经营许可延续
        "000130003000-01": ["premises", "business_form"],  # 公共场所卫生许可
    },
    "field_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["premises", "business_form", "scope"],
        "properties": {
            "legal_representative": _string("法定代表人（负责人）", 32),
            "premises": _string("经营场所", 128),
            "business_form": _string("主体业态", 64),
            "scope": _string("经营项目", 512),
        },
    },
}

PHYSICIAN_LICENCE: dict[str, Any] = {
    "code": HEALTH["code"] + "001",
    "name": "医师执业证书",
    "name_en": "Physician Practising Certificate",
    "authority_code": HEALTH["code"],
    "authority_name": HEALTH["name"],
    "authority_level": "municipal",
    "holder_category": "natural_person",
    "validity_years": None,
    "issuer_codes": [HEALTH["code"]],
    "service_items": ["000126021000-01", "000126022000-01"],
    "service_item_fields": {
        "000126021000-01": ["category", "scope", "workplace"],  # 医师多机构执业备案
        "000126022000-01": ["category", "workplace"],  # 医疗机构执业登记人员核验
    },
    "field_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["category", "scope", "workplace"],
        "properties": {
            "category": _string("执业类别", 32),
            "scope": _string("执业范围", 128),
            "workplace": _string("执业地点", 128),
        },
    },
}

# Two types with page templates of their own and a slot for the holder's photo
# (api.ops.demo_layouts); each has one demo licence with a drawn placeholder photo.
HEALTH_CERTIFICATE: dict[str, Any] = {
    "code": HEALTH["code"] + "002",
    "name": "从业人员健康证明",
    "name_en": "Food Handler Health Certificate",
    "authority_code": HEALTH["code"],
    "authority_name": HEALTH["name"],
    "authority_level": "municipal",
    "holder_category": "natural_person",
    "validity_years": 1,
    "issuer_codes": [HEALTH["code"]],
    "field_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["post", "exam_org", "exam_date"],
        "properties": {
            "post": _string("从业岗位", 32),
            "exam_org": _string("体检机构", 64),
            "exam_date": _string("体检日期", 16),
        },
    },
    "layout": HEALTH_CERT_LAYOUT,
}

OPERATOR_CERTIFICATE: dict[str, Any] = {
    "code": MARKET["code"] + "002",
    "name": "特种设备作业人员证",
    "name_en": "Special Equipment Operator Certificate",
    "authority_code": MARKET["code"],
    "authority_name": MARKET["name"],
    "authority_level": "municipal",
    "holder_category": "natural_person",
    "validity_years": 4,
    "issuer_codes": [MARKET["code"]],
    "field_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["category", "item", "employer"],
        "properties": {
            "category": _string("作业类别", 32),
            "item": _string("作业项目", 64),
            "employer": _string("用人单位", 128),
        },
    },
    "layout": OPERATOR_CERT_LAYOUT,
}

LICENCE_TYPES = [FOOD_LICENCE, PHYSICIAN_LICENCE, HEALTH_CERTIFICATE, OPERATOR_CERTIFICATE]


def licence_types(ofd: bool) -> list[dict[str, Any]]:
    """The demo's types as ``init --demo`` defines them: where the key store holds SM2 keys
    (``IssuanceService.issues_ofd``), the operator certificate is issued as its PDF and as an
    OFD with a GB/T 38540 SM2 seal (the national form), so the demo shows both; elsewhere (an
    OpenBao or PKCS#11 custody, which have no SM2) every type is PDF."""
    return [
        {**entry, "document_formats": "both"} if ofd and entry is OPERATOR_CERTIFICATE else entry
        for entry in LICENCE_TYPES
    ]


SAMPLE_LICENCES: list[dict[str, Any]] = [
    {
        "department": MARKET["code"],
        "licence_type": FOOD_LICENCE["code"],
        "holder": {"id_type": "001", "id": "91350100M000100Y43", "name": "示范餐饮管理有限公司"},
        "fields": {
            "legal_representative": "林晓东",
            "premises": "示范市鼓楼区五四路128号一层",
            "business_form": "餐饮服务经营者（中型餐馆）",
            "scope": "热食类食品制售、冷食类食品制售、自制饮品制售",
        },
    },
    {
        "department": MARKET["code"],
        "licence_type": FOOD_LICENCE["code"],
        "holder": {"id_type": "001", "id": "91350100MA2Y0001X9", "name": "示范食品商贸有限公司"},
        "fields": {
            "premises": "示范市台江区江滨中大道66号",
            "business_form": "食品销售经营者（超市）",
            "scope": "预包装食品销售（含冷藏冷冻食品）、散装食品销售",
        },
    },
    {
        "department": HEALTH["code"],
        "licence_type": PHYSICIAN_LICENCE["code"],
        "holder": {"id_type": "111", "id": "350102198503120034", "name": "陈建华"},
        "fields": {"category": "临床", "scope": "内科专业", "workplace": "示范市第一医院"},
    },
    {
        "department": HEALTH["code"],
        "licence_type": PHYSICIAN_LICENCE["code"],
        "holder": {"id_type": "111", "id": "350103199007150024", "name": "王丽萍"},
        "fields": {"category": "口腔", "scope": "口腔专业", "workplace": "示范市口腔医院"},
    },
    {
        "department": HEALTH["code"],
        "licence_type": HEALTH_CERTIFICATE["code"],
        "holder": {"id_type": "111", "id": "35010419920518001X", "name": "刘思远"},
        "fields": {
            "post": "餐饮服务（厨师）",
            "exam_org": "示范市疾病预防控制中心",
            "exam_date": "2026年3月2日",
        },
        "photo": "刘思远",  # the seed of the drawn placeholder (api.ops.demo_faces)
    },
    {
        "department": MARKET["code"],
        "licence_type": OPERATOR_CERTIFICATE["code"],
        "holder": {"id_type": "111", "id": "350105198811230023", "name": "郑雅琴"},
        "fields": {
            "category": "特种设备作业",
            "item": "叉车司机（N1）",
            "employer": "示范市港务物流有限公司",
        },
        "photo": "郑雅琴",
    },
]


def licence_types_of(department_code: str) -> list[str]:
    """The demo types a department issues: its demo seal is authorised for exactly these."""
    return [t["code"] for t in LICENCE_TYPES if department_code in t["issuer_codes"]]


def sample_request(department_code: str, today: date) -> dict[str, Any]:
    """A valid body for POST /api/v1/licences for this department (a new holder each time is
    not needed: the holder is captured once and reused), starting ``today`` (a date in China)."""
    for sample in SAMPLE_LICENCES:
        if sample["department"] == department_code:
            return {
                "licence_type": sample["licence_type"],
                "holder": sample["holder"],
                "fields": sample["fields"],
                "valid_from": today.isoformat(),
                "valid_until": None,
            }
    raise KeyError(department_code)


def issue_request(sample: dict[str, Any], valid_from: date, actor: str) -> IssueRequest:
    """The issuance request for one of ``SAMPLE_LICENCES``."""
    return IssueRequest(
        department_code=sample["department"],
        licence_type=sample["licence_type"],
        holder_id_type=sample["holder"]["id_type"],
        holder_id=sample["holder"]["id"],
        holder_name=sample["holder"]["name"],
        fields=sample["fields"],
        valid_from=valid_from,
        actor=actor,
        photo=placeholder_face_b64(sample["photo"]) if "photo" in sample else None,
    )


def holders() -> list[dict[str, str]]:
    """The demo data's holders, once each, as the development identity provider
    (``api.dev_idp.provider``) signs them in: ``subject`` (stable, and not the ID number), ``id_type``,
    ``id`` and ``name``. The people and companies are fictitious."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for sample in SAMPLE_LICENCES:
        holder = sample["holder"]
        key = (holder["id_type"], holder["id"])
        found.setdefault(key, {"subject": holder_subject(*key), **holder})
    return list(found.values())


def holder_subject(id_type: str, id_number: str) -> str:
    """The development identity provider's ``sub`` for a demo holder."""
    return "demo-" + hashlib.sha256(f"{id_type}:{id_number}".encode()).hexdigest()[:16]
