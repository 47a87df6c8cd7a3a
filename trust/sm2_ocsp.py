"""OCSP answers (RFC 6960) about SM2 certificates, signed with SM2-with-SM3.

Each SM2 CA has a delegated responder certificate (id-kp-OCSPSigning, id-pkix-ocsp-nocheck,
``Sm2Pki.ensure``), so no CA key signs on the request path, as on the ECDSA side. Answers come
from the rows the SM2 CRLs are made from: a seal's SM2 certificate is revoked or on hold exactly
when the ECDSA seal certificate it follows is. A serial the CA never issued is ``unknown``.

The public ``/pki/ocsp`` endpoint asks this responder first (:meth:`Sm2OcspResponder.respond`
returns None for a request about a CA that is not an SM2 CA of the domain, and the ECDSA
responder answers it); :meth:`Sm2OcspResponder.status_response` makes the same answer
in-process, for the verifier or for embedding.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from sqlmodel import Session

from keys.store import KeyRef, KeyUseListener
from trust.crl import REASONS
from trust.sm2_pki import SM2_CA_NAMES, Sm2Pki
from trust.sm2_x509 import CRL_REASONS, Sm2Signer, algorithm, load_certificate

OCSP_VALIDITY = timedelta(minutes=10)
MAX_NONCE = 32
_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}


def _unsuccessful(status: str) -> bytes:
    der: bytes = asn1_ocsp.OCSPResponse({"response_status": status}).dump()
    return der


def _generalized(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


class Sm2OcspResponder:
    def __init__(self, pki: Sm2Pki) -> None:
        self._pki = pki
        # CertID hashes of the SM2 CAs, per hash algorithm, once the hierarchy exists: every
        # OCSP request is asked here first, so an ECDSA one costs a parse and a lookup, not
        # queries. The SM2 CAs never change once made.
        self._known: dict[str, dict[tuple[bytes, bytes], str]] = {}

    def _issuer_hashes(self, ca: asn1_x509.Certificate, name: str) -> tuple[bytes, bytes]:
        digest = _HASHES[name]
        return (
            digest(ca.subject.dump()).digest(),
            digest(bytes(ca.public_key["public_key"])).digest(),
        )

    def _load_known(self, session: Session) -> bool:
        """Fill ``_known`` once the SM2 CAs exist; False while they do not."""
        if self._known:
            return True
        if not self._pki.available or not self._pki.is_initialised(session):
            return False  # asked again next time: another process may make the CAs
        for hash_name in _HASHES:
            self._known[hash_name] = {
                self._issuer_hashes(self._pki.authority(session, ca_name)[0], hash_name): ca_name
                for ca_name in SM2_CA_NAMES
            }
        return True

    def _ca_for(
        self, session: Session, hash_name: str, name_hash: bytes, key_hash: bytes
    ) -> str | None:
        if not self._load_known(session):
            return None
        return self._known[hash_name].get((name_hash, key_hash))

    def _maybe_sm2(self, session: Session, request_der: bytes) -> bool:
        """A byte search before any parsing: a request about an SM2 CA carries one of their
        key hashes verbatim, so an ECDSA request (the usual one) costs microseconds here."""
        if not self._load_known(session):
            return False
        return any(
            key_hash in request_der for known in self._known.values() for _, key_hash in known
        )

    def respond(
        self, session: Session, request_der: bytes, listener: KeyUseListener | None = None
    ) -> bytes | None:
        """The DER answer when the request is about an SM2 CA of the domain, else None."""
        if not self._maybe_sm2(session, request_der):
            return None
        try:
            request = asn1_ocsp.OCSPRequest.load(request_der, strict=True)
            items = request["tbs_request"]["request_list"]
            if len(items) != 1:
                return None  # the ECDSA responder answers malformedRequest
            cert_id = items[0]["req_cert"]
            hash_name = cert_id["hash_algorithm"]["algorithm"].native
            name_hash = bytes(cert_id["issuer_name_hash"])
            key_hash = bytes(cert_id["issuer_key_hash"])
            serial = int(cert_id["serial_number"].native)
            nonce = request.nonce_value
        except (ValueError, TypeError, KeyError):
            return None
        if hash_name not in _HASHES:
            return None
        ca_name = self._ca_for(session, hash_name, name_hash, key_hash)
        if ca_name is None:
            return None
        nonce_bytes = bytes(nonce) if nonce is not None else None
        if nonce_bytes is not None and not 1 <= len(nonce_bytes) <= MAX_NONCE:
            return _unsuccessful("malformed_request")
        return self._answer(
            session, ca_name, serial, hash_name, name_hash, key_hash, nonce_bytes, listener
        )

    def status_response(
        self,
        session: Session,
        certificate_der: bytes,
        listener: KeyUseListener | None = None,
    ) -> bytes:
        """The DER answer about one SM2 certificate of the domain (SHA-256 CertID)."""
        certificate = load_certificate(certificate_der)
        for ca_name in SM2_CA_NAMES:
            ca, _ = self._pki.authority(session, ca_name)
            if ca.subject == certificate.issuer:
                name_hash, key_hash = self._issuer_hashes(ca, "sha256")
                return self._answer(
                    session,
                    ca_name,
                    certificate.serial_number,
                    "sha256",
                    name_hash,
                    key_hash,
                    None,
                    listener,
                )
        raise ValueError("not issued by an SM2 CA of this domain")

    def _answer(
        self,
        session: Session,
        ca_name: str,
        serial: int,
        hash_name: str,
        name_hash: bytes,
        key_hash: bytes,
        nonce: bytes | None,
        listener: KeyUseListener | None,
    ) -> bytes:
        pki = self._pki
        responder = pki.current_responder(session, ca_name)
        if responder is None:
            # Expired and not yet renewed: renew it now, in the caller's transaction.
            pki.ensure(session, "system:ocsp")
            responder = pki.current_responder(session, ca_name)
            if responder is None:
                return _unsuccessful("try_later")
        _, ca_record = pki.authority(session, ca_name)
        record = pki.record(session, format(serial, "x"))
        now = _generalized(pki.now())
        if record is None or record.issuer_serial != ca_record.serial:
            cert_status = asn1_ocsp.CertStatus(name="unknown", value=None)
        else:
            status = pki.status(session, record)
            if status.status == "good" or status.revoked_at is None:
                cert_status = asn1_ocsp.CertStatus(name="good", value=None)
            else:
                info: dict[str, object] = {"revocation_time": _generalized(status.revoked_at)}
                reason = status.reason or "unspecified"
                if reason in REASONS:
                    info["revocation_reason"] = CRL_REASONS[reason]
                cert_status = asn1_ocsp.CertStatus(name="revoked", value=info)
        responder_cert = pki.parsed(responder)
        single = {
            "cert_id": {
                "hash_algorithm": {"algorithm": hash_name},
                "issuer_name_hash": name_hash,
                "issuer_key_hash": key_hash,
                "serial_number": serial,
            },
            "cert_status": cert_status,
            "this_update": now,
            "next_update": now + OCSP_VALIDITY,
        }
        data: dict[str, object] = {
            "responder_id": asn1_ocsp.ResponderId(
                name="by_key",
                value=hashlib.sha1(bytes(responder_cert.public_key["public_key"])).digest(),  # noqa: S324
            ),
            "produced_at": now,
            "responses": [single],
        }
        if nonce is not None:
            data["response_extensions"] = [{"extn_id": "nonce", "extn_value": nonce}]
        tbs_der = asn1_ocsp.ResponseData(data).dump()
        signer = Sm2Signer(pki.keystore, KeyRef.parse(responder.key_ref), listener, "sm2-ocsp")
        basic = asn1_ocsp.BasicOCSPResponse(
            {
                "tbs_response_data": asn1_ocsp.ResponseData.load(tbs_der),
                "signature_algorithm": algorithm(),
                "signature": signer.sign(tbs_der),
                "certs": [responder_cert],
            }
        )
        der: bytes = asn1_ocsp.OCSPResponse(
            {
                "response_status": "successful",
                "response_bytes": {"response_type": "basic_ocsp_response", "response": basic},
            }
        ).dump()
        return der
