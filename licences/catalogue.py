"""The catalogue of licence types (统一编目): one code, one standard, one field schema per type —
"同一事项同一标准同一编码".

A type's field schema is a JSON Schema object; it both validates what a department sends and
lays out the fields on the rendered licence, in the order the schema lists them. Entries are
versioned: every change of the definition is a new version, kept in ``licence_type_version``, and
every licence records the version it was issued under. A type with licences is withdrawn, never
deleted: its licences must stay readable and verifiable. Only the defining authority changes its
own types, and a type without an issuer list is issued by its defining authority alone.
"""

from __future__ import annotations

import builtins
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlmodel import Session, col, func, select

from core.audit import AuditLog
from core.clock import Clock, SystemClock
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from licences.identifiers import validate_licence_type_code, validate_uscc
from licences.models import (
    HolderCategory,
    Licence,
    LicenceType,
    LicenceTypeVersion,
    TypeStatus,
    ValidityRule,
)
from seals.authorisation import authorise_licence_seals

ID_TYPE_FOR_CATEGORY = {
    HolderCategory.NATURAL_PERSON.value: "111",
    HolderCategory.LEGAL_PERSON.value: "001",
    HolderCategory.OTHER_ORGANISATION.value: "001",
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
    return {name: getattr(entry, name) for name in DEFINITION_FIELDS}


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
    return entry


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


class Catalogue:
    def __init__(self, audit: AuditLog, clock: Clock | None = None) -> None:
        self._audit = audit
        self._clock = clock or SystemClock()

    def add(self, session: Session, *, actor: str, entry: LicenceType) -> LicenceType:
        normalise(entry)
        if session.get(LicenceType, entry.code) is not None:
            raise Conflict(f"证照类型已存在 / licence type {entry.code} exists", field="code")
        entry.version = 1
        entry.status = TypeStatus.ACTIVE.value
        entry.updated_at = self._clock.now()
        session.add(entry)
        session.flush()
        self._record_version(session, entry, actor)
        self._audit.append(
            session,
            actor=actor,
            action="catalogue.add",
            object_type="licence_type",
            object_id=entry.code,
            detail={"name": entry.name, "version": 1},
        )
        authorise_licence_seals(  # the issuers' licence seals may seal it (seals.authorisation)
            session,
            self._audit,
            licence_type=entry.code,
            departments=issuers(entry),
            actor=actor,
        )
        return entry

    def update(
        self,
        session: Session,
        *,
        actor: str,
        code: str,
        changes: dict[str, Any],
        department_code: str | None,
    ) -> LicenceType:
        """Replace the editable fields; a real change is a new version, an identical PUT is not."""
        entry = self._own(session, code, department_code)
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise InvalidInput(
                f"不可修改的字段 / fields that cannot be changed: {', '.join(sorted(unknown))}",
                field=sorted(unknown)[0],
            )
        merged = {**definition(entry), **changes}
        for derived in ("validity_rule", "issuing_level"):  # sent empty: derive it again
            if derived in changes and not changes[derived]:
                merged[derived] = ""
        candidate = normalise(LicenceType.model_validate(merged))
        before = definition(entry)
        after = definition(candidate)
        if after == before:
            return entry
        if after["holder_category"] != before["holder_category"] and self._has_licences(
            session, entry.code
        ):
            raise Conflict(
                "已有证照的类型不能改变持证主体类别 / the holder category of a type with licences "
                "cannot change; define a new type",
                field="holder_category",
            )
        for name in EDITABLE:
            setattr(entry, name, after[name])
        entry.holder_id_type = after["holder_id_type"]
        entry.version += 1
        entry.updated_at = self._clock.now()
        session.add(entry)
        session.flush()
        self._record_version(session, entry, actor)
        self._audit.append(
            session,
            actor=actor,
            action="catalogue.update",
            object_type="licence_type",
            object_id=entry.code,
            detail={
                "version": entry.version,
                "changed": sorted(k for k in after if after[k] != before[k]),
            },
        )
        was, now = before["issuer_codes"] or [entry.authority_code], issuers(entry)
        if now != was:
            authorise_licence_seals(  # only departments new to the type
                session,
                self._audit,
                licence_type=entry.code,
                departments=now,
                actor=actor,
                already=was,
            )
        return entry

    def withdraw(
        self,
        session: Session,
        *,
        actor: str,
        code: str,
        reason: str | None,
        department_code: str | None,
    ) -> LicenceType:
        """Stop issuing a type; its licences keep their status and stay verifiable."""
        entry = self._own(session, code, department_code)
        if entry.status == TypeStatus.WITHDRAWN.value:
            raise Conflict(
                f"证照类型已停用 / licence type {code} is already withdrawn",
                extra={"current_status": entry.status},
            )
        entry.status = TypeStatus.WITHDRAWN.value
        entry.withdrawn_at = entry.updated_at = self._clock.now()
        session.add(entry)
        self._audit.append(
            session,
            actor=actor,
            action="catalogue.withdraw",
            object_type="licence_type",
            object_id=code,
            detail={"version": entry.version, "reason": reason},
        )
        return entry

    def delete(
        self, session: Session, *, actor: str, code: str, department_code: str | None
    ) -> None:
        """Only a type that never issued a licence may go; otherwise withdraw it."""
        entry = self._own(session, code, department_code)
        if self._has_licences(session, code):
            raise Conflict(
                "已有证照的类型只能停用，不能删除 / a type with licences can be withdrawn, "
                "never deleted",
                extra={"current_status": entry.status},
            )
        for version in session.exec(
            select(LicenceTypeVersion).where(LicenceTypeVersion.code == code)
        ):
            session.delete(version)
        session.flush()
        session.delete(entry)
        self._audit.append(
            session,
            actor=actor,
            action="catalogue.delete",
            object_type="licence_type",
            object_id=code,
            detail={"version": entry.version},
        )

    def get(self, session: Session, code: str) -> LicenceType:
        entry = session.get(LicenceType, code)
        if entry is None:
            raise NotFound(f"未知的证照类型 / unknown licence type {code}", field="licence_type")
        return entry

    def list(
        self,
        session: Session,
        *,
        status: str | None = None,
        authority_code: str | None = None,
        service_item: str | None = None,
    ) -> list[LicenceType]:
        query = select(LicenceType).order_by(col(LicenceType.code))
        if status:
            query = query.where(LicenceType.status == status)
        if authority_code:
            query = query.where(LicenceType.authority_code == authority_code.upper())
        entries = list(session.exec(query))
        if service_item:  # a JSON list; the catalogue is small enough to filter here
            entries = [e for e in entries if service_item in e.service_items]
        return entries

    def history(self, session: Session, code: str) -> builtins.list[LicenceTypeVersion]:
        self.get(session, code)
        return list(
            session.exec(
                select(LicenceTypeVersion)
                .where(LicenceTypeVersion.code == code)
                .order_by(col(LicenceTypeVersion.version))
            )
        )

    def version(self, session: Session, code: str, version: int) -> LicenceType:
        """The entry as it stood at ``version`` (the rules a licence was issued under)."""
        row = session.get(LicenceTypeVersion, (code, version))
        if row is None:
            raise NotFound(
                f"证照类型 {code} 没有第 {version} 版 / type {code} has no version {version}",
                field="version",
            )
        return LicenceType.model_validate(
            {**row.definition, "version": version, "status": TypeStatus.ACTIVE.value}
        )

    def check_issuer(self, entry: LicenceType, department_code: str) -> None:
        if entry.status != TypeStatus.ACTIVE.value:
            raise Conflict(
                f"证照类型已停用 / licence type {entry.code} is withdrawn",
                field="licence_type",
                extra={"current_status": entry.status},
            )
        if department_code in issuers(entry):
            return
        if entry.issuer_codes:
            raise Forbidden(
                f"该部门无权签发此类证照 / department {department_code} may not issue {entry.code}",
                extra={"issuers": issuers(entry)},
            )
        raise Forbidden(
            f"证照类型 {entry.code} 未列明签发部门，只由定义机构 {entry.authority_code} 签发 / "
            f"licence type {entry.code} lists no issuers: only its defining authority "
            f"{entry.authority_code} issues it",
            extra={"issuers": issuers(entry)},
        )

    def _own(self, session: Session, code: str, department_code: str | None) -> LicenceType:
        entry = self.get(session, code)
        if department_code is not None and entry.authority_code != department_code:
            raise Forbidden(
                "只有定义机构可以修改证照类型 / only the defining authority may change this type"
            )
        return entry

    def _record_version(self, session: Session, entry: LicenceType, actor: str) -> None:
        session.add(
            LicenceTypeVersion(
                code=entry.code,
                version=entry.version,
                definition=definition(entry),
                created_at=self._clock.now(),
                actor=actor[:128],
            )
        )

    @staticmethod
    def _has_licences(session: Session, code: str) -> bool:
        count = session.exec(
            select(func.count()).select_from(Licence).where(Licence.type_code == code)
        ).one()
        return bool(count)


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
