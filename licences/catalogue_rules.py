"""The rules of a catalogue entry (统一编目): what a licence type's definition must hold, what
follows from it, and how a licence's fields are checked and laid out against it.

These are pure functions of a ``LicenceType`` — no session, no audit — so issuance, grants,
pulls and the rendered pages check an entry exactly as the catalogue does when it stores one
(``licences.catalogue``). GB/T 36902 fixes the codes; the field schema is a JSON Schema object
that both validates what a department sends and orders the fields on the rendered licence.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from core.errors import InvalidInput
from licences.id_documents import PERSON_ID_TYPES
from licences.identifiers import (
    ID_TYPE_RESIDENT,
    ID_TYPE_USCC,
    validate_licence_type_code,
    validate_uscc,
)
from licences.layout import check_layout
from licences.models import DocumentFormats, HolderCategory, LicenceType, ValidityRule

ID_TYPE_FOR_CATEGORY = {
    HolderCategory.NATURAL_PERSON.value: ID_TYPE_RESIDENT,
    HolderCategory.LEGAL_PERSON.value: ID_TYPE_USCC,
    HolderCategory.OTHER_ORGANISATION.value: ID_TYPE_USCC,
}
# The ID types a licence type of each holder category accepts (``holder_id_type`` above is the
# default, the one a batch row or exchange record without a type means): a person may hold any
# of the identity documents of licences/id_documents.py, an organisation only its credit code.
ID_TYPES_FOR_CATEGORY = {
    HolderCategory.NATURAL_PERSON.value: tuple(sorted(PERSON_ID_TYPES)),
    HolderCategory.LEGAL_PERSON.value: (ID_TYPE_USCC,),
    HolderCategory.OTHER_ORGANISATION.value: (ID_TYPE_USCC,),
}
LEVELS = ("national", "provincial", "municipal", "county")
# What a version of an entry is; migrations/versions/0002 writes the same keys for old entries.
DEFINITION_FIELDS = (
    "code",
    "name",
    "name_en",
    "authority_code",
    "authority_name",
    "authority_level",
    "holder_category",
    "holder_id_type",
    "validity_years",
    "field_schema",
    "issuer_codes",
    "service_items",
    "service_item_fields",
    "issuing_level",
    "validity_rule",
    "layout",  # the page template (licences.layout); versions before it read as None
    "document_formats",  # pdf | ofd | both; versions before it read as "pdf"
)
# Fields a PUT may change; code and defining authority are the entry's identity.
EDITABLE = tuple(
    f for f in DEFINITION_FIELDS if f not in ("code", "authority_code", "holder_id_type")
)
_MAX_FIELDS = 40
_MAX_SERVICE_ITEMS = 100
_SERVICE_ITEM = re.compile(r"^[0-9A-Za-z-]{1,64}$")


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


def definition(entry: LicenceType) -> dict[str, Any]:
    """The content of one version of an entry, as kept in the history."""
    return {name: getattr(entry, name, None) for name in DEFINITION_FIELDS}


def normalise(entry: LicenceType) -> LicenceType:
    """Check every GB/T 36902 field of ``entry`` and fill what follows from the others."""
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
            f"未知的持证主体类别 / unknown holder category {entry.holder_category} "
            f"(one of {', '.join(ID_TYPE_FOR_CATEGORY)})",
            field="holder_category",
        )
    entry.holder_id_type = ID_TYPE_FOR_CATEGORY[entry.holder_category]
    entry.issuing_level = entry.issuing_level or entry.authority_level
    for name in ("authority_level", "issuing_level"):
        if getattr(entry, name) not in LEVELS:
            raise InvalidInput(
                f"未知的层级 / unknown level {getattr(entry, name)} (one of {', '.join(LEVELS)})",
                field=name,
            )
    _check_validity(entry)
    entry.issuer_codes = list(
        dict.fromkeys(validate_uscc(c, field="issuer_codes") for c in entry.issuer_codes)
    )
    entry.service_items = list(dict.fromkeys(entry.service_items))
    if len(entry.service_items) > _MAX_SERVICE_ITEMS or not all(
        isinstance(i, str) and _SERVICE_ITEM.match(i) for i in entry.service_items
    ):
        raise InvalidInput(
            f"事项编码应为至多 {_MAX_SERVICE_ITEMS} 个 1-64 位字母数字 / service_items are at most "
            f"{_MAX_SERVICE_ITEMS} codes of 1-64 letters, digits or '-'",
            field="service_items",
        )
    check_field_schema(entry.field_schema)
    entry.service_item_fields = check_service_item_fields(entry)
    entry.layout = check_layout(entry.layout, entry.field_schema["properties"])
    entry.document_formats = check_document_formats(entry.document_formats)
    return entry


def check_document_formats(value: object) -> str:
    """``pdf`` (also for a definition that does not say), ``ofd`` or ``both``."""
    if value is None or value == "":
        return DocumentFormats.PDF.value
    allowed = [f.value for f in DocumentFormats]
    if value not in allowed:
        raise InvalidInput(
            f"文件格式应为 {' | '.join(allowed)} 之一 / document_formats must be one of "
            f"{', '.join(allowed)}, not {value!r}",
            field="document_formats",
        )
    return str(value)


def revised_definition(entry: LicenceType, changes: dict[str, Any]) -> dict[str, Any]:
    """The definition ``entry`` would have after a PUT of ``changes``, checked as a new entry
    is. Only the editable fields may be sent; a derived field sent empty is derived again."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(
            f"不可修改的字段 / fields that cannot be changed: {', '.join(sorted(unknown))}",
            field=sorted(unknown)[0],
        )
    merged = {**definition(entry), **changes}
    if merged.get("document_formats") is None:  # not said: as it is (older clients omit it)
        merged["document_formats"] = entry.document_formats or "pdf"
    for derived in ("validity_rule", "issuing_level"):  # sent empty: derive it again
        if derived in changes and not changes[derived]:
            merged[derived] = ""
    return definition(normalise(LicenceType.model_validate(merged)))


