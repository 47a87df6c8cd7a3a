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
from licences.links import verify_url
from licences.models import LicenceStatus
from licences.payload import Claims, PayloadType
from licences.qrkeys import QrKeys, digest_of
from licences.repository import effective_status, full_record, licence_by_identifier

NONCE_BYTES = 8


@dataclass(frozen=True)
class Presentation:
    identifier: str
    code: str  # base32 COSE_Sign1
    url: str  # what the QR on the holder's screen holds
    presented_at: datetime
    expires_at: datetime


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
        self, session: Session, identifier: str, *, actor: str, request_id: str | None = None
    ) -> Presentation:
        """A fresh presentation code; call inside a write transaction (it appends audit entries)."""
        licence = licence_by_identifier(session, identifier)
        now = self._clock.now()
        status = effective_status(licence, china_today(now))
        if status is not LicenceStatus.VALID:
            raise Conflict(
                f"证照当前状态为{status.label}，不能出示 / the licence is {status.value}; "
                "only a valid licence can be presented",
                field="identifier",
            )
        presented_at = now.replace(microsecond=0)
        claims = Claims(
            type=PayloadType.PRESENTATION,
            identifier=identifier,
            record_digest=digest_of(full_record(session, licence)),
            valid_until=licence.valid_until,
            issued_at=presented_at,
            expires_at=presented_at + self.ttl,
            nonce=secrets.token_bytes(NONCE_BYTES),
        )
        listener = AuditedKeyUse(self._audit, session, actor, request_id)
        code = self._keys.sign(claims, purpose="qr-presentation", listener=listener)
        assert claims.expires_at is not None
        self._audit.append(
            session,
            actor=actor,
            action="licence.present",
            object_type="licence",
            object_id=identifier,
            request_id=request_id,
            detail={"expires_at": claims.expires_at.isoformat()},
        )
        return Presentation(
            identifier=identifier,
            code=code,
            url=verify_url(self._base_url, code),
            presented_at=presented_at,
            expires_at=claims.expires_at,
        )
