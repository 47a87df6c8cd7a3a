"""The catalogue of licence types (统一编目): one code, one standard, one field schema per type.

A type's field schema is a JSON Schema object; it both validates what a department sends and
lays out the fields on the rendered licence, in the order the schema lists them.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from licences.identifiers import validate_licence_type_code, validate_uscc
from licences.models import HolderCategory, LicenceType

ID_TYPE_FOR_CATEGORY = {
    HolderCategory.NATURAL_PERSON.value: "111",
    HolderCategory.LEGAL_PERSON.value: "001",
    HolderCategory.OTHER_ORGANISATION.value: "001",
}
LEVELS = ("national", "provincial", "municipal", "county")
_MAX_FIELDS = 40


def check_field_schema(schema: dict[str, Any]) -> None:
    """A field schema must be a closed object of labelled, bounded properties."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidInput(
            f"字段模式无效 / invalid field schema: {exc.message}", field="field_schema"
        ) from exc
    properties = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(properties, dict) or not properties:
        raise InvalidInput(
            "字段模式必须是带属性的对象 / field schema must be an object with properties",
            field="field_schema",
        )
    if len(properties) > _MAX_FIELDS:
        raise InvalidInput(f"字段过多 / at most {_MAX_FIELDS} fields", field="field_schema")
    if schema.get("additionalProperties") is not False:
        raise InvalidInput(
            "字段模式须禁止额外字段 / additionalProperties must be false", field="field_schema"
        )
    for name, spec in properties.items():
        if not isinstance(spec, dict) or not spec.get("title"):
            raise InvalidInput(
                f"字段 {name} 缺少标题 / field {name} needs a title", field="field_schema"
            )
        if spec.get("type") == "string" and "maxLength" not in spec:
            raise InvalidInput(
                f"字段 {name} 缺少长度上限 / field {name} needs maxLength", field="field_schema"
            )


class Catalogue:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def add(self, session: Session, *, actor: str, entry: LicenceType) -> LicenceType:
        entry.code = validate_licence_type_code(entry.code)
        entry.authority_code = validate_uscc(entry.authority_code, field="authority_code")
        if not entry.code.startswith(entry.authority_code):
            raise InvalidInput(
                "证照类型代码须以定义机构的统一社会信用代码开头 / the type code must start with the "
                "defining authority's credit code",
                field="code",
            )
        if entry.holder_category not in ID_TYPE_FOR_CATEGORY:
            raise InvalidInput(
                f"未知的持证主体类别 / unknown holder category {entry.holder_category}",
                field="holder_category",
            )
        if entry.authority_level not in LEVELS:
            raise InvalidInput(
                f"未知的层级 / unknown level {entry.authority_level}", field="authority_level"
            )
        entry.holder_id_type = ID_TYPE_FOR_CATEGORY[entry.holder_category]
        check_field_schema(entry.field_schema)
        if session.get(LicenceType, entry.code) is not None:
            raise Conflict(f"证照类型已存在 / licence type {entry.code} exists")
        session.add(entry)
        self._audit.append(
            session,
            actor=actor,
            action="catalogue.add",
            object_type="licence_type",
            object_id=entry.code,
            detail={"name": entry.name},
        )
        return entry

    def get(self, session: Session, code: str) -> LicenceType:
        entry = session.get(LicenceType, code)
        if entry is None:
            raise NotFound(f"未知的证照类型 / unknown licence type {code}", field="licence_type")
        return entry

    def list(self, session: Session) -> list[LicenceType]:
        return list(session.exec(select(LicenceType).order_by(col(LicenceType.code))))

    def check_issuer(self, entry: LicenceType, department_code: str) -> None:
        if entry.status != "active":
            raise Conflict(f"证照类型已停用 / licence type {entry.code} is withdrawn")
        if entry.issuer_codes and department_code not in entry.issuer_codes:
            raise Forbidden(
                f"该部门无权签发此类证照 / department {department_code} may not issue {entry.code}"
            )


def validate_fields(entry: LicenceType, fields: Any) -> dict[str, Any]:
    if not isinstance(fields, dict):
        raise InvalidInput("fields 必须是对象 / fields must be an object", field="fields")
    validator = Draft202012Validator(entry.field_schema)
    errors = sorted(validator.iter_errors(fields), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        path = ".".join(str(p) for p in first.absolute_path)
        where = f"fields.{path}" if path else "fields"
        raise InvalidInput(f"字段不符合证照类型要求 / {where}: {first.message}", field=where)
    return dict(fields)


def field_layout(entry: LicenceType, fields: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """(label, value) pairs in schema order, for the rendered page."""
    properties: dict[str, Any] = entry.field_schema["properties"]
    return tuple(
        (str(spec.get("title", name)), str(fields[name]))
        for name, spec in properties.items()
        if name in fields and fields[name] not in (None, "")
    )