def check_service_item_fields(entry: LicenceType) -> dict[str, list[str]]:
    """What each service item needs of this type: an item listed in ``service_items`` and, for
    it, a non-empty list of the type's own fields. A department pulling a granted licence gets
    exactly these fields, so a name that is not in the schema would silently share nothing."""
    declared = entry.service_item_fields or {}
    if not isinstance(declared, dict):
        raise InvalidInput(
            "service_item_fields 应为对象 / service_item_fields must be an object",
            field="service_item_fields",
        )
    properties = entry.field_schema["properties"]
    checked: dict[str, list[str]] = {}
    for item, names in declared.items():
        if item not in entry.service_items:
            raise InvalidInput(
                f"事项 {item} 不在 service_items 中 / service item {item} is not in service_items",
                field="service_item_fields",
            )
        if not isinstance(names, list) or not names or len(names) > _MAX_FIELDS:
            raise InvalidInput(
                f"事项 {item} 须列出 1-{_MAX_FIELDS} 个字段 / service item {item} needs a list of "
                f"1-{_MAX_FIELDS} field names",
                field="service_item_fields",
            )
        unknown = [n for n in names if not isinstance(n, str) or n not in properties]
        if unknown:
            raise InvalidInput(
                f"事项 {item} 所需字段不在照面字段中 / service item {item} names fields the type "
                f"does not have: {', '.join(map(str, unknown))}",
                field="service_item_fields",
            )
        checked[item] = list(dict.fromkeys(names))
    return checked


def issuers(entry: LicenceType) -> list[str]:
    """The departments that may issue the type: its issuer list, or, when it has none, its
    defining authority alone — an empty list never opens a type to every department."""
    return list(entry.issuer_codes) or [entry.authority_code]


def fields_for_service_item(entry: LicenceType, item: str) -> list[str]:
    """The fields service item ``item`` needs of this type, in schema order; [] if it
    declares none."""
    needed = set(entry.service_item_fields.get(item, ()))
    return [name for name in entry.field_schema["properties"] if name in needed]


def _check_validity(entry: LicenceType) -> None:
    rule = entry.validity_rule or (
        ValidityRule.FIXED.value if entry.validity_years else ValidityRule.INDEFINITE.value
    )
    if rule not in {r.value for r in ValidityRule}:
        raise InvalidInput(
            f"有效期规则应为 fixed 或 indefinite / validity_rule is fixed or indefinite, not {rule}",
            field="validity_rule",
        )
    if rule == ValidityRule.INDEFINITE.value and entry.validity_years:
        raise InvalidInput(
            "长期有效的证照类型不设有效年限 / an indefinite type has no validity_years",
            field="validity_years",
        )
    if entry.validity_years is not None and not 1 <= entry.validity_years <= 100:
        raise InvalidInput("有效年限应为 1-100 / validity_years is 1-100", field="validity_years")
    entry.validity_rule = rule


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
