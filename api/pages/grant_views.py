"""What the signed-in holder sees of their grants and of who used their licences.

Shared by the holder API and the ``/me/grants`` and ``/me/usage`` pages. The usage log merges
two records kept for different readers: department pulls (``licences.pulls``) and verifications
(``verify.log``) of the holder's licences, newest first, cut by a keyset cursor over
``(time, kind, id)`` so a page never repeats or skips an entry, whatever arrives meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from core.db import as_utc, newest_first
from core.errors import InvalidInput
from licences.catalogue import fields_for_service_item
from licences.grants import HolderKey, LicenceGrant, grant_status, holder_row
from licences.models import Licence, LicenceStatus, LicenceType
from licences.pulls import WHAT, LicencePull, pulls_of_holder
from licences.repository import effective_status
from seals.clients import ApiClient
from seals.models import Department
from verify.log import CHANNELS, METHODS, VerificationLog

RANK = {"verification": 0, "pull": 1}  # order of two entries at the same instant
_MAX_ID = 2**31 - 1  # both logs have INTEGER ids


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identifier: str = Field(min_length=1, max_length=96, description="证照标识 / licence")
    department: str = Field(
        min_length=1, max_length=32, description="获授权部门的统一社会信用代码 / department"
    )
    service_item: str = Field(min_length=1, max_length=64, description="事项编码 / service item")
    business_number: str = Field(
        min_length=1, max_length=64, description="办件编号（字母、数字、-）/ business number"
    )
    valid_until: date = Field(description="授权最后一天（北京时间），最长一年 / last day, ≤ 1 year")


class SharedField(BaseModel):
    name: str
    title: str


class GrantOut(BaseModel):
    id: str
    identifier: str
    licence_type: str
    licence_type_name: str
    department: str
    department_name: str
    service_item: str
    business_number: str
    fields: list[SharedField] = Field(description="该事项可得的字段 / the fields it shares")
    valid_until: date
    created_at: datetime
    withdrawn_at: datetime | None = None
    status: Literal["active", "withdrawn", "expired"]
    status_label: str


class GrantsOut(BaseModel):
    items: list[GrantOut]


class UsageEntry(BaseModel):
    kind: Literal["pull", "verification"]
    at: datetime
    identifier: str
    licence_type_name: str | None = None
    who: str = Field(description="使用者 / who used the licence")
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


class UsageOut(BaseModel):
    items: list[UsageEntry]
    next_cursor: str | None = None


def grant_outs(session: Session, grants: list[LicenceGrant], today: date) -> list[GrantOut]:
    types = _types_of(session, [g.identifier for g in grants])
    names = _department_names(session, {g.department_code for g in grants})
    out = []
    for grant in grants:
        entry = types.get(grant.identifier)
        properties = entry.field_schema["properties"] if entry else {}
        status = grant_status(grant, today)
        out.append(
            GrantOut(
                id=grant.id,
                identifier=grant.identifier,
                licence_type=entry.code if entry else "",
                licence_type_name=entry.name if entry else "",
                department=grant.department_code,
                department_name=names.get(grant.department_code, grant.department_code),
                service_item=grant.service_item,
                business_number=grant.business_number,
                fields=[
                    SharedField(name=n, title=str(properties[n].get("title", n)))
                    for n in (fields_for_service_item(entry, grant.service_item) if entry else [])
                ],
                valid_until=grant.valid_until,
                created_at=as_utc(grant.created_at),
                withdrawn_at=as_utc(grant.withdrawn_at) if grant.withdrawn_at else None,
                status=status.value,
                status_label=status.label,
            )
        )
    return out


def usage(session: Session, holder: HolderKey, cursor: str | None, limit: int) -> UsageOut:
    """Pulls and verifications of the holder's licences, newest first."""
    position = _decode(cursor) if cursor else None
    row = holder_row(session, holder)
    if row is None or row.id is None:
        return UsageOut(items=[])
    licences = dict(
        session.exec(
            select(Licence.identifier, LicenceType.name)
            .join(LicenceType, col(LicenceType.code) == col(Licence.type_code))
            .where(Licence.holder_id == row.id)
        ).all()
    )
    pulls = pulls_of_holder(session, row.id, before=_bound(position, "pull"), limit=limit + 1)
    checks = _verifications(session, list(licences), _bound(position, "verification"), limit + 1)
    merged: list[tuple[datetime, int, int, LicencePull | VerificationLog]] = [
        (p.at, RANK["pull"], p.id or 0, p) for p in pulls
    ] + [(v.at, RANK["verification"], v.id or 0, v) for v in checks]
    merged.sort(key=lambda item: item[:3], reverse=True)
    page = merged[:limit]
    departments = _department_names(session, {p.department_code for p in pulls})
    clients = _client_names(session, {p.client_id for p in pulls})
    items = [
        _pull_entry(e, licences, departments, clients)
        if isinstance(e, LicencePull)
        else _verification_entry(e, licences)
        for *_, e in page
    ]
    next_cursor = _encode(page[-1][:3]) if len(merged) > limit else None
    return UsageOut(items=items, next_cursor=next_cursor)


