"""What a signed-in holder sees of their own licences, shared by the pages (``api.pages.holder``)
and the JSON API for holder apps (``api.pages.holder_api``): the answers' shapes only; the
reads and writes are ``licences.holder_desk``'s.

A holder sees their own data whole — name and ID number are theirs — except the page header,
which shows the masked name (``api.edge.holder_session.page_context``): a screen is read over
the shoulder. Nothing here is read from a document; everything comes from the repository.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Response

from api.edge.holder_session import HolderPrincipal
from api.pages.verify import beijing
from core.clock import china_today
from core.errors import NotFound
from licences.catalogue_rules import field_layout
from licences.grants import HolderKey
from licences.holder_desk import HolderDesk, LicenceFile, LinkView
from licences.ofd_desk import OfdDesk, OfdFile
from licences.ofd_issue import MEDIA_TYPE as OFD_MEDIA_TYPE
from licences.presentation import Presentation
from licences.qr import qr_svg_data_uri
from licences.repository import LicenceRecord, effective_status
from licences.stamped_records import StampedCopy
from supervision.expiry_policy import ExpiryNotice, ExpiryPolicy, expiry_notice


def holder_key(holder: HolderPrincipal) -> HolderKey:
    """The signed-in holder as the domain knows them."""
    return HolderKey(id_type=holder.id_type, id_number=holder.id_number, actor=holder.actor)


def licence_json(
    record: LicenceRecord,
    now: datetime,
    *,
    detail: bool = False,
    expiry: ExpiryPolicy | None = None,
) -> dict[str, Any]:
    """``expiry``: with the platform's reminder policy, ``expiry_notice`` says whether the
    licence is within its reminder window or expired, from today's China date (never from
    whether the daily scan has run)."""
    licence = record.licence
    today = china_today(now)
    status = effective_status(licence, today)
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
    if expiry is not None:
        notice = expiry_notice(
            stored_status=licence.status,
            valid_until=licence.valid_until,
            today=today,
            reminder_days=expiry.reminder_days_for(licence.type_code),
        )
        body["expiry_notice"] = None if notice is None else notice_json(notice)
    if detail:
        body["fields"] = [
            {"label": label, "value": value}
            for label, value in field_layout(record.licence_type, licence.fields)
        ]
        body["service_items"] = list(record.licence_type.service_items)
    return body


def notice_json(notice: ExpiryNotice) -> dict[str, Any]:
    return {
        "kind": notice.kind,
        "days_left": notice.days_left,
        "valid_until": notice.valid_until.isoformat(),
        "text": notice.text,
    }


def copy_json(copy: StampedCopy, desk: HolderDesk) -> dict[str, Any]:
    return {
        "id": copy.id,
        "identifier": copy.identifier,
        "licence_version": copy.licence_version,
        "purpose": copy.purpose,
        "service_item": copy.service_item,
        "stamp_text": copy.stamp_text,
        "created_at": copy.created_at.isoformat(),
        "sha256": copy.sha256,
        "verify_url": desk.copy_url(copy),
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


def pdf_response(found: LicenceFile) -> Response:
    """A sealed PDF as a download, with its digest."""
    headers = {
        "Content-Disposition": f'attachment; filename="{found.name}.pdf"',
        "X-Content-SHA256": found.sha256,
        "Cache-Control": "no-store",
    }
    return Response(found.pdf, media_type="application/pdf", headers=headers)


def ofd_desk(desk: OfdDesk | None) -> OfdDesk:
    """The service's OFD desk; a graph built without one keeps no OFD documents (404)."""
    if desk is None:
        raise NotFound("本服务不提供 OFD 文件 / this service keeps no OFD documents")
    return desk


def ofd_response(found: OfdFile) -> Response:
    """A sealed OFD as a download, with its digest."""
    headers = {
        "Content-Disposition": f'attachment; filename="{found.name}.ofd"',
        "X-Content-SHA256": found.sha256,
        "Cache-Control": "no-store",
    }
    return Response(found.ofd, media_type=OFD_MEDIA_TYPE, headers=headers)


def link_json(link: LinkView) -> dict[str, Any]:
    """A holder link as its holder sees it: which licence, who made it, until when, and its
    status. The secret is not stored, so it is never shown; ``id`` only tells links apart."""
    return {
        "id": link.id,
        "identifier": link.identifier,
        "type_name": link.type_name,
        "issuer_name": link.issuer_name,
        "created_at": link.created_at.isoformat(),
        "expires_at": link.expires_at.isoformat(),
        "revoked_at": link.revoked_at.isoformat() if link.revoked_at else None,
        "status": link.status.value,
        "status_label": link.status.label,
        "links": {"revoke": f"/api/v1/holder/links/{link.id}"},
    }
