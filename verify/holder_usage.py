"""Who used a holder's licences, and when: the holder's usage log and a licence's verifications.

The usage log merges two records kept for different readers: department pulls
(``licences.pulls``: under a grant, or with the holder's use authorisation code — ``what`` is
then ``code``, and the entry names the department and the service item) and verifications (``verify.log``) of the holder's licences, newest first,
cut by an opaque keyset cursor over ``(time, kind, id)`` so a page never repeats or skips an
entry, whatever arrives meanwhile. Each kind is read by its own indexed keyset query (the
verifications of the holder's licences through a subquery, never a list of identifiers), and
the two pages are merged here. It sits in ``verify`` because it reads the verification log;
each method opens its own read and returns frozen views or loaded rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.db import as_utc, newest_first, reading
from core.errors import InvalidInput
from licences.grant_desk import department_names
from licences.grants import HolderKey, holder_row
from licences.models import Licence, LicenceType
from licences.presentation_desk import check_issuer
from licences.pulls import WHAT, LicencePull, pulls_of_holder
from licences.repository import licence_by_identifier
from seals.clients import ApiClient
from verify.log import CHANNELS, METHODS, VerificationLog, history

BY_CODE = "用证授权码 / authorisation code"  # a pull made with the holder's code
RANK = {"verification": 0, "pull": 1}  # order of two entries at the same instant
_MAX_ID = 2**31 - 1  # both logs have INTEGER ids
Position = tuple[datetime, int, int]  # (at, rank, id) of the last entry shown


@dataclass(frozen=True)
class UsageItem:
    """One use of a licence: a department's pull or a verification."""

    kind: Literal["pull", "verification"]
    at: datetime
    identifier: str
    who: str
    licence_type_name: str | None = None
    department: str | None = None
    department_name: str | None = None
    client_id: str | None = None
    client_name: str | None = None
    service_item: str | None = None
    business_number: str | None = None
    what: str | None = None
    what_label: str | None = None
    channel: str | None = None
    channel_label: str | None = None
    method: str | None = None
    method_label: str | None = None
    indication: str | None = None
    sub_indication: str | None = None


@dataclass(frozen=True)
class UsagePage:
    items: list[UsageItem]
    next_cursor: str | None = None


class UsageLog:
    """Reads of the usage and verification logs, one read each."""

    def __init__(self, *, engine: Engine) -> None:
        self._engine = engine

    def of_holder(self, holder: HolderKey, cursor: str | None, limit: int) -> UsagePage:
        """Pulls and verifications of the holder's licences, newest first (422 ``cursor`` for
        a cursor this service did not hand out)."""
        position = decode_cursor(cursor) if cursor else None
        with reading(self._engine) as session:
            return usage(session, holder, position, limit)

    def history(self, identifier: str, limit: int) -> list[VerificationLog]:
        """The newest verifications of one licence first (the holder-link page)."""
        with reading(self._engine) as session:
            return history(session, identifier, limit)

    def for_issuer(
        self, identifier: str, department_code: str, limit: int
    ) -> list[VerificationLog]:
        """The licence's verifications for its issuing department (403 for any other)."""
        with reading(self._engine) as session:
            check_issuer(licence_by_identifier(session, identifier), department_code)
            return history(session, identifier, limit)


def usage(session: Session, holder: HolderKey, position: Position | None, limit: int) -> UsagePage:
    """One page of the holder's usage log after ``position``."""
    row = holder_row(session, holder)
    if row is None or row.id is None:
        return UsagePage(items=[])
    pulls = pulls_of_holder(session, row.id, before=_bound(position, "pull"), limit=limit + 1)
    checks = _verifications(session, row.id, _bound(position, "verification"), limit + 1)
    merged: list[tuple[datetime, int, int, LicencePull | VerificationLog]] = [
        (p.at, RANK["pull"], p.id or 0, p) for p in pulls
    ] + [(v.at, RANK["verification"], v.id or 0, v) for v in checks]
    merged.sort(key=lambda item: item[:3], reverse=True)
    page = merged[:limit]
    shown = [entry for *_, entry in page]
    types = _type_names(session, {e.identifier or "" for e in shown})
    shown_pulls = [e for e in shown if isinstance(e, LicencePull)]
    departments = department_names(session, {p.department_code for p in shown_pulls})
    clients = _client_names(session, {p.client_id for p in shown_pulls})
    items = [
        _pull_item(e, types, departments, clients)
        if isinstance(e, LicencePull)
        else _verification_item(e, types)
        for e in shown
    ]
    next_cursor = encode_cursor(page[-1][:3]) if len(merged) > limit else None
    return UsagePage(items=items, next_cursor=next_cursor)


