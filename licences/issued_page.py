"""From a checked draft to what is sealed and stored: the page a licence prints, its QR code and
the row that records it.

``licences.issuance`` checks a request into a ``Draft`` (read-only), then renders and seals the
page these functions describe, then stores the row. They are pure functions of the draft, the
moment of issue and the verification code, so the page checked for fit at ``prepare`` and the
page sealed at ``render_and_seal`` print exactly the same things.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from core.clock import china_today
from licences.catalogue_rules import field_layout
from licences.identifiers import LicenceIdentifier
from licences.layout import Layout, layout_of
from licences.links import new_verify_code
from licences.models import HolderCategory, Licence, LicenceType
from licences.photos import Photo
from licences.qrkeys import LicenceCodes
from licences.render import LicenceView
from licences.validity import chinese_date
from seals.issuing_seal import SealContext


@dataclass(frozen=True)
class Draft:
    """A licence checked against the catalogue and ready to be rendered; nothing is written."""

    entry: LicenceType
    identifier: LicenceIdentifier
    department_code: str
    holder_id_type: str
    holder_id: str
    holder_name: str
    fields: dict[str, Any]
    valid_from: date
    valid_until: date | None
    context: SealContext
    previous: str | None = None
    status_index: int | None = None  # its entry in the status list (licences.status_index)
    photo: Photo | None = None  # the holder's photo, re-encoded (licences.photos)

    @property
    def layout(self) -> Layout | None:
        """The type's page template, None for the default page (``licences.layout``)."""
        return layout_of(self.entry.layout, self.entry.field_schema["properties"])


def page_view(draft: Draft, issued_at: datetime, url: str) -> LicenceView:
    """What the page prints for ``draft``."""
    entry, identifier = draft.entry, draft.identifier
    is_person = entry.holder_category == HolderCategory.NATURAL_PERSON.value
    properties: dict[str, Any] = entry.field_schema["properties"]
    return LicenceView(
        title=entry.name,
        title_en=entry.name_en,
        identifier=str(identifier),
        holder_label="持证人" if is_person else "持证主体",
        holder_name=draft.holder_name,
        holder_id=draft.holder_id,
        fields=field_layout(entry, draft.fields),
        issuer_name=draft.context.department.name,
        issue_date=chinese_date(china_today(issued_at)),
        valid_from=chinese_date(draft.valid_from),
        valid_until=chinese_date(draft.valid_until) if draft.valid_until else None,
        verify_url=url,
        version=identifier.version,
        # the names of field_layout's rows, in its order
        field_names=tuple(n for n in properties if draft.fields.get(n) not in (None, "")),
    )


def verification_code(qr_codes: LicenceCodes | None, draft: Draft, issued_at: datetime) -> str:
    """The signed QR payload (``licences.payload``), known before the page is sealed; a random
    code when the domain signs no QR payloads."""
    if qr_codes is None:
        return new_verify_code()
    return qr_codes.licence_code(
        identifier=str(draft.identifier),
        type_code=draft.entry.code,
        issuer_code=draft.department_code,
        holder_id_type=draft.holder_id_type,
        holder_id=draft.holder_id,
        fields=draft.fields,
        valid_from=draft.valid_from,
        valid_until=draft.valid_until,
        issued_at=issued_at,
        actor=f"department:{draft.department_code}",
        status_index=draft.status_index,
        photo_sha256=draft.photo.sha256 if draft.photo else None,
    )


def licence_row(draft: Draft, *, issued_at: datetime, code: str, sha256: str) -> Licence:
    """The licence's row for the sealed page; the holder's row id is set when it is stored."""
    entry, identifier, seal = draft.entry, draft.identifier, draft.context.seal
    return Licence(
        identifier=str(identifier),
        type_code=entry.code,
        issuer_code=draft.department_code,
        serial=identifier.serial,
        version=int(identifier.version),
        holder_id=0,
        fields=draft.fields,
        valid_from=draft.valid_from,
        valid_until=draft.valid_until,
        issued_at=issued_at,
        verify_code=code,
        sha256=sha256,
        seal_code=seal.code,
        seal_certificate_serial=seal.certificate_serial,
        type_version=entry.version,
        previous=draft.previous,
        holder_name=draft.holder_name,  # as printed: later corrections never change it
        status_index=draft.status_index,
    )
