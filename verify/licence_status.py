"""The signed licence-status answer this domain gives to other trust domains
(``GET /pki/licence-status/{key}``).

Another domain verifying one of our licences asks for its current status by the SHA-256 of the
PDF or by the GB/T 36904 identifier, with a nonce. The answer says what this domain knows now —
the licence as the verification page shows it (personal data masked), its seal, the digest of
its record — and is signed with the trust-list key (``trust.federation_jws``), so the asking
domain checks it against the fingerprint it pinned. The signature's key use and the
``licence.status_query`` entry are written in the answer's one transaction.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.db import as_utc, transaction
from keys.audit import AuditedKeyUse
from licences.identifiers import LicenceIdentifier
from licences.models import Licence
from licences.qrkeys import digest_of
from licences.repository import full_record, licence_by_sha256
from trust.authority import TrustDomain
from trust.federation_jws import STATUS_FORMAT, STATUS_TYPE, sign_document
from trust.profiles import Endpoints
from verify.summary import licence_summary, seal_summary

SHA256 = re.compile(r"[0-9a-f]{64}")
STATUS_ACTOR = "public:licence-status"


class LicenceStatusDesk:
    """Answers other domains' status queries, each in its own transaction."""

    def __init__(
        self,
        *,
        engine: Engine,
        trust: TrustDomain,
        audit: AuditLog,
        clock: Clock,
        endpoints: Endpoints,
    ) -> None:
        self._engine = engine
        self._trust = trust
        self._audit = audit
        self._clock = clock
        self._endpoints = endpoints

    def answer(self, key: str, nonce: str | None, request_id: str | None = None) -> dict[str, Any]:
        """The signed answer for ``key`` (a PDF's SHA-256 or a licence identifier; a malformed
        identifier is a 422 naming the broken rule), audited as ``licence.status_query``."""
        with transaction(self._engine) as session:
            body = self.body(session, key, nonce)
            listener = AuditedKeyUse(self._audit, session, STATUS_ACTOR, request_id)
            signed = sign_document(
                self._trust,
                session,
                body,
                typ=STATUS_TYPE,
                purpose="licence-status",
                listener=listener,
            )
            licence = body["licence"]
            self._audit.append(
                session,
                actor=STATUS_ACTOR,
                action="licence.status_query",
                object_type="licence",
                object_id=licence["identifier"] if licence else f"unknown:{key}"[:128],
                outcome=licence["status"] if licence else "unknown",
                request_id=request_id,
                detail={"by": "sha256" if SHA256.fullmatch(key) else "identifier"},
            )
        return signed

    def body(self, session: Session, key: str, nonce: str | None) -> dict[str, Any]:
        """The unsigned answer: what the issuing domain knows about the licence now."""
        now = self._clock.now()
        identity = self._trust.identity
        body: dict[str, Any] = {
            "format": STATUS_FORMAT,
            "domain": {
                "name": identity.name,
                "organisation": identity.organisation,
                "base_url": self._endpoints.base_url,
                "trust_list_url": self._endpoints.trust_list,
            },
            "query": key,
            "nonce": nonce,
            "produced_at": as_utc(now).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "found": False,
            "licence": None,
            "seal": None,
        }
        licence = _find(session, key)
        if licence is None:
            return body
        record = full_record(session, licence)
        summary = asdict(licence_summary(record, china_today(now)))
        seal = asdict(seal_summary(record, None))
        seal.pop("signing_time", None)
        seal.pop("timestamp", None)
        body.update(
            found=True,
            licence={
                **summary,
                "sha256": licence.sha256,
                "record_digest": digest_of(record).hex(),
                "seal_certificate_serial": seal["certificate_serial"],
            },
            seal=seal,
        )
        return body


def _find(session: Session, key: str) -> Licence | None:
    if SHA256.fullmatch(key):
        return licence_by_sha256(session, key)
    identifier = str(LicenceIdentifier.parse(key))  # 422 naming the broken rule
    return session.get(Licence, identifier)
