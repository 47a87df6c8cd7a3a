"""The public PKI endpoints' work, one transaction per answer: CA certificates, CRLs, OCSP
(RFC 6960), time-stamps (RFC 3161) and the signed trust list.

Every OCSP response, time-stamp and newly published trust list is a key use, so each answer
that signs is made inside a transaction that also writes its ``key.sign`` audit entry under the
public actor (``public:ocsp``, ``public:tsa``, ``public:trust-list``). A CRL or trust list that
is due is published by the request that finds it due, hence transactions for those reads too.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from core.audit import AuditLog
from core.db import reading, transaction
from keys.audit import AuditedKeyUse
from trust.authority import TrustDomain
from trust.ocsp import OcspResponder
from trust.sm2_ocsp import Sm2OcspResponder
from trust.sm2_pki import SM2_CA_NAMES
from trust.sm2_trustlist import ca_entries
from trust.trustlist import TrustListPublisher
from trust.tsa import TimeStampAuthority


class PkiDesk:
    """What relying parties fetch from ``/pki``, each call its own transaction."""

    def __init__(
        self,
        *,
        engine: Engine,
        trust: TrustDomain,
        audit: AuditLog,
        ocsp: OcspResponder,
        tsa: TimeStampAuthority,
        trust_list: TrustListPublisher,
    ) -> None:
        self._engine = engine
        self._trust = trust
        self._audit = audit
        self._ocsp = ocsp
        self._tsa = tsa
        self._trust_list = trust_list
        self._sm2_ocsp = Sm2OcspResponder(trust.sm2)  # the national form's SM2 CAs

    def ca_certificate(self, name: str) -> bytes:
        """The DER certificate of the CA ``name`` (404 for an unknown CA)."""
        with transaction(self._engine) as session:
            if name in SM2_CA_NAMES:
                return self._trust.sm2.ca_certificate_der(session, name)
            certificate, _ = self._trust.authority(session, name)
        return certificate.public_bytes(serialization.Encoding.DER)

    def sm2_authorities(self) -> list[dict[str, Any]]:
        """The SM2 root and seal CA (``elicence trust sm2``); empty without an SM2 hierarchy."""
        with reading(self._engine) as session:
            if not self._trust.sm2.is_initialised(session):
                return []
            return ca_entries(self._trust.sm2, session)

    def crl(self, name: str) -> bytes:
        """The CA's current DER CRL, issued anew when none is current."""
        with transaction(self._engine) as session:
            if name in SM2_CA_NAMES:
                return self._trust.sm2.crl(session, name)
            return self._trust.revocation.crl(session, name)

    def ocsp(self, request_der: bytes, request_id: str | None = None) -> bytes:
        """A DER OCSPResponse; a malformed request gets an unsuccessful response, not an error."""
        with transaction(self._engine) as session:
            listener = AuditedKeyUse(self._audit, session, "public:ocsp", request_id)
            sm2 = self._sm2_ocsp.respond(session, request_der, listener)
            if sm2 is not None:  # a request about an SM2 CA's certificate
                return sm2
            return self._ocsp.respond(session, request_der, listener)

    def timestamp(self, request_der: bytes, request_id: str | None = None) -> bytes:
        """A DER TimeStampResp; refusals are TimeStampResp too."""
        with transaction(self._engine) as session:
            unit = self._tsa.unit(session)
            listener = AuditedKeyUse(self._audit, session, "public:tsa", request_id)
            return unit.respond_der(request_der, listener)

    def trust_list(self, request_id: str | None = None) -> dict[str, Any]:
        """The signed trust list to serve now, publishing the next one when it is due."""
        try:
            with transaction(self._engine) as session:
                listener = AuditedKeyUse(self._audit, session, "public:trust-list", request_id)
                return self._trust_list.current(session, listener)
        except IntegrityError:
            # Another request published the same sequence first; serve that one.
            with reading(self._engine) as session:
                return self._trust_list.current(session)
