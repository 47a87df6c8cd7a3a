"""What a signed-in holder (持证人) does with their own licences, as the ``/me`` pages and the
holder API (``/api/v1/holder/...``) use it.

Each method is one unit of work: it opens its own read, or a transaction for a change (a
presentation code with its ``key.sign`` and ``licence.present`` entries, a revoked link with
``holder_link.revoke``, a sign-in's audit entry), and returns loaded rows or frozen views, so the
edge never holds a session. A holder reaches only their own licences, copies and links: another
holder's is reported exactly like one that does not exist (404). The rules stay where they are
(``licences.repository``, ``licences.holder_links``, ``licences.presentation``,
``licences.stamped``); this module gives each holder action its transaction and its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock
from core.db import reading, transaction
from core.errors import Conflict
from licences.grants import HolderKey
from licences.holder_links import HolderLink, HolderLinks, LinkOwner, LinkStatus, link_status
from licences.holders import Holders
from licences.lifecycle import parse_identifier
from licences.models import Holder, Licence, LicenceType
from licences.presentation import (
    ItemChoice,
    Presentation,
    PresentationService,
    service_item_choices,
)
from licences.repository import (
    LicenceRecord,
    document,
    full_record,
    holder_licence,
    licences_of_holder,
)
from licences.stamped import StampedCopies, StampRequest
from licences.stamped_records import StampedCopy
from seals.models import Department


@dataclass(frozen=True)
class OwnLicence:
    """One of the holder's licences with its purpose-stamped copies (newest first, no PDFs)."""

    record: LicenceRecord
    copies: list[StampedCopy]


@dataclass(frozen=True)
class LicenceFile:
    """A sealed PDF to download: its file name (without ``.pdf``), digest and bytes."""

    name: str
    sha256: str
    pdf: bytes


@dataclass(frozen=True)
class Presenting:
    """The holder's present page: the licence, and a fresh code or why there is none; the
    service items a code may authorise, and the one chosen (None: show only)."""

    record: LicenceRecord
    presentation: Presentation | None
    refused: str  # the reason when the licence cannot be presented now, else ""
    choices: tuple[ItemChoice, ...] = ()
    service_item: str | None = None


@dataclass(frozen=True)
class LinkView:
    """A holder link as its holder sees it. The secret is not stored, so it is never shown;
    ``id`` only tells links apart."""

    id: str
    identifier: str
    type_name: str
    issuer_name: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    status: LinkStatus


