"""OCSP responder (RFC 6960) for every CA of the domain.

Answers come from the certificate table, the same rows the CRLs are made from, so a revocation
is visible here at once (the CRL only at its next fetch). Each CA has a delegated responder
certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck) so the CA keys themselves never sign on
the request path. A serial this CA never issued is answered ``unknown``, never ``good``; a
request about a CA this domain does not run is refused as ``unauthorized``.

The same code makes the responses embedded in sealed licences (B-LT): sealing asks
:meth:`OcspResponder.status_response` in-process rather than over HTTP.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from sqlmodel import Session, col, select

from core.clock import Clock
from core.db import as_utc
from core.errors import Unavailable
from keys.signing import private_key_for
from keys.store import KeyRef, KeyUseListener
from trust.authority import TrustDomain
from trust.crl import REASONS
from trust.models import CertificateRecord
from trust.profiles import Role
from trust.services import ensure_service_certificates

# How long a response may be relied on. Short, so a revoked seal stops being accepted within
# minutes by relying parties that cache responses.
OCSP_VALIDITY = timedelta(minutes=10)
# How long sealing reuses a good answer about a certificate (half its validity, so an embedded
# response always has minutes left), and how many answers a process remembers.
REUSE = OCSP_VALIDITY / 2
MAX_CACHED = 1024
MAX_NONCE = 32  # RFC 8954 § 2.1
_CERT_ID_HASHES = (hashes.SHA1, hashes.SHA256, hashes.SHA384, hashes.SHA512)


def unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


class OcspResponder:
    def __init__(self, *, trust: TrustDomain, clock: Clock) -> None:
        self._trust = trust
        self._clock = clock
        # (CA certificate serial, hash name) -> (issuer name hash, issuer key hash)
        self._issuer_hashes: dict[tuple[int, str], tuple[bytes, bytes]] = {}
        # (issuer name DER, serial) -> a good answer made for sealing (status_responses)
        self._answers: dict[tuple[bytes, int], _Answer] = {}
        self._lock = threading.Lock()

    # -- HTTP ----------------------------------------------------------------------------

    def respond(
        self, session: Session, request_der: bytes, listener: KeyUseListener | None = None
    ) -> bytes:
        """A DER OCSPResponse for a DER OCSPRequest; never raises for bad input."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            serial = request.serial_number
            name_hash, key_hash = request.issuer_name_hash, request.issuer_key_hash
            nonce = _nonce(request)
        except (ValueError, UnsupportedAlgorithm):
            # Unparseable, several requests in one (unsupported), or a CertID hash we do
            # not know: RFC 6960 § 2.3 malformedRequest.
            return unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if not isinstance(algorithm, _CERT_ID_HASHES):
            return unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE:
            return unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        ca_name = self._authority_for(session, algorithm, name_hash, key_hash)
        if ca_name is None:
            return unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        try:
            response = self._build(
                session, ca_name, serial, algorithm, name_hash, key_hash, nonce, listener
            )
        except Unavailable:
            # The responder certificate expired and no maintenance run renewed it: renew it
            # now (the caller's transaction records it), then answer.
            try:
                ensure_service_certificates(self._trust, session, "system:ocsp")
                response = self._build(
                    session, ca_name, serial, algorithm, name_hash, key_hash, nonce, listener
                )
            except Unavailable:
                return unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
        return response.public_bytes(serialization.Encoding.DER)

    # -- in-process ------------------------------------------------------------------------

    def status_response(
        self,
        session: Session,
        certificate: x509.Certificate,
        listener: KeyUseListener | None = None,
    ) -> bytes:
        """The DER response about one of the domain's certificates, as a relying party would
        get it over HTTP; used to embed revocation data in sealed licences."""
        return self.status_responses(session, [certificate], listener)[0]

    def status_responses(
        self,
        session: Session,
        certificates: list[x509.Certificate],
        listener: KeyUseListener | None = None,
    ) -> list[bytes]:
        """One DER response per certificate, for a seal's DSS. A ``good`` answer is reused for
        up to ``REUSE`` (never past its nextUpdate), and only while the certificate's row and
        the responder certificate's row both still say ``good``: they are read on every use
        (one query for all of them), so a seal suspended or revoked by any worker gets a fresh
        ``revoked`` answer at once, never a remembered ``good`` one."""
        now = self._clock.now()
        cached = [self._answers.get(_cache_key(c)) for c in certificates]
        rows = self._current_rows(session, certificates, cached, now)
        out = []
        for certificate, answer in zip(certificates, cached, strict=True):
            if answer is not None and answer.holds(rows, certificate, now):
                out.append(answer.der)
                continue
            out.append(self._fresh(session, certificate, listener, now))
        return out

    # -- internals -------------------------------------------------------------------------

    def _fresh(
        self,
        session: Session,
        certificate: x509.Certificate,
        listener: KeyUseListener | None,
        now: datetime,
    ) -> bytes:
        issuer = self._issuer_of(session, certificate)
        if issuer is None:
            raise Unavailable(
                f"证书不由本信任域签发 / {certificate.subject.rfc4514_string()} is not "
                "issued by a CA of this domain"
            )
        ca_name, ca_cert = issuer
        algorithm = hashes.SHA256()
        name_hash, key_hash = self._hashes(ca_cert, algorithm)
        response = self._build(
            session,
            ca_name,
            certificate.serial_number,
            algorithm,
            name_hash,
            key_hash,
            None,
            listener,
        )
        der = response.public_bytes(serialization.Encoding.DER)
        if response.certificate_status is not ocsp.OCSPCertStatus.GOOD:
            # Forget the good answer made before: a lifted hold gets a new one, not that.
            with self._lock:
                self._answers.pop(_cache_key(certificate), None)
        else:
            responder = format(response.certificates[0].serial_number, "x")
            self._remember(
                _cache_key(certificate), _Answer(der, now, responder, ca_cert.serial_number)
            )
        return der

    def _remember(self, key: tuple[bytes, int], answer: _Answer) -> None:
        with self._lock:
            if len(self._answers) >= MAX_CACHED:
                self._answers.pop(next(iter(self._answers)), None)  # the oldest
            self._answers[key] = answer

    @staticmethod
    def _current_rows(
        session: Session,
        certificates: list[x509.Certificate],
        cached: list[_Answer | None],
        now: datetime,
    ) -> dict[str, CertificateRecord]:
        """The rows a remembered answer depends on: the certificate's and its responder's."""
        serials: set[str] = set()
        for certificate, answer in zip(certificates, cached, strict=True):
            if answer is not None and answer.fresh(now):
                serials |= {format(certificate.serial_number, "x"), answer.responder_serial}
        if not serials:
            return {}
        found = session.exec(
            select(CertificateRecord).where(col(CertificateRecord.serial).in_(serials))
        )
        return {row.serial: row for row in found}

    def _issuer_of(
        self, session: Session, certificate: x509.Certificate
    ) -> tuple[str, x509.Certificate] | None:
        for ca_name in self._trust.ca_names(session):
            ca_cert, _ = self._trust.authority(session, ca_name)
            if ca_cert.subject == certificate.issuer:
                return ca_name, ca_cert
        return None

    def _hashes(
        self, ca_cert: x509.Certificate, algorithm: hashes.HashAlgorithm
    ) -> tuple[bytes, bytes]:
        key = (ca_cert.serial_number, algorithm.name)
        found = self._issuer_hashes.get(key)
        if found is None:
            # RFC 6960 § 4.1.1: hash of the issuer's DER name and of its public key BIT STRING.
            spki = asn1_x509.Certificate.load(
                ca_cert.public_bytes(serialization.Encoding.DER)
            ).public_key
            name_digest = hashes.Hash(algorithm)
            name_digest.update(ca_cert.subject.public_bytes())
            key_digest = hashes.Hash(algorithm)
            key_digest.update(bytes(spki["public_key"]))
            found = self._issuer_hashes[key] = (name_digest.finalize(), key_digest.finalize())
        return found

    def _authority_for(
        self,
        session: Session,
        algorithm: hashes.HashAlgorithm,
        name_hash: bytes,
        key_hash: bytes,
    ) -> str | None:
        for ca_name in self._trust.ca_names(session):
            ca_cert, _ = self._trust.authority(session, ca_name)
            if self._hashes(ca_cert, algorithm) == (name_hash, key_hash):
                return ca_name
        return None

    def _build(
        self,
        session: Session,
        ca_name: str,
        serial: int,
        algorithm: hashes.HashAlgorithm,
        name_hash: bytes,
        key_hash: bytes,
        nonce: bytes | None,
        listener: KeyUseListener | None,
    ) -> ocsp.OCSPResponse:
        _, ca_record = self._trust.authority(session, ca_name)
        record = session.get(CertificateRecord, format(serial, "x"))
        status, revoked_at, reason = _status(record, ca_record.serial)
        responder_cert, responder = self._trust.service_certificate(session, Role.OCSP, ca_name)
        key = private_key_for(
            self._trust.keystore, KeyRef.parse(responder.key_ref), "ocsp", listener
        )
        now = self._clock.now()
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=name_hash,
                issuer_key_hash=key_hash,
                serial_number=serial,
                algorithm=algorithm,
                cert_status=status,
                this_update=now,
                next_update=now + OCSP_VALIDITY,
                revocation_time=revoked_at,
                revocation_reason=reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder_cert)
            .certificates([responder_cert])
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        return builder.sign(key, hashes.SHA256())


