"""Records from a department's earlier system (存量证照), read and checked before conversion.

A department moving to this service brings the licences its old system issued: each keeps its
original number (原证照编号) and dates, and becomes a licence of this domain with a GB/T 36904
identifier, rendered and sealed here (``licences.legacy_desk``). This module reads the records
— NDJSON (one JSON object a line) or CSV (the columns of ``CSV_COLUMNS`` and ``field.<name>``)
— one at a time, so a file of 100,000 rows is never held whole, and checks what can be checked
without the database: the dates against each other and against today in China, the status, the
original number. Each problem names its field; a row with one writes nothing and the rest of the
file goes on. See ``docs/legacy-conversion.md``.

The printed note (``note_overlay``) is drawn over the page ``licences.render`` lays out, through
its ``overlay`` hook, in the free band between the QR caption and the version line, so the
table's layout is not touched.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum
from typing import Any

from reportlab.pdfgen.canvas import Canvas

from core.errors import ElicenceError, InvalidInput
from licences import idempotency
from licences.models import LicenceStatus, LicenceType, ValidityRule
from licences.render import GREY, MM, PAGE_W, Overlay, text_width
from licences.validity import add_years, chinese_date

MAX_ORIGINAL_NUMBER = 64
MAX_REASON = 256  # as a status change's reason (licences.lifecycle)
FIELD_PREFIX = "field."
CSV_COLUMNS = (
    "original_number",
    "licence_type",
    "holder_id_type",
    "holder_id",
    "holder_name",
    "original_issue_date",
    "valid_from",
    "valid_until",
    "status",
    "status_reason",
)
REQUIRED = ("original_number", "licence_type", "holder_id", "holder_name", "original_issue_date")
# The statuses an earlier system may hand over. ``superseded`` and ``void`` belong to a version
# chain this service keeps itself; the old system's chain ends in the one licence converted.
STATUSES = (
    LicenceStatus.VALID,
    LicenceStatus.REVOKED,
    LicenceStatus.CANCELLED,
    LicenceStatus.SUSPENDED,
    LicenceStatus.EXPIRED,
)
NOTE_ZH = "存量证照转换件"
NOTE_EN = "converted from the department's earlier system"


class Outcome(str, Enum):
    CONVERTED = "converted"  # a new licence of this domain
    UNCHANGED = "unchanged"  # converted before, with the same content: nothing written
    CONFLICT = "conflict"  # converted before, but the record sent now differs
    REFUSED = "refused"  # a problem with the row (the error names the field); nothing written


@dataclass(frozen=True)
class LegacyRecord:
    """One checked record of the earlier system."""

    original_number: str
    licence_type: str
    holder_id_type: str | None  # None: the licence type's
    holder_id: str
    holder_name: str
    fields: dict[str, Any]
    original_issue_date: date
    valid_from: date  # the original issue date when not given
    valid_until: date | None
    status: LicenceStatus
    status_reason: str | None = None

    def digest(self) -> str:
        """What a later run compares: the record as sent, so any change is seen."""
        return idempotency.fingerprint(
            {
                "original_number": self.original_number,
                "licence_type": self.licence_type,
                "holder": [self.holder_id_type, self.holder_id, self.holder_name],
                "fields": self.fields,
                "dates": [self.original_issue_date, self.valid_from, self.valid_until],
                "status": [self.status.value, self.status_reason],
            }
        )


@dataclass(frozen=True)
class Row:
    """A row of the file: its number (1-based line for NDJSON, line for CSV) and the record,
    or the error that refuses it, with the original number when it could be read."""

    number: int
    record: LegacyRecord | None = None
    error: ElicenceError | None = None
    original_number: str | None = None


@dataclass
class RowReport:
    number: int
    original_number: str | None
    outcome: Outcome
    identifier: str | None = None
    error: ElicenceError | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "row": self.number,
            "original_number": self.original_number,
            "outcome": self.outcome.value,
            "identifier": self.identifier,
        }
        if self.error is not None:
            out["error"] = {
                "kind": self.error.kind.value,
                "field": self.error.field,
                "message": self.error.message,
            }
        return out


def _text(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} 须为字符串 / {name} must be a string", field=name)
    value = value.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{name} 含控制字符 / {name} has control characters", field=name)
    return value or None


def _date(raw: dict[str, Any], name: str) -> date | None:
    value = _text(raw, name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name} 须为 YYYY-MM-DD / {name} must be YYYY-MM-DD", field=name
        ) from None


def _status(raw: dict[str, Any]) -> LicenceStatus:
    text = _text(raw, "status") or LicenceStatus.VALID.value
    try:
        status = LicenceStatus.parse(text)
    except ValueError:
        status = None
    if status not in STATUSES:
        names = ", ".join(s.value for s in STATUSES)
        raise InvalidInput(
            f"未知的证照状态 {text!r}，应为 {names} / unknown status {text!r}; one of {names}",
            field="status",
        )
    return status


def check(raw: Any, today: date) -> LegacyRecord:
    """A record from one decoded row, or the first problem with it (its field named). ``today``
    is the date in China (``core.clock.china_today``)."""
    if not isinstance(raw, dict):
        raise InvalidInput("每行须为 JSON 对象 / each row must be a JSON object", field="row")
    values = {name: _text(raw, name) for name in REQUIRED if name != "original_issue_date"}
    for name in REQUIRED:
        if name != "original_issue_date" and values[name] is None:
            raise InvalidInput(f"缺少 {name} / {name} is missing", field=name)
    number = values["original_number"] or ""
    if len(number) > MAX_ORIGINAL_NUMBER:
        raise InvalidInput(
            f"原证照编号超过 {MAX_ORIGINAL_NUMBER} 字符 / original_number is longer than "
            f"{MAX_ORIGINAL_NUMBER} characters",
            field="original_number",
        )
    issued = _date(raw, "original_issue_date")
    if issued is None:
        raise InvalidInput(
            "缺少 original_issue_date / original_issue_date is missing", field="original_issue_date"
        )
    if issued > today:
        raise InvalidInput(
            f"原发证日期 {issued} 晚于今天（北京时间 {today}）/ original_issue_date {issued} is "
            f"after today in China ({today})",
            field="original_issue_date",
        )
    valid_from = _date(raw, "valid_from") or issued
    valid_until = _date(raw, "valid_until")
    if valid_until is not None and valid_until < valid_from:
        raise InvalidInput(
            f"有效期截止 {valid_until} 早于起始 {valid_from} / valid_until {valid_until} is "
            f"before valid_from {valid_from}",
            field="valid_until",
        )
    status = _status(raw)
    if status is LicenceStatus.EXPIRED and (valid_until is None or valid_until >= today):
        raise InvalidInput(
            "状态为过期，但有效期未届满 / status is expired but valid_until has not passed",
            field="status",
        )
    reason = _text(raw, "status_reason")
    if reason is not None and len(reason) > MAX_REASON:
        raise InvalidInput(
            f"状态原因超过 {MAX_REASON} 字符 / status_reason is longer than {MAX_REASON} characters",
            field="status_reason",
        )
    fields = raw.get("fields", {})
    if not isinstance(fields, dict):
        raise InvalidInput("fields 须为对象 / fields must be an object", field="fields")
    return LegacyRecord(
        original_number=number,
        licence_type=values["licence_type"] or "",
        holder_id_type=_text(raw, "holder_id_type"),
        holder_id=values["holder_id"] or "",
        holder_name=values["holder_name"] or "",
        fields=fields,
        original_issue_date=issued,
        valid_from=valid_from,
        valid_until=valid_until,
        status=status,
        status_reason=reason,
    )


def validity(entry: LicenceType, record: LegacyRecord) -> tuple[date, date | None]:
    """The dates by the type's rule, as ``licences.validity`` but without refusing a term that
    has ended: an expired licence is converted with its dates and verifies EXPIRED."""
    if entry.validity_rule == ValidityRule.INDEFINITE.value:
        if record.valid_until is not None:
            raise InvalidInput(
                "此类证照长期有效，不设有效期截止 / this licence type is valid indefinitely; "
                "leave valid_until empty",
                field="valid_until",
            )
        return record.valid_from, None
    end = record.valid_until
    if end is None and entry.validity_years:
        end = add_years(record.valid_from, entry.validity_years) - timedelta(days=1)
    if end is None:
        raise InvalidInput(
            "此类证照有固定期限，须给出有效期截止 / this licence type has a fixed term; "
            "give valid_until",
            field="valid_until",
        )
    return record.valid_from, end


def _row_of(number: int, raw: Any, today: date) -> Row:
    original = raw.get("original_number") if isinstance(raw, dict) else None
    original = original.strip() if isinstance(original, str) else None
    try:
        return Row(number, record=check(raw, today), original_number=original)
    except ElicenceError as error:
        return Row(number, error=error, original_number=original)


def read_ndjson(lines: Iterable[str], today: date) -> Iterator[Row]:
    """One row per non-empty line; a line that is not JSON is refused on its own."""
    for number, line in enumerate(lines, start=1):
        text = line.strip().removeprefix("\ufeff")
        if not text:
            continue
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            error = InvalidInput(f"不是 JSON / not JSON: {exc.msg}", field="row")
            yield Row(number, error=error)
            continue
        except RecursionError:
            yield Row(
                number, error=InvalidInput("JSON 嵌套过深 / JSON nested too deep", field="row")
            )
            continue
        yield _row_of(number, raw, today)


def read_csv(lines: Iterable[str], today: date) -> Iterator[Row]:
    """One row per CSV record (numbered by its line, the header being line 1); a header
    without the required columns or with unknown ones refuses the file as a whole."""
    reader = csv.DictReader(line.removeprefix("\ufeff") for line in lines)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [h for h in header if h not in CSV_COLUMNS and not h.startswith(FIELD_PREFIX)]
    if missing or unknown:
        raise InvalidInput(
            f"CSV 表头缺少 {missing} 或含未知列 {unknown} / the CSV header misses {missing} or "
            f"has unknown columns {unknown}",
            field="header",
        )
    for raw in reader:
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        fields = {
            name.removeprefix(FIELD_PREFIX): value
            for name, value in row.items()
            if name.startswith(FIELD_PREFIX) and value != ""
        }
        plain: dict[str, Any] = {k: v for k, v in row.items() if not k.startswith(FIELD_PREFIX)}
        yield _row_of(reader.line_num, {**plain, "fields": fields}, today)


def note_lines(original_number: str, issued: date, converted: date) -> tuple[str, str]:
    """The two lines the page prints: what it is, then the original number and dates."""
    return (
        f"{NOTE_ZH} / {NOTE_EN}",
        f"原证照编号 Original No. {original_number} · 原发证日期 Originally issued "
        f"{chinese_date(issued)} · 转换日期 Converted {chinese_date(converted)}",
    )


def note_overlay(original_number: str, issued: date, converted: date) -> Overlay:
    """The note drawn over the finished page, centred in the band above the version line
    (y 19-23 mm: below the QR caption at 26 mm, above "版本 Version" at 16.5 mm), shrunk to the
    content width when a long number needs it.

    The page layout's owners: if the foot of ``licences.render`` (or a type's template from
    ``licences.layout``) uses this band, move ``NOTE_BASELINES`` with it."""
    lines = note_lines(original_number, issued, converted)

    def draw(canvas: Canvas, regular: str, bold: str) -> None:
        # A type's page template may have a page size of its own (licences.layout).
        page_w = float(getattr(canvas, "_pagesize", (PAGE_W, 0))[0])
        width = page_w - 48 * MM
        for text, baseline, font, size in zip(
            lines, NOTE_BASELINES, (bold, regular), (8.0, 6.5), strict=True
        ):
            size = min(size, width / max(text_width(text, font, 1), 1))
            canvas.setFont(font, size)
            canvas.setFillColor(GREY)
            canvas.drawCentredString(page_w / 2, baseline, text)

    return draw


NOTE_BASELINES = (22.6 * MM, 19.6 * MM)


def read(text: str, *, csv_format: bool, today: date) -> Iterator[Row]:
    """Rows of a whole body: CSV or NDJSON."""
    lines = text.splitlines(keepends=True)
    return read_csv(lines, today) if csv_format else read_ndjson(lines, today)


def tally(reports: Iterable[RowReport]) -> dict[str, int]:
    """How many rows had each outcome, and the total."""
    counts = {outcome.value: 0 for outcome in Outcome}
    total = 0
    for report in reports:
        counts[report.outcome.value] += 1
        total += 1
    return {"total": total, **counts}
