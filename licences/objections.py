"""Objections (错录申诉): a signed-in holder says one field of their licence was recorded
wrongly, and the issuing department answers — by amending the licence or by refusing with a
reason.

Why it is built this way:

* **A holder reaches only their own licences.** Another holder's licence is a 404 exactly like
  a missing one (``licences.repository.holder_licence``), so nobody learns which identifiers
  exist by objecting to them.
* **Only a live licence can be objected to.** A revoked, cancelled, superseded, void or
  expired licence answers 409 with ``current_status``: the request is well formed (so not 422),
  but the licence's state rules it out — no amendment can follow, and a superseded version's
  successor is where a holder objects.
* **The department's answer is the licence's own lifecycle.** Amending issues a new sealed
  version through ``licences.versions`` (the amendment's audit entries and events are the
  lifecycle's), and the objection is closed *in the transaction that stores that version*
  (``VersionRequest.also``): a conditional update from ``open``, so of two answers at once one
  wins and the other is a 409 that leaves no second version behind. Rejecting is the same
  conditional update with a reason.
* **Texts are plain.** Comments, proposed values and reasons hold 1–500 characters and no
  control or format characters (bidi overrides would let a comment show one text and be
  another); the audit keeps their SHA-256, not their words, since a comment may name people.
* **Masking.** The department's queue shows the holder's name as the department already sees it
  on the licence it issued, and the holder's ID number masked (``licences.masking``): the queue
  is read at desks the ID is not needed at.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.db import reading, transaction
from core.errors import Conflict, InvalidInput, NotFound
from licences.grants import HolderKey
from licences.lifecycle import Transition, parse_identifier
from licences.masking import mask_id
from licences.models import Holder, Licence, LicenceStatus, LicenceType
from licences.objection_records import (
    MAX_TEXT,
    STATE_LABELS,
    LicenceObjection,
    ObjectionState,
)
from licences.repository import effective_status, holder_licence
from licences.versions import VersionRequest, Versions
from seals.models import Department

PERSON_ID_TYPE = "111"  # GB 11643 resident ID: a natural person, whose ID is masked
OBJECTABLE = (LicenceStatus.VALID, LicenceStatus.SUSPENDED)
MAX_PAGE = 100


def check_text(value: str, *, field: str, zh: str, en: str) -> str:
    """1–500 characters after trimming, no control or format (bidi) characters."""
    text = value.strip()
    if not 1 <= len(text) <= MAX_TEXT:
        raise InvalidInput(
            f"{zh}须为1至{MAX_TEXT}个字符 / the {en} must hold 1 to {MAX_TEXT} characters",
            field=field,
        )
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise InvalidInput(
            f"{zh}含控制字符或双向文本控制符 / the {en} contains control or bidi characters",
            field=field,
        )
    return text


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def field_titles(entry: LicenceType) -> dict[str, str]:
    """The type's fields and their titles (the field's name where none is given)."""
    properties = entry.field_schema.get("properties", {})
    return {name: str(spec.get("title") or name) for name, spec in properties.items()}


@dataclass(frozen=True)
class ObjectionView:
    """An objection as its holder or its department sees it (``holder_*`` only for the
    department: the name as issued, the ID masked)."""

    id: str
    identifier: str
    type_name: str
    issuer_code: str
    issuer_name: str
    field: str
    field_title: str
    comment: str
    proposed: str | None
    state: str
    raised_at: datetime
    answered_at: datetime | None
    reject_reason: str | None
    amended_identifier: str | None
    holder_name: str | None = None
    holder_id_masked: str | None = None

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "identifier": self.identifier,
            "type_name": self.type_name,
            "issuer_code": self.issuer_code,
            "issuer_name": self.issuer_name,
            "field": self.field,
            "field_title": self.field_title,
            "comment": self.comment,
            "proposed": self.proposed,
            "state": self.state,
            "state_label": self.state_label,
            "raised_at": self.raised_at.isoformat(),
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "reject_reason": self.reject_reason,
            "amended_identifier": self.amended_identifier,
        }
        if self.holder_id_masked is not None:
            body["holder_name"] = self.holder_name
            body["holder_id"] = self.holder_id_masked
        return body


def _view(session: Session, row: LicenceObjection, *, for_department: bool) -> ObjectionView:
    licence = session.get(Licence, row.identifier)
    assert licence is not None  # a foreign key
    entry = session.get(LicenceType, licence.type_code)
    issuer = session.get(Department, row.issuer_code)
    assert entry is not None and issuer is not None
    holder_name = holder_masked = None
    if for_department:
        holder = session.get(Holder, row.holder_id)
        assert holder is not None
        holder_name = licence.holder_name or holder.name  # the name the licence was issued to
        holder_masked = mask_id(holder.id_number, holder.id_type == PERSON_ID_TYPE)
    return ObjectionView(
        id=row.id,
        identifier=row.identifier,
        type_name=entry.name,
        issuer_code=row.issuer_code,
        issuer_name=issuer.name,
        field=row.field,
        field_title=field_titles(entry).get(row.field, row.field),
        comment=row.comment,
        proposed=row.proposed,
        state=row.state,
        raised_at=row.raised_at,
        answered_at=row.answered_at,
        reject_reason=row.reject_reason,
        amended_identifier=row.amended_identifier,
        holder_name=holder_name,
        holder_id_masked=holder_masked,
    )


@dataclass(frozen=True)
class Overdue:
    """A department's objections open past the limit, for the supervisor's alert."""

    department_code: str
    count: int
    oldest: datetime


class ObjectionDesk:
    """What the holder pages and the departments' objection routes call; each method is one
    transaction (or, for an amendment, the new version's)."""

    def __init__(
        self, *, engine: Engine, audit: AuditLog, clock: Clock, versions: Versions
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock
        self._versions = versions

    # The holder ----------------------------------------------------------------------------

    def raise_objection(
        self,
        holder: HolderKey,
        identifier: str,
        *,
        field: str,
        comment: str,
        proposed: str | None,
        request_id: str | None,
    ) -> ObjectionView:
        """Flag ``field`` of the holder's own licence as wrong (404 for another's, 409 for a
        licence no longer live or an objection already open on that field)."""
        comment = check_text(comment, field="comment", zh="申诉说明", en="comment")
        if proposed is not None and proposed.strip() == "":
            proposed = None
        if proposed is not None:
            proposed = check_text(proposed, field="proposed", zh="更正值", en="proposed value")
        now = self._clock.now()
        with transaction(self._engine) as session:
            licence = holder_licence(
                session, parse_identifier(identifier), holder.id_type, holder.id_number
            )
            status = effective_status(licence, china_today(now))
            if status not in OBJECTABLE:
                raise Conflict(
                    f"证照状态为{status.label}，不能申诉，请对现行有效的证照提出 / the licence is "
                    f"{status.value}; object to a licence in force",
                    field="identifier",
                    extra={"current_status": status.value},
                )
            entry = session.get(LicenceType, licence.type_code)
            assert entry is not None  # a foreign key
            if field not in field_titles(entry):
                raise InvalidInput(
                    f"此类证照没有字段 {field[:64]} / this licence type has no field {field[:64]}",
                    field="field",
                )
            open_key = f"{licence.serial}:{field}"
            if session.exec(
                select(LicenceObjection.id).where(LicenceObjection.open_key == open_key)
            ).first():
                raise Conflict(
                    "该字段已有待处理的申诉 / an objection to this field is already open",
                    field="field",
                )
            row = LicenceObjection(
                id="obj_" + secrets.token_hex(8),
                identifier=licence.identifier,
                issuer_code=licence.issuer_code,
                holder_id=licence.holder_id,
                field=field,
                comment=comment,
                proposed=proposed,
                open_key=open_key,
                raised_at=now,
                raised_by=holder.actor,
            )
            session.add(row)
            try:
                session.flush()
            except IntegrityError as exc:  # a twin committed between the check and the insert
                raise Conflict(
                    "该字段已有待处理的申诉 / an objection to this field is already open",
                    field="field",
                ) from exc
            self._audit.append(
                session,
                actor=holder.actor,
                action="objection.raise",
                object_type="objection",
                object_id=row.id,
                detail={
                    "licence": licence.identifier,
                    "department": licence.issuer_code,
                    "field": field,
                    "comment_sha256": _digest(comment),
                },
                request_id=request_id,
            )
            return _view(session, row, for_department=False)

    def of_holder(self, holder: HolderKey, identifier: str | None = None) -> list[ObjectionView]:
        """The holder's objections, newest first; with ``identifier``, those about that licence
        or answered by it (404 for another's licence)."""
        with reading(self._engine) as session:
            owner = session.exec(
                select(Holder).where(
                    Holder.id_type == holder.id_type, Holder.id_number == holder.id_number
                )
            ).first()
            if owner is None:
                return []
            query = select(LicenceObjection).where(LicenceObjection.holder_id == owner.id)
            if identifier is not None:
                own = holder_licence(
                    session, parse_identifier(identifier), holder.id_type, holder.id_number
                )
                query = query.where(
                    (col(LicenceObjection.identifier) == own.identifier)
                    | (col(LicenceObjection.amended_identifier) == own.identifier)
                )
            rows = session.exec(
                query.order_by(col(LicenceObjection.raised_at).desc()).limit(MAX_PAGE)
            ).all()
            return [_view(session, row, for_department=False) for row in rows]

    # The issuing department -------------------------------------------------------------------

    def queue(
        self, department_code: str, *, state: str | None, limit: int = 50
    ) -> list[ObjectionView]:
        """The department's objections (only its own licences'), oldest open first."""
        if state is not None and state not in STATE_LABELS:
            raise InvalidInput(
                f"state 须为 {'、'.join(STATE_LABELS)} 之一 / state must be one of "
                f"{', '.join(STATE_LABELS)}",
                field="state",
            )
        with reading(self._engine) as session:
            query = select(LicenceObjection).where(LicenceObjection.issuer_code == department_code)
            if state is not None:
                query = query.where(LicenceObjection.state == state)
            rows = session.exec(
                query.order_by(col(LicenceObjection.raised_at), col(LicenceObjection.id)).limit(
                    max(1, min(limit, MAX_PAGE))
                )
            ).all()
            return [_view(session, row, for_department=True) for row in rows]

    def one(self, department_code: str, objection_id: str) -> ObjectionView:
        with reading(self._engine) as session:
            return _view(session, _own(session, department_code, objection_id), for_department=True)

    def amend(
        self,
        department_code: str,
        objection_id: str,
        *,
        value: Any,
        actor: str,
        request_id: str | None,
    ) -> ObjectionView:
        """Answer by amending the licence: ``value`` (or, when None, the holder's proposed
        value) becomes the field's value in a new sealed version, and the objection is closed
        and linked to it in the same transaction (409 if it was answered meanwhile)."""
        with reading(self._engine) as session:
            row = _own(session, department_code, objection_id)
            _still_open(row)
            identifier, field = row.identifier, row.field
            if value is None:
                value = row.proposed
        if value is None:
            raise InvalidInput(
                "持证人未提出更正值，请给出字段的新值 / the holder proposed no value; give the "
                "field's new value",
                field="value",
            )
        now = self._clock.now()

        def close(session: Session, successor: Licence) -> None:
            _answer(
                session,
                objection_id,
                state=ObjectionState.AMENDED,
                at=now,
                actor=actor,
                values={"amended_identifier": successor.identifier},
            )
            self._audit.append(
                session,
                actor=actor,
                action="objection.amend",
                object_type="objection",
                object_id=objection_id,
                detail={
                    "licence": identifier,
                    "amended": successor.identifier,
                    "department": department_code,
                    "field": field,
                },
                request_id=request_id,
            )

        self._versions.new_version(
            VersionRequest(
                identifier=identifier,
                transition=Transition.AMEND,
                actor=actor,
                department_code=department_code,
                reason=f"错录申诉 / objection {objection_id}",
                fields={field: value},
                request_id=request_id,
                also=close,
            )
        )
        return self.one(department_code, objection_id)

    def reject(
        self,
        department_code: str,
        objection_id: str,
        *,
        reason: str,
        actor: str,
        request_id: str | None,
    ) -> ObjectionView:
        """Answer by refusing, with a reason the holder reads (409 if already answered)."""
        reason = check_text(reason, field="reason", zh="不予更正的理由", en="reason")
        with transaction(self._engine) as session:
            row = _own(session, department_code, objection_id)
            _still_open(row)
            _answer(
                session,
                objection_id,
                state=ObjectionState.REJECTED,
                at=self._clock.now(),
                actor=actor,
                values={"reject_reason": reason},
            )
            self._audit.append(
                session,
                actor=actor,
                action="objection.reject",
                object_type="objection",
                object_id=objection_id,
                detail={
                    "licence": row.identifier,
                    "department": department_code,
                    "field": row.field,
                    "reason_sha256": _digest(reason),
                },
                request_id=request_id,
            )
            session.refresh(row)
            return _view(session, row, for_department=True)


def _own(session: Session, department_code: str, objection_id: str) -> LicenceObjection:
    """The department's objection; another department's is a 404 like a missing one."""
    row = session.get(LicenceObjection, objection_id[:20])
    if row is None or row.issuer_code != department_code:
        raise NotFound(f"申诉不存在 / no objection {objection_id[:20]}", field="id")
    return row


def _still_open(row: LicenceObjection) -> None:
    if row.state != ObjectionState.OPEN.value:
        raise Conflict(
            f"该申诉已处理（{STATE_LABELS[row.state]}）/ the objection was already answered",
            field="id",
            extra={"current_state": row.state},
        )


def _answer(
    session: Session,
    objection_id: str,
    *,
    state: ObjectionState,
    at: datetime,
    actor: str,
    values: dict[str, str],
) -> None:
    """Close an open objection; of two answers at once the second finds it closed (409)."""
    result = session.execute(
        update(LicenceObjection)
        .where(
            col(LicenceObjection.id) == objection_id,
            col(LicenceObjection.state) == ObjectionState.OPEN.value,
        )
        .values(
            state=state.value,
            open_key=None,
            answered_at=at,
            answered_by=actor,
            **values,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "该申诉已处理 / the objection was already answered",
            field="id",
            extra={"current_state": "answered"},
        )


def overdue(session: Session, raised_before: datetime) -> list[Overdue]:
    """Per department, the objections still open that were raised before ``raised_before``."""
    query = (
        select(
            LicenceObjection.issuer_code,
            func.count(),
            func.min(LicenceObjection.raised_at),
        )
        .where(
            LicenceObjection.state == ObjectionState.OPEN.value,
            col(LicenceObjection.raised_at) < raised_before,
        )
        .group_by(col(LicenceObjection.issuer_code))
        .order_by(col(LicenceObjection.issuer_code))
    )
    return [Overdue(code, int(n), oldest) for code, n, oldest in session.exec(query).all()]
