"""The exchange format: a licence as a JSON object with the national field names (证照标识,
证照类型代码, 持证主体, 照面信息 ...), so other licence repositories can read what we export and
we can take in what they export. ``docs/exchange-format.md`` is the reference.

Import is issuance: an imported record becomes a new licence of ours, checked against our
catalogue, rendered and sealed by us through the normal issuance path. Nothing of the source's
identifier, seal or status is trusted; the source identifier only makes a repeated import of the
same record replay instead of issuing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from core.errors import ElicenceError, Forbidden, InvalidInput
from licences import batch
from licences.catalogue import Catalogue
from licences.id_documents import DOCUMENTS
from licences.identifiers import validate_uscc
from licences.issuance import IssuedLicence, IssueRequest
from licences.models import Licence, LicenceStatus, LicenceType
from licences.repository import LicenceRecord, china_today, effective_status, full_record

FORMAT = "elicence-exchange/1"
ID_TYPE_NAMES = {code: document.zh for code, document in DOCUMENTS.items()}
# Our field names (as errors name them) in the national vocabulary, for import errors.
NATIONAL_NAMES = {
    "licence_type": "证照类型代码",
    "holder.id": "持证主体代码",
    "holder.id_type": "持证主体代码类型",
    "holder.name": "持证主体",
    "valid_from": "有效期起始",
    "valid_until": "有效期截止",
    "fields": "照面信息",
    "department": "证照颁发机构代码",
}
INDEFINITE = ("长期", "长期有效", "indefinite")


def export_record(
    record: LicenceRecord, entry: LicenceType, *, status: LicenceStatus, verify_url: str
) -> dict[str, Any]:
    """One licence; ``entry`` is its type as of the version it was issued under, whose field
    titles name the 照面信息 items."""
    licence = record.licence
    properties: dict[str, Any] = entry.field_schema.get("properties", {})
    face = [
        {"字段": name, "名称": str(properties.get(name, {}).get("title", name)), "值": value}
        for name, value in sorted(
            licence.fields.items(),
            key=lambda item: list(properties).index(item[0]) if item[0] in properties else 999,
        )
    ]
    return {
        "证照标识": licence.identifier,
        "证照类型代码": licence.type_code,
        "证照类型名称": record.licence_type.name,
        "证照类型版本": licence.type_version,
        "证照颁发机构": record.issuer.name,
        "证照颁发机构代码": record.issuer.code,
        "持证主体": record.holder.name,
        "持证主体代码": record.holder.id_number,
        "持证主体代码类型": record.holder.id_type,
        "持证主体代码类型名称": ID_TYPE_NAMES.get(record.holder.id_type, record.holder.id_type),
        "发证日期": china_today(licence.issued_at).isoformat(),
        "有效期起始": licence.valid_from.isoformat(),
        "有效期截止": licence.valid_until.isoformat() if licence.valid_until else None,
        "证照状态": status.zh,
        "证照状态代码": status.value,
        "状态原因": licence.status_reason,
        "证照版本": f"{licence.version:03d}",
        "前一版本": licence.previous,
        "后续版本": licence.superseded_by,
        "照面信息": face,
        "印章编码": licence.seal_code,
        "文件摘要": {"算法": "SHA-256", "值": licence.sha256},
        "核验地址": verify_url,
    }


class Exporter:
    """Exports records from one session, reading each catalogue version once."""

    def __init__(
        self,
        session: Session,
        catalogue: Catalogue,
        verify_url: Callable[[str], str],
        now: datetime,
    ) -> None:
        self._session = session
        self._catalogue = catalogue
        self._verify_url = verify_url
        self._today = china_today(now)
        self._types: dict[tuple[str, int], LicenceType] = {}

    def record(self, licence: Licence) -> dict[str, Any]:
        version = (licence.type_code, licence.type_version)
        if version not in self._types:
            self._types[version] = self._catalogue.version(self._session, *version)
        return export_record(
            full_record(self._session, licence),
            self._types[version],
            status=effective_status(licence, self._today),
            verify_url=self._verify_url(licence.verify_code),
        )


def export_document(
    records: list[dict[str, Any]], *, exported_at: datetime, next_cursor: str | None = None
) -> dict[str, Any]:
    return {
        "格式": FORMAT,
        "导出时间": exported_at.isoformat(),
        "证照": records,
        "下一页": next_cursor,
    }


def records_of(document: Any) -> list[dict[str, Any]]:
    """The records in an import file: one record, a list of records, or an export document."""
    if isinstance(document, dict) and "证照" in document:
        document = document["证照"]
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
        raise InvalidInput(
            "导入文件应为证照对象、证照数组或导出文档 / an import file is a record, a list of "
            "records or an export document",
            field="证照",
        )
    return document


@dataclass(frozen=True)
class ImportRecord:
    """A source record turned into our issuance request, plus the key that makes it once."""

    request: IssueRequest
    source_identifier: str | None


def import_request(
    record: dict[str, Any],
    entry_of: Callable[[str], LicenceType],
    *,
    department_code: str | None,
    actor: str,
    request_id: str | None = None,
) -> ImportRecord:
    """``entry_of(code)`` gives our catalogue entry (it maps 照面信息 names to fields);
    ``department_code`` is the importing department, None for the operator, who imports in the
    name of the record's issuer."""
    issuer = _text(record, "证照颁发机构代码", required=department_code is None)
    if issuer:
        issuer = validate_uscc(issuer, field="证照颁发机构代码")
    if department_code is not None and issuer and issuer != department_code:
        raise Forbidden(
            "只能导入本部门颁发的证照 / a department imports only the licences it issued",
            field="证照颁发机构代码",
        )
    department = department_code or issuer
    status = _text(record, "证照状态", required=False)
    if status:
        try:
            parsed = LicenceStatus.parse(status)
        except ValueError:
            parsed = None
        if parsed is not LicenceStatus.VALID:
            raise InvalidInput(
                f"只导入有效的证照，此记录为 {status} / only valid licences are imported",
                field="证照状态",
            )
    type_code = _text(record, "证照类型代码")
    entry = entry_of(type_code)
    id_type = _text(record, "持证主体代码类型", required=False) or entry.holder_id_type
    source = _text(record, "证照标识", required=False) or None
    return ImportRecord(
        IssueRequest(
            department_code=department,
            licence_type=type_code,
            holder_id_type=id_type,
            holder_id=_text(record, "持证主体代码"),
            holder_name=_text(record, "持证主体"),
            fields=_face(record.get("照面信息"), entry),
            valid_from=_date(record, "有效期起始"),
            valid_until=_date(record, "有效期截止"),
            idempotency_key=source,
            actor=actor,
            request_id=request_id,
            scope="import",
        ),
        source,
    )


