"""Pulls (调取): a department other than the issuer reads a licence the holder granted it.

The department gets the licence record with only the fields its service item needs (declared in
the catalogue) and the holder masked, or the sealed PDF — but only when the grant covers the whole
licence: every field of the type and of the licence, and a holder whose name and ID are not masked
(an organisation). A sealed PDF cannot be cut down without breaking its seal, so a grant that
limits fields is refused the PDF (403, ``missing: fields``) and the refusal audited. Each pull is one transaction: the grant
is matched, the pull is written to ``licence_pull`` — which the holder reads as "who used my
licence, when" — with its ``licence.pull`` audit entry. A refused pull writes no pull row, but is
audited (outcome ``refused``, with what was missing) in a transaction of its own, since the
refusal itself is what a supervisor looks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.db import newest_first, transaction
from licences.catalogue_rules import fields_for_service_item
from licences.grant_match import PullRefused, live_grant
from licences.masking import mask_holder_id, mask_name
from licences.models import HolderCategory
from licences.repository import (
    LicenceRecord,
    document,
    full_record,
    licence_by_identifier,
)
from licences.use_code_records import PresentationUse

WHAT = {
    "record": "证照数据 / licence record",
    "pdf": "证照文件 / sealed PDF",
    "ofd": "证照文件（OFD）/ sealed OFD",  # served by licences.ofd_desk after the pull
}


class LicencePull(SQLModel, table=True):
    __tablename__ = "licence_pull"
    # The holder's usage log: their pulls, newest first.
    __table_args__ = (Index("ix_licence_pull_holder_at", "holder_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    identifier: str = Field(foreign_key="licence.identifier", max_length=96)
    holder_id: int = Field(foreign_key="holder.id")
    # A pull is made under a grant or with a use authorisation code (licences.use_codes).
    grant_id: str | None = Field(default=None, foreign_key="licence_grant.id", max_length=16)
    use_code: str | None = Field(
        default=None, foreign_key=f"{PresentationUse.__tablename__}.nonce", max_length=16
    )
    department_code: str = Field(max_length=18)
    client_id: str = Field(max_length=16)
    service_item: str = Field(max_length=64)
    business_number: str = Field(max_length=64)
    what: str = Field(max_length=8)  # record | pdf | ofd


@dataclass(frozen=True)
class PullRequest:
    identifier: str
    department_code: str
    client_id: str
    actor: str
    service_item: str | None
    business_number: str | None
    what: str  # record | pdf | ofd
    request_id: str | None = None


@dataclass(frozen=True)
class Pulled:
    record: LicenceRecord
    grant_id: str | None  # None: pulled with a use authorisation code
    fields: dict[str, Any]  # only those the service item needs
    holder: dict[str, str]  # masked
    pdf: bytes | None


def masked_holder(record: LicenceRecord) -> dict[str, str]:
    """A person's name and ID masked (the department matches them against the applicant it
    already has); an organisation's are public register data."""
    is_person = record.licence_type.holder_category == HolderCategory.NATURAL_PERSON.value
    return {
        "id_type": record.holder.id_type,
        "id": mask_holder_id(record.holder.id_type, record.holder.id_number, is_person),
        "name": mask_name(record.holder.name, is_person),
    }


def minimised(record: LicenceRecord, service_item: str) -> tuple[list[str], dict[str, Any]]:
    """The fields ``service_item`` needs (declared in the catalogue, schema order) and the
    licence's values of them: all a department pulling for that item is given."""
    needed = fields_for_service_item(record.licence_type, service_item)
    fields = record.licence.fields
    return needed, {name: fields[name] for name in needed if name in fields}


