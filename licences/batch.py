"""Issuing many licences at once: one result per item, and a bad item never stops the good ones.

Each item goes through the normal issuance on its own (its own checks, render, seal and
transaction), so a bad item writes nothing and a good one is whole; with an Idempotency-Key each
item has its own scoped key, so retrying a batch after a crash replays the items that were
issued and issues only the rest. CSV rows for ``elicence issue --batch`` are read here too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from core.errors import ElicenceError, InvalidInput
from licences.issuance import IssuedLicence, IssueRequest
from licences.models import LicenceType

MAX_BATCH = 1000
FIELD_PREFIX = "field."
CSV_COLUMNS = (
    "licence_type",
    "holder_id",
    "holder_name",
    "holder_id_type",
    "valid_from",
    "valid_until",
    "department",
    "key",
)
CSV_REQUIRED = ("licence_type", "holder_id", "holder_name")
Item = IssueRequest | ElicenceError  # a row that could not be read is already its own result


@dataclass
class ItemResult:
    index: int  # 0-based position in the batch
    issued: IssuedLicence | None = None
    error: ElicenceError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def check_size(count: int) -> None:
    if not 1 <= count <= MAX_BATCH:
        raise InvalidInput(
            f"每批 1-{MAX_BATCH} 项，实为 {count} 项 / a batch has 1-{MAX_BATCH} items, not {count}",
            field="items",
        )


def issue_all(
    issue: Callable[[IssueRequest], IssuedLicence],
    items: Sequence[Item],
    progress: Callable[[int], None] | None = None,
) -> list[ItemResult]:
    """Issue every item in order; errors of the domain are results, anything else is a fault
    of the service and stops the batch (the items before it stand, and replay on retry)."""
    check_size(len(items))
    results: list[ItemResult] = []
    for index, item in enumerate(items):
        if isinstance(item, ElicenceError):
            results.append(ItemResult(index, error=item))
        else:
            try:
                results.append(ItemResult(index, issued=issue(item)))
            except ElicenceError as error:
                results.append(ItemResult(index, error=error))
        if progress is not None:
            progress(1)
    return results


def reason(error: ElicenceError) -> str:
    """What failures are grouped by: the field and the kind of error."""
    return f"{error.field or '-'} ({error.kind.value})"


def summary(
    results: Sequence[ItemResult], label: Callable[[int], int] = lambda i: i
) -> dict[str, Any]:
    """Counts, and the failures grouped by reason with the rows (``label`` numbers them) and
    one message as an example."""
    failures: dict[str, dict[str, Any]] = {}
    for result in results:
        if result.error is None:
            continue
        group = failures.setdefault(
            reason(result.error), {"count": 0, "rows": [], "example": result.error.message}
        )
        group["count"] += 1
        group["rows"].append(label(result.index))
    issued = [r for r in results if r.issued is not None]
    return {
        "total": len(results),
        "issued": sum(1 for r in issued if r.issued and not r.issued.replayed),
        "replayed": sum(1 for r in issued if r.issued and r.issued.replayed),
        "failed": sum(1 for r in results if r.error is not None),
        "failures_by_reason": dict(sorted(failures.items(), key=lambda kv: -kv[1]["count"])),
    }


def read_csv(
    text: str,
    *,
    entry_of: Callable[[str], LicenceType],
    department: str | None,
    actor: str,
    key_prefix: str | None,
) -> list[Item]:
    """Rows of a batch file (columns in README.md). A row that cannot be read becomes an error
    item; a file without the required columns is refused as a whole."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [h for h in header if h not in CSV_COLUMNS and not h.startswith(FIELD_PREFIX)]
    if missing or unknown:
        raise InvalidInput(
            f"CSV 表头缺少 {missing} 或含未知列 {unknown} / the CSV header misses {missing} or "
            f"has unknown columns {unknown}",
            field="header",
        )
    items: list[Item] = []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        try:
            items.append(_row(row, line, entry_of, department, actor, key_prefix))
        except ElicenceError as error:
            items.append(error)
    check_size(len(items))
    return items


def _row(
    row: dict[str, str],
    line: int,
    entry_of: Callable[[str], LicenceType],
    department: str | None,
    actor: str,
    key_prefix: str | None,
) -> IssueRequest:
    for column in CSV_REQUIRED:
        if not row.get(column):
            raise InvalidInput(f"缺少 {column} / {column} is empty", field=column)
    entry = entry_of(row["licence_type"])
    fields = {
        name.removeprefix(FIELD_PREFIX): value
        for name, value in row.items()
        if name.startswith(FIELD_PREFIX) and value != ""
    }
    key = row.get("key") or (f"{key_prefix}:{line}" if key_prefix else None)
    return IssueRequest(
        department_code=department or row.get("department") or default_issuer(entry),
        licence_type=entry.code,
        holder_id_type=row.get("holder_id_type") or entry.holder_id_type,
        holder_id=row["holder_id"],
        holder_name=row["holder_name"],
        fields=fields,
        valid_from=_date(row, "valid_from"),
        valid_until=_date(row, "valid_until"),
        idempotency_key=key,
        actor=actor,
        scope="batch",
    )


def default_issuer(entry: LicenceType) -> str:
    """Who issues when no department is named: the only permitted issuer, else the authority."""
    return entry.issuer_codes[0] if len(entry.issuer_codes) == 1 else entry.authority_code


def _date(row: dict[str, str], column: str) -> date | None:
    value = row.get(column)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{column} 须为 YYYY-MM-DD / {column} is YYYY-MM-DD", field=column
        ) from None
