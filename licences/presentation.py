"""Short-lived presentation codes, and the holder links that may ask for them.

A citizen shows a licence at a counter from a phone. The printed QR would do, but a photo of it
works for ever; a presentation code is a signed payload (``licences.payload``, type
PRESENTATION) that expires a few minutes after it is minted, so a screenshot cannot be shown
again later. It is minted only for a licence that is valid at that moment.

Who may mint one, until holders sign in (OIDC, a later issue):

* the issuing department, with its API key (e.g. for its own app that shows the licence);
* whoever holds a **holder link** (``licences.holder_links``): a random secret the issuing
  department creates for the holder and hands over with the licence. Only its SHA-256 is
  stored; it names one licence, expires, and the holder can list and revoke it. The link opens
  ``/h/present/<secret>``, a page that shows a fresh code;
* the signed-in holder, for their own licence.

Every code minted is remembered by its nonce (``licences.use_code_records``), in the mint's
transaction. The signed-in holder may make the code a **use authorisation code** (用证授权码) for
one of the service items the licence's type declares: the first department whose counter system
scans it within its lifetime gets the fields that item needs (``licences.use_codes``). Codes
minted by the issuing department or with a holder link are show-only: consenting to a
department's use of the licence is the holder's own act, and only the holder's session
authenticates the holder (a link is a bearer secret the issuer handed over; the issuer minting
for a holder would be the issuer consenting on the holder's behalf).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.errors import Conflict, InvalidInput
from keys.audit import AuditedKeyUse
from licences.catalogue_rules import fields_for_service_item
from licences.links import verify_url
from licences.models import LicenceStatus, LicenceType
from licences.payload import Claims, PayloadType
from licences.qrkeys import QrKeys, digest_of
from licences.repository import effective_status, full_record, licence_by_identifier
from licences.use_code_records import PresentationUse

NONCE_BYTES = 8
SHOW_ONLY = "仅出示 / show only"


@dataclass(frozen=True)
class ItemChoice:
    """A service item a presentation code may authorise: its code and the titles of the fields
    the department would get."""

    code: str
    titles: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"事项 {self.code}：{'、'.join(self.titles)}"


def service_item_choices(entry: LicenceType) -> list[ItemChoice]:
    """The service items the licence type declares fields for, in code order: the holder's
    choices besides "show only"."""
    properties = entry.field_schema.get("properties", {})
    choices = []
    for item in sorted(entry.service_item_fields):
        needed = fields_for_service_item(entry, item)
        if needed:
            titles = tuple(str(properties[n].get("title", n)) for n in needed)
            choices.append(ItemChoice(item, titles))
    return choices


def check_service_item(entry: LicenceType, service_item: str | None) -> str | None:
    """The service item a code is to authorise, or None for show only ("" too); 422
    ``service_item`` for one the licence's type declares no fields for."""
    if not service_item:
        return None
    if service_item not in {choice.code for choice in service_item_choices(entry)}:
        declared = ", ".join(choice.code for choice in service_item_choices(entry))
        raise InvalidInput(
            f"此类证照未声明事项 {service_item[:64]} 所需字段 / the licence type declares no "
            f"fields for service item {service_item[:64]} (declared: {declared or 'none'})",
            field="service_item",
        )
    return service_item


@dataclass(frozen=True)
class Presentation:
    identifier: str
    code: str  # base32 COSE_Sign1
    url: str  # what the QR on the holder's screen holds
    presented_at: datetime
    expires_at: datetime
    service_item: str | None = None  # the item it authorises; None: show only


class PresentationService:
    def __init__(
        self,
        *,
        keys: QrKeys,
        clock: Clock,
        audit: AuditLog,
        ttl: timedelta,
        public_base_url: str,
    ) -> None:
        if not timedelta(seconds=30) <= ttl <= timedelta(hours=1):
            raise InvalidInput(
                "出示码有效期须在30秒至1小时之间 / the presentation lifetime must be 30 s to 1 h",
                field="presentation_ttl_seconds",
            )
        self._keys = keys
        self._clock = clock
        self._audit = audit
        self.ttl = ttl
        self._base_url = public_base_url

    def mint(
        self,
        session: Session,
        identifier: str,
        *,
        actor: str,
        request_id: str | None = None,
        service_item: str | None = None,
    ) -> Presentation:
        """A fresh presentation code, remembered by its nonce; with ``service_item`` (the
        signed-in holder's choice, checked against the type's declared items) a use
        authorisation code for that item. Call inside a write transaction (it appends audit
        entries and the nonce's row)."""
        licence = licence_by_identifier(session, identifier)
        now = self._clock.now()
        status = effective_status(licence, china_today(now))
        if status is not LicenceStatus.VALID:
            raise Conflict(
                f"证照当前状态为{status.label}，不能出示 / the licence is {status.value}; "
                "only a valid licence can be presented",
                field="identifier",
            )
        record = full_record(session, licence)
        item = check_service_item(record.licence_type, service_item)
        presented_at = now.replace(microsecond=0)
        claims = Claims(
            type=PayloadType.PRESENTATION,
            identifier=identifier,
            record_digest=digest_of(record),
            valid_until=licence.valid_until,
            issued_at=presented_at,
            expires_at=presented_at + self.ttl,
            nonce=secrets.token_bytes(NONCE_BYTES),
        )
        listener = AuditedKeyUse(self._audit, session, actor, request_id)
        code = self._keys.sign(claims, purpose="qr-presentation", listener=listener)
        assert claims.expires_at is not None and claims.nonce is not None
        session.add(
            PresentationUse(
                nonce=claims.nonce.hex(),
                identifier=identifier,
                service_item=item,
                minted_by=actor[:128],
                presented_at=presented_at,
                expires_at=claims.expires_at,
            )
        )
        self._audit.append(
            session,
            actor=actor,
            action="licence.present",
            object_type="licence",
            object_id=identifier,
            request_id=request_id,
            detail={"expires_at": claims.expires_at.isoformat(), "service_item": item},
        )
        return Presentation(
            identifier=identifier,
            code=code,
            url=verify_url(self._base_url, code),
            presented_at=presented_at,
            expires_at=claims.expires_at,
            service_item=item,
        )
