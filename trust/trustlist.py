"""The domain's signed trust list (``GET /pki/trust-list``).

Another domain, or an offline verifier of QR payloads, needs to know this domain's CAs, seals
(with their status), TSA and where to ask about revocation, and to know that list came from
us. The list is JSON, signed by the trust-list key with a detached JWS (RFC 7515, flattened JSON serialisation,
payload = base64url of the canonical JSON of the list without its ``signature`` member); the
exact format is in ``docs/trust-list.md``. Relying parties pin the SHA-256 fingerprint of the
signer certificate.

Every new list gets the next ``sequence``, stored in the database, so a relying party can
refuse an older list replayed to it. A new list is made when the content changes (a seal
revoked, a certificate renewed) or when the current one is within half its lifetime of
``next_update``.

The list also publishes the latest timestamped audit checkpoint (``audit_checkpoint``): a copy
kept by anyone anchors the audit chain outside the database (``trust.audit_anchor``). A newer
checkpoint alone makes a new list once the current one is an hour old (the first one at once).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID
from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, Session, SQLModel, col, select

from core.audit import checkpoint_json, latest_checkpoint
from core.clock import Clock
from core.db import as_utc
from core.errors import InvalidInput
from keys.signing import private_key_for
from keys.store import KeyRef, KeyUseListener
from trust.authority import TrustDomain
from trust.models import CertificateRecord
from trust.profiles import Endpoints, Role
from trust.services import TRUST_LIST_NAME, TSA_NAME
from trust.sm2_trustlist import sm2_members

LIFETIME = timedelta(hours=24)
REFRESH_MARGIN = timedelta(hours=12)
CHECKPOINT_INTERVAL = timedelta(hours=1)  # how stale the published audit checkpoint may be
MEDIA_TYPE = "application/vnd.elicence.trust-list+json"
FORMAT = "elicence-trust-list/1"


class TrustListRecord(SQLModel, table=True):
    """Every trust list ever published, by sequence number."""

    __tablename__ = "trust_list"

    sequence: int = Field(primary_key=True)
    issued_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    next_update: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    content_sha256: str = Field(max_length=64)
    document: str = Field(sa_column=Column(Text, nullable=False))


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8. The list holds only strings,
    integers, lists and objects with ASCII keys, for which this equals RFC 8785 (JCS)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_input(document: dict[str, Any], protected: str) -> bytes:
    body = {k: v for k, v in document.items() if k != "signature"}
    return f"{protected}.{b64url(canonical(body))}".encode()


FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def pin_from_text(text: str) -> str:
    """A signer's SHA-256 fingerprint as an operator types it (upper case and colons allowed),
    in the lower-case hex ``fingerprint`` gives: the pin of ``federation add`` and of offline
    verification."""
    pinned = text.strip().lower().replace(":", "")
    if FINGERPRINT.fullmatch(pinned) is None:
        raise InvalidInput(
            "指纹须为64位十六进制SHA-256 / --fingerprint must be a SHA-256 in 64 hex digits",
            field="fingerprint",
        )
    return pinned


def verify_trust_list(document: dict[str, Any], pinned_sha256: str | None = None) -> bool:
    """Check the signature (and, if given, the pinned signer fingerprint) of a trust list.

    Strict: the protected header names this media type and the signer (``kid``), the algorithm
    matches the signer's key (ES256 on P-256, RS256), and the signature has exactly its
    algorithm's length — so no other document of the same signer, and no re-encoded
    signature, passes as this list."""
    signer = x509.load_pem_x509_certificate(document["signer"]["certificate"].encode())
    if pinned_sha256 is not None and fingerprint(signer) != pinned_sha256.lower():
        return False
    return verify_jws(document, signer, typ=MEDIA_TYPE)


def verify_jws(document: dict[str, Any], signer: x509.Certificate, *, typ: str) -> bool:
    """Whether ``document`` carries a detached JWS of type ``typ`` made by ``signer``."""
    try:
        signature = document["signature"]
        header = json.loads(b64url_decode(signature["protected"]))
        raw = b64url_decode(signature["signature"])
        data = signing_input(document, signature["protected"])
    except (TypeError, KeyError, ValueError, AttributeError):
        return False
    if not isinstance(header, dict) or header.get("typ") != typ or "crit" in header:
        return False
    if header.get("kid") != fingerprint(signer):
        return False
    public = signer.public_key()
    try:
        if header.get("alg") == "ES256" and isinstance(public, ec.EllipticCurvePublicKey):
            if not isinstance(public.curve, ec.SECP256R1) or len(raw) != 64:
                return False
            der = utils.encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            public.verify(der, data, ec.ECDSA(hashes.SHA256()))
        elif header.get("alg") == "RS256" and isinstance(public, rsa.RSAPublicKey):
            if len(raw) != (public.key_size + 7) // 8:
                return False
            public.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except Exception:  # InvalidSignature and friends: not genuine
        return False
    return True


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


class TrustListPublisher:
    def __init__(
        self,
        *,
        trust: TrustDomain,
        clock: Clock,
        endpoints: Endpoints,
        extra_members: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._trust = trust
        self._clock = clock
        self._endpoints = endpoints
        # Members published by higher layers (the QR-signing keys), given as a callable so
        # trust/ never imports them.
        self._extra = extra_members

    def latest(self, session: Session) -> TrustListRecord | None:
        return session.exec(
            select(TrustListRecord).order_by(col(TrustListRecord.sequence).desc())
        ).first()

    def current(self, session: Session, listener: KeyUseListener | None = None) -> dict[str, Any]:
        """The list to serve now; publishes a new one (write) when it is due."""
        content = self.content(session)
        # The audit checkpoint moves with every N audited actions (verifications included), so
        # it alone makes a new list at most every CHECKPOINT_INTERVAL, not at each checkpoint.
        stable = {k: v for k, v in content.items() if k != "audit_checkpoint"}
        digest = hashlib.sha256(canonical(stable)).hexdigest()
        latest = self.latest(session)
        now = self._clock.now()
        if (
            latest is not None
            and latest.content_sha256 == digest
            and as_utc(latest.next_update) - REFRESH_MARGIN > now
        ):
            served: dict[str, Any] = json.loads(latest.document)
            if served.get("audit_checkpoint") == content.get("audit_checkpoint") or (
                served.get("audit_checkpoint") is not None
                and now - as_utc(latest.issued_at) < CHECKPOINT_INTERVAL
            ):
                return served
        sequence = (latest.sequence if latest else 0) + 1
        document = self._sign(
            {
                "format": FORMAT,
                "sequence": sequence,
                "issued_at": _iso(now),
                "next_update": _iso(now + LIFETIME),
                **content,
            },
            session,
            listener,
        )
        session.add(
            TrustListRecord(
                sequence=sequence,
                issued_at=now,
                next_update=now + LIFETIME,
                content_sha256=digest,
                document=json.dumps(document, ensure_ascii=False),
            )
        )
        session.flush()
        return document

    def content(self, session: Session) -> dict[str, Any]:
        """Everything but sequence, times and signature; when it changes, a new list is due."""
        trust = self._trust
        identity = trust.identity
        cas = []
        for ca_name in trust.ca_names(session):
            certificate, _ = trust.authority(session, ca_name)
            cas.append(
                {
                    "name": ca_name,
                    "certificate": _pem(certificate),
                    "sha256": fingerprint(certificate),
                    "crl_url": self._endpoints.crl(ca_name),
                    "ocsp_url": self._endpoints.ocsp,
                }
            )
        seals = []
        rows = session.exec(
            select(CertificateRecord)
            .where(CertificateRecord.role == Role.SEAL.value)
            .order_by(col(CertificateRecord.name), col(CertificateRecord.not_before))
        ).all()
        now = self._clock.now()
        for row in rows:
            certificate = trust.certificate(row)
            seals.append(
                {
                    "seal": row.name,
                    "department": _department(certificate),
                    "certificate": _pem(certificate),
                    "serial": row.serial,
                    "status": _seal_status(row, now),
                    "revoked_at": _iso(as_utc(row.revoked_at)) if row.revoked_at else None,
                    "revocation_reason": row.revocation_reason,
                }
            )
        tsa_cert, _ = trust.service_certificate(session, Role.TSA, TSA_NAME)
        signer_cert, _ = trust.service_certificate(session, Role.TRUST_LIST, TRUST_LIST_NAME)
        checkpoint = latest_checkpoint(session)
        return {
            "domain": {
                "name": identity.name,
                "organisation": identity.organisation,
                "base_url": self._endpoints.base_url,
                "trust_list_url": self._endpoints.trust_list,
            },
            "cas": cas,
            "seals": seals,
            "tsa": {"url": self._endpoints.tsa, "certificate": _pem(tsa_cert)},
            "signer": {"certificate": _pem(signer_cert), "sha256": fingerprint(signer_cert)},
            # The latest timestamped audit checkpoint: a copy of this list anchors the audit
            # chain outside the database (trust.audit_anchor).
            "audit_checkpoint": checkpoint_json(checkpoint) if checkpoint is not None else None,
            # The SM2 root, seal CA and seal certificates of the national form (OFD seals).
            **sm2_members(trust.sm2, session, now),
            **(self._extra() if self._extra is not None else {}),
        }

    def _sign(
        self, document: dict[str, Any], session: Session, listener: KeyUseListener | None
    ) -> dict[str, Any]:
        return sign_document(
            self._trust, session, document, typ=MEDIA_TYPE, purpose="trust-list", listener=listener
        )


def sign_document(
    trust: TrustDomain,
    session: Session,
    body: dict[str, Any],
    *,
    typ: str,
    purpose: str,
    listener: KeyUseListener | None,
) -> dict[str, Any]:
    """``body`` with a ``signature`` member made by the current trust-list signer."""
    certificate, record = trust.service_certificate(session, Role.TRUST_LIST, TRUST_LIST_NAME)
    key = private_key_for(trust.keystore, KeyRef.parse(record.key_ref), purpose, listener)
    ec_key = isinstance(key, ec.EllipticCurvePrivateKey)
    header = {"alg": "ES256" if ec_key else "RS256", "kid": fingerprint(certificate), "typ": typ}
    protected = b64url(canonical(header))
    data = signing_input(body, protected)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        raw = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return {**body, "signature": {"protected": protected, "signature": b64url(raw)}}


def _iso(moment: datetime) -> str:
    return as_utc(moment).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _department(certificate: x509.Certificate) -> dict[str, str | None]:
    def first(oid: x509.ObjectIdentifier) -> str | None:
        values = certificate.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else None

    identifier = first(NameOID.ORGANIZATION_IDENTIFIER)
    return {
        "name": first(NameOID.ORGANIZATION_NAME),
        "code": identifier.removeprefix("NTRCN-") if identifier else None,
    }


def _seal_status(record: CertificateRecord, now: datetime) -> str:
    if record.status == "revoked":
        return "revoked"
    if record.status == "hold":
        return "suspended"
    if as_utc(record.not_after) <= now:
        return "expired"
    return "valid"