@dataclass(frozen=True)
class Target:
    """One choice of the grant form: a current licence of the holder and one of its type's
    service items, with the fields that item would share."""

    value: str  # "<identifier> <service item>"
    label: str


def grant_targets(session: Session, holder: HolderKey, today: date) -> list[Target]:
    row = holder_row(session, holder)
    if row is None:
        return []
    targets = []
    for licence, entry in session.exec(
        select(Licence, LicenceType)
        .join(LicenceType, col(LicenceType.code) == col(Licence.type_code))
        .where(Licence.holder_id == row.id)
        .order_by(col(Licence.issued_at).desc())
    ):
        if effective_status(licence, today) is not LicenceStatus.VALID:
            continue
        properties = entry.field_schema["properties"]
        for item in sorted(entry.service_item_fields):
            titles = [
                str(properties[n].get("title", n)) for n in fields_for_service_item(entry, item)
            ]
            targets.append(
                Target(
                    value=f"{licence.identifier} {item}",
                    label=f"{entry.name}（{licence.serial}-{licence.version:03d}）· 事项 {item}："
                    f"{'、'.join(titles)}",
                )
            )
    return targets


def departments(session: Session) -> list[tuple[str, str]]:
    """(code, name) of the departments one may grant to, for the form's suggestions."""
    rows = session.exec(select(Department.code, Department.name).order_by(col(Department.name)))
    return [(code, name) for code, name in rows.all()[:500]]


def _pull_entry(
    pull: LicencePull,
    licences: dict[str, str],
    departments: dict[str, str],
    clients: dict[str, str],
) -> UsageEntry:
    name = departments.get(pull.department_code, pull.department_code)
    client = clients.get(pull.client_id, pull.client_id)
    return UsageEntry(
        kind="pull",
        at=pull.at,
        identifier=pull.identifier,
        licence_type_name=licences.get(pull.identifier),
        who=f"{name}（{pull.department_code}）· 系统 / client {client}",
        department=pull.department_code,
        department_name=name,
        client_id=pull.client_id,
        client_name=client,
        service_item=pull.service_item,
        business_number=pull.business_number,
        what=pull.what,
        what_label=WHAT.get(pull.what, pull.what),
    )


def _verification_entry(row: VerificationLog, licences: dict[str, str]) -> UsageEntry:
    channel = CHANNELS.get(row.channel, row.channel)
    return UsageEntry(
        kind="verification",
        at=row.at,
        identifier=row.identifier or "",
        licence_type_name=licences.get(row.identifier or ""),
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
    identifiers: list[str],
    before: tuple[datetime, int | None] | None,
    limit: int,
) -> list[VerificationLog]:
    if not identifiers:
        return []
    query = select(VerificationLog).where(col(VerificationLog.identifier).in_(identifiers))
    return newest_first(session, query, VerificationLog.at, VerificationLog.id, before, limit)


def _bound(
    position: tuple[datetime, int, int] | None, kind: str
) -> tuple[datetime, int | None] | None:
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


def _encode(position: tuple[datetime, int, int]) -> str:
    at, rank, last_id = position
    raw = json.dumps([as_utc(at).isoformat(), rank, last_id]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(cursor: str) -> tuple[datetime, int, int]:
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


def _types_of(session: Session, identifiers: list[str]) -> dict[str, LicenceType]:
    if not identifiers:
        return {}
    rows = session.exec(
        select(Licence.identifier, LicenceType)
        .join(LicenceType, col(LicenceType.code) == col(Licence.type_code))
        .where(col(Licence.identifier).in_(identifiers))
    )
    return dict(rows.all())


def _department_names(session: Session, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = session.exec(
        select(Department.code, Department.name).where(col(Department.code).in_(codes))
    )
    return dict(rows.all())


def _client_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.exec(select(ApiClient.id, ApiClient.name).where(col(ApiClient.id).in_(ids)))
    return dict(rows.all())
