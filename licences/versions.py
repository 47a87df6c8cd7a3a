"""New versions of a licence: amend (变更), renew (延续) and reissue after loss (补发).

A sealed licence can never change, so each of these issues a *new version*: the same serial,
the next version number (``LicenceIdentifier.next_version()``, so a new identifier with a new
check character), rendered and sealed through exactly the issuance path (``prepare`` →
``render_and_seal`` → ``store``). In the same transaction that stores it, the previous version is
checked again (it may have changed since it was read), becomes ``superseded`` (amend, renew) or
``void`` (reissue), and links to its successor, which links back through ``previous``.

New versions follow the catalogue entry as it is now and record that version of the type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlmodel import Session

from core.clock import Clock, china_today
from core.db import reading
from core.errors import Conflict, InvalidInput, NotFound
from licences.idempotency import IdempotencyKey
from licences.identifiers import LicenceIdentifier
from licences.issuance import IssuanceService, IssuedLicence, IssueRequest
from licences.issued_page import Draft
from licences.layout import has_photo_slot
from licences.lifecycle import ALLOWED, Lifecycle, Transition, check_reason, parse_identifier
from licences.models import Holder, Licence, LicenceType, ValidityRule
from licences.photos import carried_photo
from licences.repository import licence_by_identifier
from licences.validity import add_years


@dataclass(frozen=True)
class VersionRequest:
    identifier: str
    transition: Transition  # AMEND, RENEW or REISSUE
    actor: str
    department_code: str | None = None  # None: an operator acting for the domain
    reason: str | None = None
    fields: dict[str, Any] | None = None  # amend: a merge patch over the current fields
    valid_from: date | None = None  # renew
    valid_until: date | None = None  # renew
    idempotency_key: str | None = None
    request_id: str | None = None
    # Run in the transaction that stores the new version, after the old one is retired: what
    # must hold or fall with the amendment (an objection answered by it, ``licences.objections``).
    also: Callable[[Session, Licence], None] | None = None

    def body(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "reason": self.reason,
            "fields": self.fields,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
        }


class Versions:
    def __init__(self, *, issuance: IssuanceService, lifecycle: Lifecycle, clock: Clock) -> None:
        self._issuance = issuance
        self._lifecycle = lifecycle
        self._clock = clock

    def new_version(self, request: VersionRequest) -> IssuedLicence:
        transition = request.transition
        if not ALLOWED[transition].new_version:
            raise InvalidInput(
                f"{transition.value} 不产生新版本 / {transition.value} makes no new version",
                field="action",
            )
        identifier = parse_identifier(request.identifier)
        reason = check_reason(transition, request.reason)
        key = IdempotencyKey.of(
            request.department_code, transition.value, request.idempotency_key, request.body()
        )
        with reading(self._issuance.engine) as session:
            replay = self._issuance.replay(session, key)
            if replay is not None:
                return replay
            old = licence_by_identifier(session, identifier)
            self._lifecycle.check(old, transition, department_code=request.department_code)
            draft = self._draft(session, old, request, identifier)

        def retire(session: Session, successor: Licence) -> None:
            current = licence_by_identifier(session, identifier, for_update=True)
            self._lifecycle.check(current, transition, department_code=request.department_code)
            self._lifecycle.mark(
                session,
                current,
                transition,
                reason=reason,
                actor=request.actor,
                request_id=request.request_id,
                successor=successor.identifier,
            )
            if request.also is not None:
                request.also(session, successor)

        return self._issuance.store(
            self._issuance.render_and_seal(draft),
            key=key,
            actor=request.actor,
            request_id=request.request_id,
            hook=retire,
            detail={"via": transition.value, "previous": identifier, "reason": reason},
        )

    def _draft(
        self, session: Session, old: Licence, request: VersionRequest, identifier: str
    ) -> Draft:
        """The new version checked as a new issuance of the same holder, type and issuer, under
        the next version of the identifier."""
        holder = session.get(Holder, old.holder_id)
        if holder is None:
            raise NotFound(f"证照记录不完整 / licence {identifier} has no holder")
        entry = session.get(LicenceType, old.type_code)
        assert entry is not None  # a foreign key
        fields, valid_from, valid_until = self._content(entry, old, request)
        return self._issuance.prepare(
            session,
            IssueRequest(
                department_code=old.issuer_code,
                licence_type=old.type_code,
                holder_id_type=holder.id_type,
                holder_id=holder.id_number,
                holder_name=holder.name,
                fields=fields,
                valid_from=valid_from,
                valid_until=valid_until,
                # the holder's photo carries over while the type's page still has its slot
                photo=carried_photo(session, identifier) if has_photo_slot(entry.layout) else None,
            ),
            identifier=LicenceIdentifier.parse(identifier).next_version(),
            previous=identifier,
        )

    def _content(
        self, entry: LicenceType, old: Licence, request: VersionRequest
    ) -> tuple[dict[str, Any], date | None, date | None]:
        """Fields and validity of the new version."""
        if request.transition is Transition.AMEND:
            return merge_patch(old.fields, request.fields or {}), old.valid_from, old.valid_until
        if request.fields:
            raise InvalidInput(
                "只有变更可以修改照面信息 / only an amendment changes the fields", field="fields"
            )
        if request.transition is Transition.REISSUE:
            return dict(old.fields), old.valid_from, old.valid_until
        return dict(old.fields), *self._renewal(entry, old, request)

    def _renewal(
        self, entry: LicenceType, old: Licence, request: VersionRequest
    ) -> tuple[date, date | None]:
        """A renewal starts today and runs one term past the later of the old end and today,
        so renewing early costs the holder nothing."""
        if entry.validity_rule == ValidityRule.INDEFINITE.value or old.valid_until is None:
            raise Conflict(
                "长期有效的证照无需延续 / an indefinite licence cannot be renewed",
                field="valid_until",
                extra={"current_status": old.status},
            )
        today = china_today(self._clock.now())
        valid_from = request.valid_from or today
        valid_until = request.valid_until
        if valid_until is None and entry.validity_years:
            anchor = max(old.valid_until + timedelta(days=1), today)
            valid_until = add_years(anchor, entry.validity_years) - timedelta(days=1)
        if valid_until is not None and valid_until <= old.valid_until:
            raise InvalidInput(
                "延续后的有效期截止须晚于原截止日期 / a renewal must end after the current "
                f"valid_until {old.valid_until.isoformat()}",
                field="valid_until",
            )
        return valid_from, valid_until


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 at the top level: a value replaces, null removes, absent keeps."""
    if not isinstance(patch, dict):
        raise InvalidInput("fields 必须是对象 / fields must be an object", field="fields")
    merged = dict(current)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged
