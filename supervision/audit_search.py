"""The audit chain as a supervision office searches it (留痕检索).

An office sees only entries that concern the departments under its division: entries about a
licence one of them issued, and entries whose actor is one of them (``department:CODE/...``) or
whose object is one of them, one of their seals or API clients. Filters: a department, an
action, a licence identifier, a holder (by ID number: the holder's licences are found, then
their entries), a range of China dates. Pages are keyset pages on the chain's sequence number,
newest first, so a page costs the same at the millionth entry as at the first.

What leaves is masked (``licences.masking``): a person's ID number or name is never shown whole,
neither in the entry's detail nor in the echo of the search itself — an ID number given as the
search term comes back masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, cast, literal, or_
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from core.audit import AuditEntry
from core.clock import CHINA
from core.db import reading
from core.errors import InvalidInput
from licences.id_documents import identify
from licences.masking import mask_id, mask_name, mask_typed_id
from licences.models import Holder, Licence
from seals.clients import ApiClient
from seals.models import Department, Seal
from supervision.divisions import departments_under
from supervision.figures import Office, check_department, office_of

MAX_LIMIT = 200
# A resident ID (GB 11643: 18 characters, or the old 15 digits) wherever it appears in text.
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])([0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")
# Numbers of the other documents a person may hold (licences/id_documents.py): passports, Chinese
# (E/G) or foreign (country:number), 港澳 permits, the old permanent residence card. A 台湾
# permit's 8 digits are not looked for in free text: they cannot be told from other numbers.
_OTHER_DOCUMENT = re.compile(
    r"(?<![0-9A-Za-z:])([EG][0-9]{8}|E[A-Z][0-9]{7}|[HM][0-9]{8}(?:[0-9]{2})?"
    r"|[A-Z]{3}:[0-9A-Z]{5,20}|[A-Z]{3}[0-9]{12})(?![0-9A-Za-z])"
)
# Detail members that hold a person's name; masked whatever the entry (an organisation's name
# masked too costs a supervisor little and never leaks a person's).
_NAME_KEYS = frozenset({"holder_name", "holder", "legal_representative", "name_of_holder"})
_HOLDER_NAME_KEYS = frozenset({"from", "to", "name"})


@dataclass(frozen=True)
class AuditQuery:
    """One search; ``None`` means no filter. ``holder_id`` is an ID number (never shown whole)."""

    department: str | None = None
    action: str | None = None
    licence: str | None = None
    holder_id: str | None = None
    date_from: date | None = None  # China dates, both inclusive
    date_to: date | None = None
    before: int | None = None  # the sequence number of the last entry of the previous page
    limit: int = 50

    def echo(self) -> dict[str, Any]:
        """The search as shown back: the holder's ID number masked."""
        return {
            "department": self.department,
            "action": self.action,
            "licence": self.licence,
            "holder": mask_typed_id(self.holder_id) if self.holder_id else None,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
        }


@dataclass(frozen=True)
class EntryView:
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    outcome: str
    detail: dict[str, Any]  # masked


@dataclass(frozen=True)
class AuditPage:
    entries: tuple[EntryView, ...]
    next_before: int | None  # pass as ``before`` for the next (older) page; None: the last page


def mask_text(text: str) -> str:
    """Every resident ID number in ``text`` masked to its region and last four characters (the
    residence permit and 2023 permanent residence card share its form), and every number of a
    passport, 港澳 permit or old permanent residence card by the rule of its document."""
    text = _RESIDENT_ID.sub(lambda m: mask_id(m.group(1), True), text)
    return _OTHER_DOCUMENT.sub(lambda m: mask_typed_id(m.group(1)), text)


def mask_detail(value: Any, *, key: str = "", holder_entry: bool = False) -> Any:
    """A detail with people's names and ID numbers masked, recursively."""
    if isinstance(value, dict):
        return {k: mask_detail(v, key=str(k), holder_entry=holder_entry) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_detail(v, key=key, holder_entry=holder_entry) for v in value]
    if isinstance(value, str):
        if key in _NAME_KEYS or (holder_entry and key in _HOLDER_NAME_KEYS):
            return mask_name(mask_text(value), True)
        return mask_text(value)
    return value


