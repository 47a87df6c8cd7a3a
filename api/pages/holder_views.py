"""What a signed-in holder sees of their own licences, shared by the pages (``api.pages.holder``)
and the JSON API for holder apps (``api.pages.holder_api``).

A holder sees their own data whole — name and ID number are theirs — except the page header,
which shows the masked name (``api.holder_session.page_context``): a screen is read over the
shoulder. Nothing here is read from a document; everything comes from the repository.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Response
from sqlmodel import Session

from api.edge.holder_session import HolderPrincipal
from api.pages.verify import beijing
from core.clock import china_today
from core.db import reading, transaction
from licences.catalogue import field_layout
from licences.holder_links import HolderLink, HolderLinks, LinkOwner, link_status
from licences.lifecycle import parse_identifier
from licences.models import Licence, LicenceStatus, LicenceType
from licences.presentation import Presentation
from licences.qr import qr_svg_data_uri
from licences.repository import (
    LicenceRecord,
    document,
    effective_status,
    full_record,
    holder_licence,
    licences_of_holder,
)
from licences.stamped import StampedCopies
from licences.stamped_records import StampedCopy
from seals.models import Department


def own_record(session: Session, principal: HolderPrincipal, identifier: str) -> LicenceRecord:
    """The holder's licence (422 for a malformed identifier, 404 for another's or none)."""
    licence = holder_licence(
        session, parse_identifier(identifier), principal.id_type, principal.id_number
    )
    return full_record(session, licence)


def licence_json(record: LicenceRecord, now: datetime, *, detail: bool = False) -> dict[str, Any]:
    licence = record.licence
    status = effective_status(licence, china_today(now))
    base = f"/api/v1/holder/licences/{licence.identifier}"
    body: dict[str, Any] = {
        "identifier": licence.identifier,
        "type_code": record.licence_type.code,
        "type_name": record.licence_type.name,
        "type_name_en": record.licence_type.name_en,
        "issuer_code": record.issuer.code,
        "issuer_name": record.issuer.name,
        "holder_name": record.holder.name,
        "holder_id_type": record.holder.id_type,
        "holder_id": record.holder.id_number,
        "valid_from": licence.valid_from.isoformat(),
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
        "issued_at": licence.issued_at.isoformat(),
        "status": status.value,
        "status_label": status.label,
        "version": licence.version,
        "links": {
            "self": base,
            "pdf": f"{base}/pdf",
            "presentations": f"{base}/presentations",
            "stamped_copies": f"{base}/stamped-copies",
            "page": f"/me/licences/{licence.identifier}",
        },
    }
    if detail:
        body["fields"] = [
            {"label": label, "value": value}
            for label, value in field_layout(record.licence_type, licence.fields)
        ]
        body["service_items"] = list(record.licence_type.service_items)
    return body


def my_licences(session: Session, principal: HolderPrincipal) -> list[LicenceRecord]:
    rows: list[Licence] = licences_of_holder(session, principal.id_type, principal.id_number)
    return [full_record(session, licence) for licence in rows]


def is_valid(record: LicenceRecord, now: datetime) -> bool:
    return effective_status(record.licence, china_today(now)) is LicenceStatus.VALID


def copy_json(copy: StampedCopy, stamped: StampedCopies) -> dict[str, Any]:
    return {
        "id": copy.id,
        "identifier": copy.identifier,
        "licence_version": copy.licence_version,
        "purpose": copy.purpose,
        "service_item": copy.service_item,
        "stamp_text": copy.stamp_text,
        "created_at": copy.created_at.isoformat(),
        "sha256": copy.sha256,
        "verify_url": stamped.verify_url(copy),
        "links": {"pdf": f"/api/v1/holder/stamped-copies/{copy.id}/pdf"},
    }


def presentation_json(presentation: Presentation, now: datetime) -> dict[str, Any]:
    """The same shape as the holder-link page's refresh answer, which ``present.js`` reads."""
    return {
        "identifier": presentation.identifier,
        "qr": presentation.url,
        "qr_svg": qr_svg_data_uri(presentation.url),
        "presented_at": presentation.presented_at.isoformat(),
        "expires_at": presentation.expires_at.isoformat(),
        "expires_at_local": beijing(presentation.expires_at),
        "expires_in": max(0, int((presentation.expires_at - now).total_seconds())),
    }


def pdf_headers(name: str, sha256: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{name}.pdf"',
        "X-Content-SHA256": sha256,
        "Cache-Control": "no-store",
    }


def mint(
    session: Session, services: Any, holder: HolderPrincipal, identifier: str, request_id: str
) -> Presentation:
    """A presentation code for the holder's own licence, for the JSON answers (Conflict when
    it is not valid now)."""
    record = own_record(session, holder, identifier)
    presentation: Presentation = services.presentations.mint(
        session, record.licence.identifier, actor=holder.actor, request_id=request_id
    )
    return presentation


def licence_pdf(services: Any, holder: HolderPrincipal, identifier: str) -> Response:
    """The holder's own sealed licence as a download."""
    with reading(services.engine) as session:
        record = own_record(session, holder, identifier)
        data = document(session, record.licence.identifier)
    licence = record.licence
    name = f"{licence.serial}-{licence.version:03d}"
    return Response(data, media_type="application/pdf", headers=pdf_headers(name, licence.sha256))


def stamped_pdf(services: Any, holder: HolderPrincipal, copy_id: str) -> Response:
    """One of the holder's stamped copies as a download."""
    with reading(services.engine) as session:
        copy = services.stamped.get(session, copy_id, holder.id_type, holder.id_number)
    return Response(
        copy.pdf,
        media_type="application/pdf",
        headers=pdf_headers(f"stamped-{copy.id}", copy.sha256),
    )


def link_owner(holder: HolderPrincipal) -> LinkOwner:
    return LinkOwner(id_type=holder.id_type, id_number=holder.id_number, actor=holder.actor)


def links_service(services: Any) -> HolderLinks:
    return HolderLinks(services.audit, services.clock)


def link_json(session: Session, link: HolderLink, now: datetime) -> dict[str, Any]:
    """A holder link as its holder sees it: which licence, who made it, until when, and its
    status. The secret is not stored, so it is never shown; ``id`` only tells links apart."""
    licence = session.get(Licence, link.identifier)
    entry = session.get(LicenceType, licence.type_code) if licence is not None else None
    issuer = session.get(Department, licence.issuer_code) if licence is not None else None
    status = link_status(link, now)
    return {
        "id": link.id,
        "identifier": link.identifier,
        "type_name": entry.name if entry is not None else "",
        "issuer_name": issuer.name if issuer is not None else "",
        "created_at": link.created_at.isoformat(),
        "expires_at": link.expires_at.isoformat(),
        "revoked_at": link.revoked_at.isoformat() if link.revoked_at else None,
        "status": status.value,
        "status_label": status.label,
        "links": {"revoke": f"/api/v1/holder/links/{link.id}"},
    }


def my_links(session: Session, services: Any, holder: HolderPrincipal) -> list[dict[str, Any]]:
    now = services.clock.now()
    rows = links_service(services).of_holder(session, link_owner(holder))
    return [link_json(session, link, now) for link in rows]


def revoke_link(
    services: Any, holder: HolderPrincipal, link_id: str, request_id: str
) -> dict[str, Any]:
    """Revoke one of the holder's links (404 for another's, 409 when already revoked or expired)."""
    with transaction(services.engine) as session:
        link = links_service(services).revoke(
            session, link_owner(holder), link_id, request_id=request_id
        )
        return link_json(session, link, services.clock.now())