def _cache_key(certificate: x509.Certificate) -> tuple[bytes, int]:
    return certificate.issuer.public_bytes(), certificate.serial_number


@dataclass(frozen=True)
class _Answer:
    """A good answer made for sealing, and what it was made from."""

    der: bytes
    made: datetime  # its thisUpdate
    responder_serial: str  # hex, as the certificate table keys it
    ca_serial: int  # the CA certificate its CertID names

    def fresh(self, now: datetime) -> bool:
        return self.made <= now < self.made + REUSE

    def holds(
        self, rows: dict[str, CertificateRecord], certificate: x509.Certificate, now: datetime
    ) -> bool:
        """Still the answer the responder would give now: within its reuse time, the
        certificate still good under the same CA, the responder certificate still good and
        valid beyond the answer's nextUpdate."""
        if not self.fresh(now):
            return False
        record = rows.get(format(certificate.serial_number, "x"))
        responder = rows.get(self.responder_serial)
        return (
            record is not None
            and record.status == "good"
            and record.issuer_serial == format(self.ca_serial, "x")
            and responder is not None
            and responder.status == "good"
            and as_utc(responder.not_after) >= self.made + OCSP_VALIDITY
        )


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def _status(
    record: CertificateRecord | None, ca_serial: str
) -> tuple[ocsp.OCSPCertStatus, datetime | None, x509.ReasonFlags | None]:
    if record is None or record.issuer_serial != ca_serial:
        return ocsp.OCSPCertStatus.UNKNOWN, None, None
    if record.status == "good" or record.revoked_at is None:
        return ocsp.OCSPCertStatus.GOOD, None, None
    reason = REASONS.get(record.revocation_reason or "unspecified")
    return ocsp.OCSPCertStatus.REVOKED, as_utc(record.revoked_at), reason