def view(entry: AuditEntry) -> EntryView:
    holder_entry = entry.object_type == "holder"
    return EntryView(
        seq=entry.seq,
        at=entry.at,
        actor=mask_text(entry.actor),
        action=entry.action,
        object_type=entry.object_type,
        object_id=mask_text(entry.object_id),
        outcome=entry.outcome,
        detail=mask_detail(entry.detail or {}, holder_entry=holder_entry),
    )


def _china_instant(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=CHINA)


def _concerning(codes: list[str]) -> ColumnElement[bool]:
    """Entries about these departments: their licences, themselves, their seals and clients,
    or acted by them. Subqueries, so no list of licence identifiers is carried."""
    licences = select(Licence.identifier).where(col(Licence.issuer_code).in_(codes))
    seals = select(Seal.code).where(col(Seal.department_code).in_(codes))
    clients = select(ApiClient.id).where(col(ApiClient.department_code).in_(codes))
    return or_(
        col(AuditEntry.object_id).in_(licences),
        col(AuditEntry.object_id).in_(codes),
        col(AuditEntry.object_id).in_(seals),
        col(AuditEntry.object_id).in_(clients),
        *(col(AuditEntry.actor).startswith(f"department:{code}/") for code in codes),
    )


def search(session: Session, office: Office, query: AuditQuery) -> AuditPage:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidInput(
            f"limit 须在 1 到 {MAX_LIMIT} 之间 / limit must be 1..{MAX_LIMIT}", field="limit"
        )
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise InvalidInput("起始日期晚于截止日期 / from is after to", field="from")
    if query.department is not None:
        check_department(session, office, query.department)
        codes = [query.department]
    else:
        codes = departments_under(session, office.division_code)
    statement = select(AuditEntry).where(_concerning(codes))
    if query.action:
        statement = statement.where(AuditEntry.action == query.action)
    if query.licence:
        statement = statement.where(AuditEntry.object_id == query.licence)
    if query.holder_id:
        # Any holder document's number, in its stored spelling (a typo is refused by its rule).
        number = identify(query.holder_id.strip())[1]
        holders = select(Holder.id).where(Holder.id_number == number)
        licences = select(Licence.identifier).where(col(Licence.holder_id).in_(holders))
        # and the holder's own record (a registered name corrected: ``holder:<row id>``)
        records = select(literal("holder:") + cast(col(Holder.id), String)).where(
            Holder.id_number == number
        )
        statement = statement.where(
            or_(col(AuditEntry.object_id).in_(licences), col(AuditEntry.object_id).in_(records))
        )
    if query.date_from:
        statement = statement.where(col(AuditEntry.at) >= _china_instant(query.date_from))
    if query.date_to:
        end = _china_instant(query.date_to + timedelta(days=1))
        statement = statement.where(col(AuditEntry.at) < end)
    if query.before is not None:
        statement = statement.where(col(AuditEntry.seq) < query.before)
    rows = session.exec(statement.order_by(col(AuditEntry.seq).desc()).limit(query.limit + 1))
    found = list(rows)
    more = len(found) > query.limit
    entries = tuple(view(e) for e in found[: query.limit])
    return AuditPage(entries, entries[-1].seq if more and entries else None)


class AuditSearch:
    """What the supervision routes call: one reading transaction per page."""

    def __init__(self, *, engine: Engine) -> None:
        self._engine = engine

    def search(self, office_code: str, query: AuditQuery) -> AuditPage:
        with reading(self._engine) as session:
            return search(session, office_of(session, office_code), query)

    def department_names(self, office_code: str) -> list[tuple[str, str]]:
        """(code, name) of the departments under the office, for the search form."""
        with reading(self._engine) as session:
            office = office_of(session, office_code)
            codes = departments_under(session, office.division_code)
            rows = session.exec(
                select(Department.code, Department.name)
                .where(col(Department.code).in_(codes))
                .order_by(col(Department.code))
            )
            return [(c, n) for c, n in rows if c != office.code]