class HolderDesk:
    """The signed-in holder's licences, copies, presentation codes and links."""

    def __init__(
        self,
        *,
        engine: Engine,
        audit: AuditLog,
        clock: Clock,
        presentations: PresentationService,
        stamped: StampedCopies,
        holders: Holders,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock
        self._links = HolderLinks(audit, clock)
        self._presentations = presentations
        self._stamped = stamped
        self._holders = holders

    @property
    def ttl_seconds(self) -> int:
        """How long a presentation code lives."""
        return int(self._presentations.ttl.total_seconds())

    # Licences and copies -----------------------------------------------------------------------

    def licences(self, holder: HolderKey) -> list[LicenceRecord]:
        """Every licence (each version) issued to the holder, newest first."""
        with reading(self._engine) as session:
            rows = licences_of_holder(session, holder.id_type, holder.id_number)
            return [full_record(session, licence) for licence in rows]

    def licence(self, holder: HolderKey, identifier: str) -> OwnLicence:
        """One of the holder's licences and its stamped copies (422 for a malformed
        identifier, 404 for another's or none)."""
        with reading(self._engine) as session:
            record = own_record(session, holder, identifier)
            copies = self._stamped.of_licence(session, record.licence.identifier)
            return OwnLicence(record, copies)

    def licence_pdf(self, holder: HolderKey, identifier: str) -> LicenceFile:
        """The holder's own sealed licence."""
        with reading(self._engine) as session:
            licence = own_record(session, holder, identifier).licence
            data = document(session, licence.identifier)
        name = f"{licence.serial}-{licence.version:03d}"
        return LicenceFile(name=name, sha256=licence.sha256, pdf=data)

    def copy_pdf(self, holder: HolderKey, copy_id: str) -> LicenceFile:
        """One of the holder's stamped copies (404 for another's or none)."""
        with reading(self._engine) as session:
            copy = self._stamped.get(session, copy_id, holder.id_type, holder.id_number)
        return LicenceFile(name=f"stamped-{copy.id}", sha256=copy.sha256, pdf=copy.pdf)

    def copy_url(self, copy: StampedCopy) -> str:
        """Where a stamped copy is verified (its QR)."""
        return self._stamped.verify_url(copy)

    def stamp(
        self,
        holder: HolderKey,
        identifier: str,
        *,
        purpose: str | None,
        service_item: str | None,
        request_id: str,
    ) -> StampedCopy:
        """A purpose-stamped copy of the holder's licence, rendered from the repository and
        sealed by the issuing department (``licences.stamped``)."""
        with reading(self._engine) as session:
            licence_id = own_record(session, holder, identifier).licence.identifier
        return self._stamped.create(
            StampRequest(
                identifier=licence_id,
                id_type=holder.id_type,
                id_number=holder.id_number,
                actor=holder.actor,
                purpose=purpose,
                service_item=service_item,
                request_id=request_id,
            )
        )

    # Presentation codes ------------------------------------------------------------------------

    def present(
        self,
        holder: HolderKey,
        identifier: str,
        *,
        request_id: str,
        service_item: str | None = None,
    ) -> Presentation:
        """A presentation code for the holder's own licence (409 when it is not valid now); with
        ``service_item``, a use authorisation code for that item (422 for an item the type does
        not declare)."""
        with transaction(self._engine) as session:
            record = own_record(session, holder, identifier)
            return self._presentations.mint(
                session,
                record.licence.identifier,
                actor=holder.actor,
                request_id=request_id,
                service_item=service_item,
            )

    def present_page(
        self,
        holder: HolderKey,
        identifier: str,
        *,
        request_id: str,
        service_item: str | None = None,
    ) -> Presenting:
        """The present page: the licence, the service items a code may authorise, and a code
        (for ``service_item``, or show only), or the reason it cannot be presented."""
        with transaction(self._engine) as session:
            record = own_record(session, holder, identifier)
            choices = tuple(service_item_choices(record.licence_type))
            try:
                presentation = self._presentations.mint(
                    session,
                    record.licence.identifier,
                    actor=holder.actor,
                    request_id=request_id,
                    service_item=service_item,
                )
            except Conflict as exc:
                return Presenting(record, None, exc.message, choices)
            return Presenting(record, presentation, "", choices, presentation.service_item)

    # Holder links ------------------------------------------------------------------------------

    def links(self, holder: HolderKey) -> list[LinkView]:
        """The links made for the holder's licences, newest first."""
        with reading(self._engine) as session:
            now = self._clock.now()
            rows = self._links.of_holder(session, _owner(holder))
            return [link_view(session, link, now) for link in rows]

    def revoke_link(self, holder: HolderKey, link_id: str, *, request_id: str) -> LinkView:
        """Revoke one of the holder's links (404 for another's, 409 when already revoked or
        expired); ``holder_link.revoke`` is audited in the same transaction."""
        with transaction(self._engine) as session:
            link = self._links.revoke(session, _owner(holder), link_id, request_id=request_id)
            return link_view(session, link, self._clock.now())

    # Sign-in and the operator's corrections ----------------------------------------------------

    def record_sign_in(
        self,
        *,
        action: str,
        actor: str,
        object_id: str,
        request_id: str,
        outcome: str = "ok",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """A sign-in, failed sign-in or sign-out on the audit chain (``holder.sign_in``,
        ``holder.sign_out``), in a transaction of its own."""
        with transaction(self._engine) as session:
            self._audit.append(
                session,
                actor=actor,
                action=action,
                object_type="holder",
                object_id=object_id[:128],
                outcome=outcome,
                request_id=request_id,
                detail=detail,
            )

    def rename(self, *, id_type: str, id_number: str, name: str, actor: str) -> Holder:
        """The operator corrects a holder's registered name (``holder.rename`` audited); the
        operator acts for the whole domain, so no scope is checked."""
        with transaction(self._engine) as session:
            return self._holders.rename(
                session, id_type=id_type, id_number=id_number, name=name, allows=None, actor=actor
            )


def own_record(session: Session, holder: HolderKey, identifier: str) -> LicenceRecord:
    """The holder's licence (422 for a malformed identifier, 404 for another's or none)."""
    licence = holder_licence(
        session, parse_identifier(identifier), holder.id_type, holder.id_number
    )
    return full_record(session, licence)


def link_view(session: Session, link: HolderLink, now: datetime) -> LinkView:
    """A link with its licence's type and issuer names, and its status at ``now``."""
    licence = session.get(Licence, link.identifier)
    entry = session.get(LicenceType, licence.type_code) if licence is not None else None
    issuer = session.get(Department, licence.issuer_code) if licence is not None else None
    return LinkView(
        id=link.id,
        identifier=link.identifier,
        type_name=entry.name if entry is not None else "",
        issuer_name=issuer.name if issuer is not None else "",
        created_at=link.created_at,
        expires_at=link.expires_at,
        revoked_at=link.revoked_at,
        status=link_status(link, now),
    )


def _owner(holder: HolderKey) -> LinkOwner:
    return LinkOwner(id_type=holder.id_type, id_number=holder.id_number, actor=holder.actor)
