"""Grants (授权): the holder lets one department use one of their licences for one service item
(事项) and one business number (办件编号), until a date.

A licence captured once should be reused, but only with the holder's say-so and only for the
matter at hand: a grant names the department (by its unified social credit code), the licence
version, the service item — whose declared fields (``LicenceType.service_item_fields``) are all
the department will receive — and the business number of the case being handled. It lasts at
most a year and stops working the moment it is withdrawn or its last day has passed; nothing has
to run for it to expire. Every grant and withdrawal is on the audit chain, under the identity
provider's subject of the holder, never their ID number.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from sqlalchemy import Column, Date, DateTime, Index
from sqlmodel import Field, Session, SQLModel, col, func, select

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.errors import Conflict, InvalidInput, NotFound
from licences.catalogue_rules import fields_for_service_item
from licences.identifiers import validate_uscc
from licences.models import Holder, Licence, LicenceStatus, LicenceType
from licences.repository import effective_status
from seals.models import Department

CODE = re.compile(r"^[0-9A-Za-z-]{1,64}$")  # service items and business numbers alike
MAX_LIVE_GRANTS = 200  # per holder: far above any real need, low enough to keep lists short


class GrantStatus(str, Enum):
    ACTIVE = "active"  # 有效
    WITHDRAWN = "withdrawn"  # 已撤回
    EXPIRED = "expired"  # 已过期 (computed, like a licence's expiry)

    @property
    def label(self) -> str:
        return {
            "active": "有效 / active",
            "withdrawn": "已撤回 / withdrawn",
            "expired": "已过期 / expired",
        }[self.value]


class LicenceGrant(SQLModel, table=True):
    __tablename__ = "licence_grant"
    # A pull looks up the grants of one licence for one department.
    __table_args__ = (
        Index("ix_licence_grant_licence_department", "identifier", "department_code"),
    )

    id: str = Field(primary_key=True, max_length=16)
    identifier: str = Field(foreign_key="licence.identifier", max_length=96)
    holder_id: int = Field(foreign_key="holder.id", index=True)
    department_code: str = Field(foreign_key="department.code", max_length=18)
    service_item: str = Field(max_length=64)
    business_number: str = Field(max_length=64)
    valid_until: date = Field(sa_column=Column(Date, nullable=False))  # last day, China time
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_by: str = Field(max_length=128)
    withdrawn_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


def grant_status(grant: LicenceGrant, today: date) -> GrantStatus:
    if grant.withdrawn_at is not None:
        return GrantStatus.WITHDRAWN
    if grant.valid_until < today:
        return GrantStatus.EXPIRED
    return GrantStatus.ACTIVE


@dataclass(frozen=True)
class HolderKey:
    """The signed-in holder as the domain knows them: the ID their licences are issued to, and
    the actor the audit chain names."""

    id_type: str
    id_number: str
    actor: str


@dataclass(frozen=True)
class GrantRequest:
    identifier: str
    department_code: str
    service_item: str
    business_number: str
    valid_until: date


def check_code(value: str, field: str, what: str) -> str:
    if not isinstance(value, str) or not CODE.match(value):
        raise InvalidInput(
            f"{what}应为 1-64 位字母、数字或“-” / {field} is 1-64 letters, digits or '-'",
            field=field,
        )
    return value


def latest_end(today: date) -> date:
    """The last day a grant made today may run to: one year on."""
    try:
        return today.replace(year=today.year + 1)
    except ValueError:  # 29 February
        return today.replace(year=today.year + 1, day=28)


def holder_row(session: Session, holder: HolderKey) -> Holder | None:
    return session.exec(
        select(Holder).where(Holder.id_type == holder.id_type, Holder.id_number == holder.id_number)
    ).first()


def _check_until(valid_until: date, today: date) -> None:
    """A grant ends today at the earliest and one year from today at the latest."""
    if valid_until < today:
        raise InvalidInput(
            "授权截止日期不能早于今天 / valid_until cannot be in the past", field="valid_until"
        )
    if valid_until > latest_end(today):
        raise InvalidInput(
            f"授权最长一年，至 {latest_end(today)} / a grant lasts at most one year, "
            f"until {latest_end(today)}",
            field="valid_until",
        )


def _current_licence_of(
    session: Session, holder: HolderKey, identifier: str, today: date
) -> tuple[Holder, Licence]:
    """The holder's row and their licence ``identifier``, which must be current; another
    holder's licence is reported exactly like a missing one."""
    row = holder_row(session, holder)
    licence = session.get(Licence, identifier)
    if row is None or licence is None or licence.holder_id != row.id:
        raise NotFound(f"您名下没有此证照 / you hold no licence {identifier}", field="identifier")
    status = effective_status(licence, today)
    if status is not LicenceStatus.VALID:
        raise Conflict(
            f"只能授权使用有效的证照，此证照{status.zh} / only a current licence can be granted; "
            f"this one is {status.value}",
            field="identifier",
            extra={"current_status": status.value},
        )
    return row, licence


