"""Finding licences: by holder, type, status and issue date, a page at a time.

Pages are cut by keyset on (issued_at, identifier), newest first, never by OFFSET: a page costs
the same at the millionth licence as at the first, and licences issued while a client pages
through do not shift what it sees. The cursor is opaque to clients (base64url of the last row's
key). A department sees only the licences it issued; ``issuer_code`` None is the operator.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from core.clock import CHINA, china_today
from core.db import as_utc
from core.errors import InvalidInput
from licences.id_documents import identify, validate_holder_id
from licences.identifiers import validate_licence_type_code
from licences.legacy_records import LegacyLicence
from licences.models import Holder, Licence, LicenceStatus

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class LicenceQuery:
    issuer_code: str | None  # None: every department's (the operator)
    holder_id: str | None = None
    holder_id_type: str | None = None
    type_code: str | None = None
    status: str | None = None
    issued_from: date | None = None  # inclusive, a date in China
    issued_to: date | None = None  # inclusive
    original_number: str | None = None  # 原证照编号 of a converted licence (licences.legacy)
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT


@dataclass
class Page:
    items: list[tuple[Licence, Holder]]
    next_cursor: str | None


def encode_cursor(licence: Licence) -> str:
    raw = json.dumps([as_utc(licence.issued_at).isoformat(), licence.identifier])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        issued_at, identifier = json.loads(raw)
        return as_utc(datetime.fromisoformat(issued_at)), str(identifier)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidInput(
            "分页游标无效，请使用上一页返回的 next_cursor / invalid cursor; pass the next_cursor "
            "of the previous page",
            field="cursor",
        ) from None


def holder_number(holder_id: str, holder_id_type: str | None) -> str:
    """Check a holder ID by its type, or by its shape when no type is given, so a mistyped
    number is refused with the rule it breaks rather than found nowhere."""
    if holder_id_type is not None:
        return validate_holder_id(holder_id_type, holder_id)
    return identify(holder_id.strip().upper())[1]


def search(session: Session, query: LicenceQuery, now: datetime) -> Page:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidInput(f"limit 应为 1-{MAX_LIMIT} / limit is 1-{MAX_LIMIT}", field="limit")
    statement = select(Licence, Holder).join(Holder, col(Licence.holder_id) == col(Holder.id))
    if query.issuer_code is not None:
        statement = statement.where(Licence.issuer_code == query.issuer_code)
    if query.holder_id:
        number = holder_number(query.holder_id, query.holder_id_type)
        statement = statement.where(Holder.id_number == number)
        if query.holder_id_type:
            statement = statement.where(Holder.id_type == query.holder_id_type)
    if query.type_code:
        code = validate_licence_type_code(query.type_code, field="type")
        statement = statement.where(Licence.type_code == code)
    if query.status:
        statement = statement.where(_status_clause(query.status, china_today(now)))
    if query.original_number:
        converted = select(LegacyLicence.identifier).where(
            LegacyLicence.original_number == query.original_number.strip()
        )
        statement = statement.where(col(Licence.identifier).in_(converted))
    if query.issued_from:
        statement = statement.where(col(Licence.issued_at) >= _day_start(query.issued_from))
    if query.issued_to:
        statement = statement.where(
            col(Licence.issued_at) < _day_start(query.issued_to + timedelta(days=1))
        )
    if query.issued_from and query.issued_to and query.issued_to < query.issued_from:
        raise InvalidInput(
            "issued_to 早于 issued_from / issued_to is before issued_from", field="issued_to"
        )
    if query.cursor:
        after_at, after_id = decode_cursor(query.cursor)
        statement = statement.where(
            or_(
                col(Licence.issued_at) < after_at,
                and_(col(Licence.issued_at) == after_at, col(Licence.identifier) < after_id),
            )
        )
    statement = statement.order_by(
        col(Licence.issued_at).desc(), col(Licence.identifier).desc()
    ).limit(query.limit + 1)
    rows = [(licence, holder) for licence, holder in session.exec(statement)]
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return Page(rows, encode_cursor(rows[-1][0]) if more and rows else None)


def _status_clause(text: str, today: date):  # type: ignore[no-untyped-def]
    """``expired`` is computed, so ``valid`` and ``expired`` split the stored ``valid`` rows."""
    try:
        status = LicenceStatus.parse(text)
    except ValueError:
        names = ", ".join(s.value for s in LicenceStatus)
        raise InvalidInput(
            f"未知的证照状态 / unknown status {text!r} (one of {names})", field="status"
        ) from None
    stored_valid = col(Licence.status) == LicenceStatus.VALID.value
    if status is LicenceStatus.VALID:
        return and_(
            stored_valid,
            or_(col(Licence.valid_until).is_(None), col(Licence.valid_until) >= today),
        )
    if status is LicenceStatus.EXPIRED:
        return and_(stored_valid, col(Licence.valid_until) < today)
    return col(Licence.status) == status.value


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=CHINA).astimezone(UTC)
