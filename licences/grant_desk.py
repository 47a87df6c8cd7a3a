"""The holder's grants (授权) as the holder API and the ``/me/grants`` page use them.

Each method is one unit of work: it opens its own transaction (a grant made or withdrawn, with
its audit entry in the same transaction) or a read, and hands back frozen views built inside it,
so the edge never holds a session. The rules stay in ``licences.grants``; this module gives each
holder action its transaction and its answer: the grant with its licence type, the department's
name and the fields its service item shares, and the choices of the grant form.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import as_utc, reading, transaction
from licences.catalogue_rules import fields_for_service_item
from licences.grants import (
    GrantRequest,
    Grants,
    GrantStatus,
    HolderKey,
    LicenceGrant,
    grant_status,
    holder_row,
)
from licences.models import Licence, LicenceStatus, LicenceType
from licences.repository import effective_status
from seals.models import Department

MAX_DEPARTMENTS = 500  # suggestions on the grant form


@dataclass(frozen=True)
class SharedField:
    """A field a service item shares: its name and its title in the type's schema."""

    name: str
    title: str


@dataclass(frozen=True)
class GrantView:
    """A grant as its holder sees it."""

    id: str
    identifier: str
    licence_type: str
    licence_type_name: str
    department: str
    department_name: str
    service_item: str
    business_number: str
    fields: tuple[SharedField, ...]
    valid_until: date
    created_at: datetime
    withdrawn_at: datetime | None
    state: GrantStatus

    @property
    def status(self) -> str:
        return self.state.value

    @property
    def status_label(self) -> str:
        return self.state.label


@dataclass(frozen=True)
class Target:
    """One choice of the grant form: a current licence of the holder and one of its type's
    service items, with the fields that item would share."""

    value: str  # "<identifier> <service item>"
    label: str


@dataclass(frozen=True)
class GrantForm:
    """What the ``/me/grants`` page shows: the grants, the form's choices and suggestions."""

    grants: list[GrantView]
    targets: list[Target]
    departments: list[tuple[str, str]]  # (code, name)


class GrantDesk:
    """The signed-in holder's grants, one transaction per action."""

    def __init__(self, *, engine: Engine, audit: AuditLog, clock: Clock) -> None:
        self._engine = engine
        self._grants = Grants(audit, clock)

    def today(self) -> date:
        """Today in China: the day grants are checked against."""
        return self._grants.today()

    def create(self, holder: HolderKey, request: GrantRequest, *, request_id: str) -> GrantView:
        """Give a grant (``grant.create`` audited in the same transaction)."""
        with transaction(self._engine) as session:
            grant = self._grants.create(
                session, holder=holder, request=request, request_id=request_id
            )
            return grant_views(session, [grant], self.today())[0]

    def withdraw(self, holder: HolderKey, grant_id: str, *, request_id: str) -> GrantView:
        """Withdraw one of the holder's grants (404 for another's, 409 when not active)."""
        with transaction(self._engine) as session:
            grant = self._grants.withdraw(
                session, holder=holder, grant_id=grant_id, request_id=request_id
            )
            return grant_views(session, [grant], self.today())[0]

    def of_holder(self, holder: HolderKey, limit: int = 200) -> list[GrantView]:
        """The holder's grants, newest first."""
        with reading(self._engine) as session:
            rows = self._grants.of_holder(session, holder, limit)
            return grant_views(session, rows, self.today())

    def form(self, holder: HolderKey) -> GrantForm:
        """The grants page in one read: the grants, the form's choices, the departments."""
        today = self.today()
        with reading(self._engine) as session:
            return GrantForm(
                grants=grant_views(session, self._grants.of_holder(session, holder), today),
                targets=grant_targets(session, holder, today),
                departments=departments(session),
            )


def grant_views(session: Session, grants: list[LicenceGrant], today: date) -> list[GrantView]:
    """The grants with their licence type, department name and shared fields."""
    types = _types_of(session, [g.identifier for g in grants])
    names = department_names(session, {g.department_code for g in grants})
    out = []
    for grant in grants:
        entry = types.get(grant.identifier)
        properties = entry.field_schema["properties"] if entry else {}
        out.append(
            GrantView(
                id=grant.id,
                identifier=grant.identifier,
                licence_type=entry.code if entry else "",
                licence_type_name=entry.name if entry else "",
                department=grant.department_code,
                department_name=names.get(grant.department_code, grant.department_code),
                service_item=grant.service_item,
                business_number=grant.business_number,
                fields=tuple(
                    SharedField(name=n, title=str(properties[n].get("title", n)))
                    for n in (fields_for_service_item(entry, grant.service_item) if entry else [])
                ),
                valid_until=grant.valid_until,
                created_at=as_utc(grant.created_at),
                withdrawn_at=as_utc(grant.withdrawn_at) if grant.withdrawn_at else None,
                state=grant_status(grant, today),
            )
        )
    return out


def grant_targets(session: Session, holder: HolderKey, today: date) -> list[Target]:
    """Every (current licence, service item) the holder may grant, newest licence first."""
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
    rows = session.exec(
        select(Department.code, Department.name)
        .order_by(col(Department.name))
        .limit(MAX_DEPARTMENTS)
    )
    return [(code, name) for code, name in rows.all()]


def _types_of(session: Session, identifiers: list[str]) -> dict[str, LicenceType]:
    """The licence type of each of (at most a page of) licences."""
    if not identifiers:
        return {}
    rows = session.exec(
        select(Licence.identifier, LicenceType)
        .join(LicenceType, col(LicenceType.code) == col(Licence.type_code))
        .where(col(Licence.identifier).in_(identifiers))
    )
    return dict(rows.all())


def department_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """The names of (at most a page of) departments."""
    wanted = set(codes)
    if not wanted:
        return {}
    rows = session.exec(
        select(Department.code, Department.name).where(col(Department.code).in_(wanted))
    )
    return dict(rows.all())