class Grants:
    def __init__(self, audit: AuditLog, clock: Clock) -> None:
        self._audit = audit
        self._clock = clock

    def today(self) -> date:
        return china_today(self._clock.now())

    def create(
        self,
        session: Session,
        *,
        holder: HolderKey,
        request: GrantRequest,
        request_id: str | None = None,
    ) -> LicenceGrant:
        """Check every part of the grant before writing anything, then write it and its audit
        entry in the caller's transaction."""
        item = check_code(request.service_item, "service_item", "事项编码")
        number = check_code(request.business_number, "business_number", "办件编号")
        today = self.today()
        _check_until(request.valid_until, today)
        row, licence = _current_licence_of(session, holder, request.identifier, today)
        department = self._department(session, request.department_code, licence)
        self._check_item(session, licence, item)
        self._check_not_granted(session, row, licence, department.code, item, number, today)
        grant = LicenceGrant(
            id=secrets.token_hex(8),
            identifier=licence.identifier,
            holder_id=licence.holder_id,  # the holder's own: checked equal to row.id
            department_code=department.code,
            service_item=item,
            business_number=number,
            valid_until=request.valid_until,
            created_at=self._clock.now(),
            created_by=holder.actor[:128],
        )
        session.add(grant)
        session.flush()
        self._audit.append(
            session,
            actor=holder.actor[:128],
            action="grant.create",
            object_type="licence_grant",
            object_id=grant.id,
            detail={
                "identifier": licence.identifier,
                "department": department.code,
                "service_item": item,
                "business_number": number,
                "valid_until": request.valid_until.isoformat(),
            },
            request_id=request_id,
        )
        return grant

    def withdraw(
        self,
        session: Session,
        *,
        holder: HolderKey,
        grant_id: str,
        request_id: str | None = None,
    ) -> LicenceGrant:
        """From this moment no pull matches the grant. Only its holder withdraws it; another
        holder's grant is simply not found."""
        row = holder_row(session, holder)
        grant = session.get(LicenceGrant, grant_id, with_for_update=True)
        if grant is None or row is None or grant.holder_id != row.id:
            raise NotFound(f"没有此授权 / no grant {grant_id}", field="grant_id")
        status = grant_status(grant, self.today())
        if status is not GrantStatus.ACTIVE:
            raise Conflict(
                f"授权{status.label.split(' / ')[0]}，无需撤回 / the grant is already {status.value}",
                extra={"current_status": status.value},
            )
        grant.withdrawn_at = self._clock.now()
        session.add(grant)
        self._audit.append(
            session,
            actor=holder.actor[:128],
            action="grant.withdraw",
            object_type="licence_grant",
            object_id=grant.id,
            detail={"identifier": grant.identifier, "department": grant.department_code},
            request_id=request_id,
        )
        return grant

    def of_holder(
        self, session: Session, holder: HolderKey, limit: int = 200
    ) -> list[LicenceGrant]:
        """The holder's grants, newest first."""
        row = holder_row(session, holder)
        if row is None:
            return []
        return list(
            session.exec(
                select(LicenceGrant)
                .where(LicenceGrant.holder_id == row.id)
                .order_by(col(LicenceGrant.created_at).desc(), col(LicenceGrant.id))
                .limit(max(1, min(limit, 500)))
            )
        )

    @staticmethod
    def _department(session: Session, code: str, licence: Licence) -> Department:
        code = validate_uscc(code, field="department")
        department = session.get(Department, code)
        if department is None:
            raise NotFound(f"没有此部门 / no department {code}", field="department")
        if department.code == licence.issuer_code:
            raise InvalidInput(
                "发证部门无需授权即可使用此证照 / the issuing department needs no grant",
                field="department",
            )
        return department

    @staticmethod
    def _check_item(session: Session, licence: Licence, item: str) -> None:
        entry = session.get(LicenceType, licence.type_code)
        if entry is None or not fields_for_service_item(entry, item):
            declared = ", ".join(sorted(entry.service_item_fields)) if entry else ""
            raise InvalidInput(
                f"此类证照未声明事项 {item} 所需字段 / the licence type declares no fields for "
                f"service item {item} (declared: {declared or 'none'})",
                field="service_item",
            )

    @staticmethod
    def _check_not_granted(
        session: Session,
        holder: Holder,
        licence: Licence,
        department: str,
        item: str,
        number: str,
        today: date,
    ) -> None:
        live = (col(LicenceGrant.withdrawn_at).is_(None), col(LicenceGrant.valid_until) >= today)
        twin = session.exec(
            select(LicenceGrant).where(
                LicenceGrant.identifier == licence.identifier,
                LicenceGrant.department_code == department,
                LicenceGrant.service_item == item,
                LicenceGrant.business_number == number,
                *live,
            )
        ).first()
        if twin is not None:
            raise Conflict(
                "已有相同的有效授权 / a live grant for this department, service item and business "
                "number exists",
                extra={"grant_id": twin.id},
            )
        count = session.exec(
            select(func.count())
            .select_from(LicenceGrant)
            .where(LicenceGrant.holder_id == holder.id, *live)
        ).one()
        if count >= MAX_LIVE_GRANTS:
            raise Conflict(
                f"有效授权已达 {MAX_LIVE_GRANTS} 项，请先撤回不再需要的 / at most "
                f"{MAX_LIVE_GRANTS} live grants; withdraw some first"
            )
