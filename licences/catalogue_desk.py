"""The catalogue as the edge uses it: the departments' API and the operator's command.

``licences.catalogue.Catalogue`` holds the rules of the catalogue and works inside a caller's
session; this desk is what a route or a command calls. Each method opens its own transaction
(``core.db.transaction`` for a change, its audit entry inside it; ``core.db.reading`` for a
read), takes plain values — codes, the actor, a validated body as a dict — and returns catalogue
rows, loaded before the transaction ends (sessions keep them readable after commit).

A department's write runs at most once per Idempotency-Key (``licences.idempotency``); the
operator has no department to scope a key by and acts for the trust domain, so its writes skip
the defining-authority check (``department_code`` None). Codes are taken as typed and looked up
in upper case (a type code's letters are upper case), except by :meth:`CatalogueDesk.entry`,
which issuance calls with the code it will issue under.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.clock import Clock
from core.db import reading, transaction
from licences import idempotency
from licences.catalogue import Catalogue
from licences.idempotency import IdempotencyKey
from licences.models import LicenceType, LicenceTypeVersion
from licences.specimen import Specimens
from seals.models import Department

# What a definition file may name: everything of an entry except what the catalogue keeps itself.
OPERATOR_FIELDS = frozenset(LicenceType.model_fields) - {
    "version",
    "status",
    "updated_at",
    "withdrawn_at",
}


@dataclass(frozen=True)
class Written:
    """An entry after a department's write, and whether an Idempotency-Key replayed it."""

    entry: LicenceType
    replayed: bool


@dataclass(frozen=True)
class Shown:
    """An entry as ``elicence catalogue show`` prints it: the entry (or a past version of it)
    and the numbers of every version."""

    entry: LicenceType
    versions: tuple[int, ...]


@dataclass(frozen=True)
class Declared:
    """The entry after ``elicence catalogue service-item``, and the item fields it declares."""

    entry: LicenceType
    service_item_fields: dict[str, list[str]]


class CatalogueDesk:
    def __init__(
        self, *, engine: Engine, catalogue: Catalogue, clock: Clock, specimens: Specimens
    ) -> None:
        self._engine = engine
        self._catalogue = catalogue
        self._clock = clock
        self._specimens = specimens

    # -- reading ---------------------------------------------------------------------------

    def entries(
        self,
        *,
        status: str | None = None,
        authority_code: str | None = None,
        service_item: str | None = None,
    ) -> list[LicenceType]:
        """The catalogue in code order, optionally by status, authority or service item."""
        with reading(self._engine) as session:
            return self._catalogue.list(
                session, status=status, authority_code=authority_code, service_item=service_item
            )

    def entry(self, code: str) -> LicenceType:
        """One entry as it is now (404 for an unknown code)."""
        with reading(self._engine) as session:
            return self._catalogue.get(session, code)

    def read(self, code: str, version: int | None = None) -> LicenceType:
        """One entry, as it is now or as it stood at ``version``; a past version carries the
        entry's status now, so a withdrawn type reads withdrawn at every version."""
        with reading(self._engine) as session:
            entry = self._catalogue.get(session, code.upper())
            if version is None or version == entry.version:
                return entry
            old = self._catalogue.version(session, entry.code, version)
            old.status = entry.status
            return old

    def specimen(self, code: str, version: int | None = None) -> tuple[LicenceType, bytes]:
        """The specimen (样本) PDF of a type as it is now or at ``version``: never sealed, its
        QR code says SPECIMEN (``licences.specimen``); rendered once per version."""
        entry = self.read(code, version)
        return entry, self._specimens.pdf(entry)

    def history(self, code: str) -> list[LicenceTypeVersion]:
        """Every version of an entry, oldest first."""
        with reading(self._engine) as session:
            return self._catalogue.history(session, code.upper())

    def show(self, code: str, version: int | None = None) -> Shown:
        """The entry (or the version as it was stored) and its version numbers."""
        with reading(self._engine) as session:
            entry = self._catalogue.get(session, code.upper())
            if version is not None and version != entry.version:
                entry = self._catalogue.version(session, entry.code, version)
            numbers = tuple(v.version for v in self._catalogue.history(session, entry.code))
        return Shown(entry, numbers)

    # -- a department's writes -------------------------------------------------------------

    def define(
        self, *, body: dict[str, Any], department_code: str, actor: str, key: str | None
    ) -> Written:
        """A new type whose defining authority is the caller (``body`` is the API's definition,
        with its ``code``)."""
        idem = IdempotencyKey.of(department_code, "catalogue.add", key, body)

        def write(session: Session) -> str:
            entry = LicenceType(
                code=body["code"],
                authority_code=department_code,
                holder_id_type="",
                **_api_changes(session, body, department_code),
            )
            return str(self._catalogue.add(session, actor=actor, entry=entry).code)

        return self._once(idem, write)

    def replace(
        self,
        *,
        code: str,
        body: dict[str, Any],
        department_code: str,
        actor: str,
        key: str | None,
    ) -> Written:
        """Replace a definition (its authority only); a change is a new version."""
        idem = IdempotencyKey.of(department_code, "catalogue.update", key, [code, body])

        def write(session: Session) -> str:
            entry = self._catalogue.update(
                session,
                actor=actor,
                code=code.upper(),
                changes=_api_changes(session, body, department_code),
                department_code=department_code,
            )
            return str(entry.code)

        return self._once(idem, write)

    def withdraw(
        self,
        *,
        code: str,
        reason: str | None,
        department_code: str | None,
        actor: str,
        key: str | None = None,
    ) -> Written:
        """Stop issuing a type; ``department_code`` None is the operator."""
        idem = IdempotencyKey.of(department_code, "catalogue.withdraw", key, [code, reason])

        def write(session: Session) -> str:
            entry = self._catalogue.withdraw(
                session,
                actor=actor,
                code=code.upper(),
                reason=reason,
                department_code=department_code,
            )
            return str(entry.code)

        return self._once(idem, write)

    def delete(self, *, code: str, department_code: str, actor: str) -> None:
        """Delete a type that never issued a licence (409 for one that did)."""
        with transaction(self._engine) as session:
            self._catalogue.delete(
                session, actor=actor, code=code.upper(), department_code=department_code
            )

    # -- the operator's writes -------------------------------------------------------------

    def add(self, *, definition: dict[str, Any], actor: str) -> LicenceType:
        """A new type from an operator's definition file (``OPERATOR_FIELDS``)."""
        entry = LicenceType(**{"holder_id_type": "", **definition})
        with transaction(self._engine) as session:
            return self._catalogue.add(session, actor=actor, entry=entry)

    def update(self, *, code: str, changes: dict[str, Any], actor: str) -> LicenceType:
        """Change a type for the domain; a change is a new version."""
        with transaction(self._engine) as session:
            return self._catalogue.update(
                session, actor=actor, code=code.upper(), changes=changes, department_code=None
            )

    def declare_service_item(
        self, *, code: str, item: str, fields: list[str] | None, actor: str
    ) -> Declared:
        """Declare the fields a service item needs (``fields`` None drops the item's list); the
        item joins the type's service items if it is not there yet. A new version."""
        with transaction(self._engine) as session:
            entry = self._catalogue.get(session, code.upper())
            declared = dict(entry.service_item_fields)
            items = list(entry.service_items)
            if fields is None:
                declared.pop(item, None)
            else:
                declared[item] = list(fields)
                items = items if item in items else [*items, item]
            entry = self._catalogue.update(
                session,
                actor=actor,
                code=entry.code,
                changes={"service_items": items, "service_item_fields": declared},
                department_code=None,
            )
        return Declared(entry, declared)

    def _once(self, idem: IdempotencyKey | None, write: Callable[[Session], str]) -> Written:
        entry, replayed = idempotency.once(
            self._engine, idem, self._clock.now, write, self._catalogue.get
        )
        return Written(entry, replayed)


def _api_changes(session: Session, body: dict[str, Any], department_code: str) -> dict[str, Any]:
    """The editable fields of an API definition: the authority's name defaults to the caller's
    registered name, and empty derived fields are derived again."""
    data = {k: v for k, v in body.items() if k != "code"}
    if not data.get("authority_name"):
        department = session.get(Department, department_code)
        data["authority_name"] = department.name if department else department_code
    data["validity_rule"] = data.get("validity_rule") or ""
    data["issuing_level"] = data.get("issuing_level") or ""
    return data