def _pull_item(
    pull: LicencePull,
    types: dict[str, str],
    departments: dict[str, str],
    clients: dict[str, str],
) -> UsageItem:
    """A pull under a grant (``what``: record or pdf), or one made with the holder's use
    authorisation code (``what``: code), which names the department and the service item."""
    name = departments.get(pull.department_code, pull.department_code)
    client = clients.get(pull.client_id, pull.client_id)
    by_code = pull.use_code is not None
    what = "code" if by_code else pull.what
    via = f" · {BY_CODE}" if by_code else ""
    return UsageItem(
        kind="pull",
        at=pull.at,
        identifier=pull.identifier,
        licence_type_name=types.get(pull.identifier),
        who=f"{name}（{pull.department_code}）{via} · 系统 / client {client}",
        department=pull.department_code,
        department_name=name,
        client_id=pull.client_id,
        client_name=client,
        service_item=pull.service_item,
        business_number=pull.business_number or None,
        what=what,
        what_label=BY_CODE if by_code else WHAT.get(pull.what, pull.what),
    )


def _verification_item(row: VerificationLog, types: dict[str, str]) -> UsageItem:
    channel = CHANNELS.get(row.channel, row.channel)
    return UsageItem(
        kind="verification",
        at=row.at,
        identifier=row.identifier or "",
        licence_type_name=types.get(row.identifier or ""),
        who=f"核验 / verification · {channel}",
        channel=row.channel,
        channel_label=channel,
        method=row.method,
        method_label=METHODS.get(row.method, row.method),
        indication=row.indication,
        sub_indication=row.sub_indication,
    )


def _verifications(
    session: Session,
    holder_id: int,
    before: tuple[datetime, int | None] | None,
    limit: int,
) -> list[VerificationLog]:
    """The verifications of the holder's licences, newest first, by keyset."""
    owned = select(Licence.identifier).where(Licence.holder_id == holder_id)
    query = select(VerificationLog).where(col(VerificationLog.identifier).in_(owned))
    return newest_first(session, query, VerificationLog.at, VerificationLog.id, before, limit)


def _bound(position: Position | None, kind: str) -> tuple[datetime, int | None] | None:
    """The ``(at, id)`` bound for one kind's rows that lie after ``position`` in the merged
    order (at, rank, id) descending: ``None`` for the id lets every row of that instant in."""
    if position is None:
        return None
    at, rank, last_id = position
    if RANK[kind] < rank:
        return at, None
    if RANK[kind] == rank:
        return at, last_id
    return at, 0


def encode_cursor(position: Position) -> str:
    at, rank, last_id = position
    raw = json.dumps([as_utc(at).isoformat(), rank, last_id]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; 422 on ``cursor`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, rank, last_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or rank not in RANK.values() or not isinstance(last_id, int):
            raise ValueError(cursor)
        if not 0 <= last_id <= _MAX_ID:
            raise ValueError(cursor)
        return moment.astimezone(UTC), int(rank), last_id
    except (ValueError, TypeError, OverflowError, binascii.Error) as exc:
        raise InvalidInput("翻页游标无效 / the cursor is not valid", field="cursor") from exc


def _type_names(session: Session, identifiers: set[str]) -> dict[str, str]:
    """The licence type name of each licence on the page."""
    wanted = identifiers - {""}
    if not wanted:
        return {}
    rows = session.exec(
        select(Licence.identifier, LicenceType.name)
        .join(LicenceType, col(LicenceType.code) == col(Licence.type_code))
        .where(col(Licence.identifier).in_(wanted))
    )
    return dict(rows.all())


def _client_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.exec(select(ApiClient.id, ApiClient.name).where(col(ApiClient.id).in_(ids)))
    return dict(rows.all())