def withheld_from(record: LicenceRecord, needed: list[str]) -> list[str]:
    """What the sealed PDF shows that a pull for ``needed`` does not: the fields of the type and
    of the licence outside them, and a person's name and ID, which every pull masks."""
    covered = set(needed)
    names = dict.fromkeys(
        [*record.licence_type.field_schema.get("properties", {}), *record.licence.fields]
    )
    withheld = [name for name in names if name not in covered]
    if record.licence_type.holder_category == HolderCategory.NATURAL_PERSON.value:
        withheld += ["holder.name", "holder.id"]
    return withheld


def pdf_refused(needed: list[str], withheld: list[str]) -> PullRefused:
    """The sealed PDF is the whole licence and cannot be cut down without breaking its seal: a
    grant that covers less is refused the PDF (the record, minimised, is still served)."""
    granted = "、".join(needed) or "-"
    refusal = PullRefused(
        f"授权仅涵盖字段 {granted}，不提供完整的盖章证照文件，请调取证照数据（JSON）/ the grant "
        f"covers only fields {', '.join(needed) or '-'}; the full sealed PDF is not released: "
        "pull the record (JSON) instead",
        missing="fields",
    )
    refusal.extra |= {"granted_fields": list(needed), "withheld": withheld}
    return refusal


class Pulls:
    def __init__(self, engine: Engine, audit: AuditLog, clock: Clock) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock

    def pull(self, request: PullRequest) -> Pulled:
        if request.what not in WHAT:
            raise ValueError(request.what)
        try:
            with transaction(self._engine) as session:
                return self._serve(session, request)
        except PullRefused as refusal:
            with transaction(self._engine) as session:
                self._append(session, request, "refused", dict(refusal.extra))
            raise

    def _serve(self, session: Session, request: PullRequest) -> Pulled:
        """Match the grant, write the pull and its audit entry, and hand out what the grant
        covers; :class:`PullRefused` (nothing written) when it covers nothing, or, for the PDF,
        less than the whole licence."""
        licence = licence_by_identifier(session, request.identifier)
        grant = live_grant(
            session,
            licence=licence,
            department_code=request.department_code,
            service_item=request.service_item,
            business_number=request.business_number,
            today=china_today(self._clock.now()),
        )
        record = full_record(session, licence)
        needed, fields = minimised(record, grant.service_item)
        if request.what in ("pdf", "ofd"):  # a sealed document: the whole licence or nothing
            withheld = withheld_from(record, needed)
            if withheld:
                raise pdf_refused(needed, withheld)
        pulled = Pulled(
            record=record,
            grant_id=grant.id,
            fields=fields,
            holder=masked_holder(record),
            pdf=document(session, licence.identifier) if request.what == "pdf" else None,
        )
        session.add(
            LicencePull(
                at=self._clock.now(),
                identifier=licence.identifier,
                holder_id=licence.holder_id,
                grant_id=grant.id,
                department_code=request.department_code,
                client_id=request.client_id,
                service_item=grant.service_item,
                business_number=grant.business_number,
                what=request.what,
            )
        )
        self._append(session, request, "ok", {"grant": grant.id, "fields": needed})
        return pulled

    def _append(
        self, session: Session, request: PullRequest, outcome: str, extra: dict[str, Any]
    ) -> None:
        self._audit.append(
            session,
            actor=request.actor[:128],
            action="licence.pull",
            object_type="licence",
            object_id=request.identifier,
            outcome=outcome,
            detail={
                "department": request.department_code,
                "client": request.client_id,
                "service_item": request.service_item,
                "business_number": request.business_number,
                "what": request.what,
                **extra,
            },
            request_id=request.request_id,
        )


def pulls_of_holder(
    session: Session, holder_id: int, *, before: tuple[datetime, int | None] | None, limit: int
) -> list[LicencePull]:
    """The holder's pulls, newest first; with ``before = (at, id)`` only those before it in
    that order (keyset), and with ``(at, None)`` those at ``at`` or earlier."""
    query = select(LicencePull).where(LicencePull.holder_id == holder_id)
    return newest_first(session, query, LicencePull.at, LicencePull.id, before, limit)