def import_items(
    records: list[dict[str, Any]],
    entry_of: Callable[[str], LicenceType],
    *,
    department_code: str | None,
    actor: str,
    request_id: str | None = None,
    key: str | None = None,
) -> list[batch.Item]:
    """Each record as an issuance request, or as the error that stops it. A record without a
    证照标识 is keyed by ``key`` (the caller's Idempotency-Key) and its position."""
    batch.check_size(len(records))
    items: list[batch.Item] = []
    for index, record in enumerate(records):
        try:
            imported = import_request(
                record,
                entry_of,
                department_code=department_code,
                actor=actor,
                request_id=request_id,
            )
        except ElicenceError as error:
            items.append(national_error(error))
            continue
        item = imported.request
        if imported.source_identifier is None:
            item = replace(item, idempotency_key=key, scope=f"import#{index}")
        items.append(item)
    return items


def import_all(
    issue: Callable[[IssueRequest], IssuedLicence], items: list[batch.Item]
) -> list[batch.ItemResult]:
    """Issue the imported records; errors name fields as the exchange format does."""

    def issue_one(item: IssueRequest) -> IssuedLicence:
        try:
            return issue(item)
        except ElicenceError as error:
            raise national_error(error) from None

    return batch.issue_all(issue_one, items)


def national_error(error: ElicenceError) -> ElicenceError:
    """The same error with the field named as the exchange format names it."""
    if error.field is None:
        return error
    head, _, rest = error.field.partition(".")
    name = NATIONAL_NAMES.get(error.field) or (
        f"照面信息.{rest}" if head == "fields" and rest else None
    )
    if name is not None:
        error.field = name
    return error


def _text(record: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = record.get(name)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"缺少 {name} / {name} is required", field=name)
        return ""
    if not isinstance(value, str | int):
        raise InvalidInput(f"{name} 应为字符串 / {name} must be a string", field=name)
    return str(value).strip()


def _date(record: dict[str, Any], name: str) -> date | None:
    text = _text(record, name, required=False)
    if not text or text in INDEFINITE:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} 应为 YYYY-MM-DD / {name} is YYYY-MM-DD", field=name) from None


def _face(face: Any, entry: LicenceType) -> dict[str, Any]:
    """照面信息 as an object keyed by field name, or as a list of items naming the field
    (字段) or its printed title (名称)."""
    if isinstance(face, dict):
        return dict(face)
    if not isinstance(face, list):
        raise InvalidInput(
            "照面信息应为对象或数组 / 照面信息 is an object or a list", field="照面信息"
        )
    by_title = {
        str(spec.get("title")): name for name, spec in entry.field_schema["properties"].items()
    }
    fields: dict[str, Any] = {}
    for index, item in enumerate(face):
        if not isinstance(item, dict) or "值" not in item:
            raise InvalidInput(
                f"照面信息第 {index + 1} 项应有 值 / item {index + 1} needs 值",
                field=f"照面信息[{index}]",
            )
        name = item.get("字段") or by_title.get(str(item.get("名称")))
        if not name:
            raise InvalidInput(
                f"照面信息第 {index + 1} 项的字段未知 / item {index + 1} names no field of this type",
                field=f"照面信息[{index}]",
            )
        fields[str(name)] = item["值"]
    return fields
