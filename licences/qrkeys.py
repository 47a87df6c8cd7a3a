"""The QR signing key: one ``qr-signing`` P-256 key in the key store, published for offline use.

QR payloads are signed with their own key, not a seal key: a seal key belongs to one department
and signs PDFs; this key vouches for the compact payloads of every department's licences, and its
public half is what an offline verifier downloads (the trust list's ``qr_keys``). Every version of
the label stays verifiable, so a rotation does not invalidate licences already printed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from threading import Lock
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import Engine

from core.audit import AuditLog
from core.db import transaction
from core.errors import Conflict, Unavailable
from keys.audit import KeyUseRecorder
from keys.store import HashAlgorithm, KeyAlgorithm, KeyRef, KeyStore, KeyUseListener
from licences.payload import Claims, PayloadType, key_id, record_digest, sign
from licences.repository import LicenceRecord

LABEL = "qr-signing"
ALG = "ES256"
RELIST_SECONDS = 300.0  # a version rotated in by another process is picked up this soon


@dataclass(frozen=True)
class PublishedKey:
    kid: bytes
    public_key: ec.EllipticCurvePublicKey
    ref: KeyRef | None = None  # known only to the service that holds the key

    def to_json(self) -> dict[str, Any]:
        pem = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"kid": self.kid.hex(), "alg": ALG, "public_key_pem": pem.decode("ascii")}


class QrKeys:
    def __init__(self, keystore: KeyStore) -> None:
        self._store = keystore
        self._lock = Lock()
        self._keys: list[PublishedKey] | None = None
        self._listed_at = 0.0

    def ensure(self) -> bool:
        """Create the key if the store has none; True when it was created now."""
        if self._store.exists(LABEL):
            return False
        try:
            self._store.create(LABEL, KeyAlgorithm.EC_P256)
        except Conflict:  # another process created it first
            return False
        finally:
            self._keys = None
        return True

    def published(self, *, refresh: bool = False) -> list[PublishedKey]:
        """Every version of the QR key, newest first."""
        with self._lock:
            stale = time.monotonic() - self._listed_at > RELIST_SECONDS
            if self._keys is None or refresh or stale:
                found = []
                refs = self._store.versions(LABEL) if self._store.exists(LABEL) else []
                for ref in reversed(refs):  # newest first: that one signs
                    public = self._store.public_key(ref)
                    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
                        public.curve, ec.SECP256R1
                    ):
                        raise Unavailable(f"QR 签名密钥须为 P-256 / {ref} is not a P-256 key")
                    found.append(PublishedKey(key_id(public), public, ref))
                self._keys = found
                self._listed_at = time.monotonic()
            return list(self._keys)

    def public_key(self, kid: bytes) -> ec.EllipticCurvePublicKey | None:
        """The key named by ``kid``; the store is listed again once before giving up, so a key
        rotated in by another process is found."""
        for refresh in (False, True):
            for key in self.published(refresh=refresh):
                if key.kid == kid:
                    return key.public_key
        return None

    def sign(self, claims: Claims, *, purpose: str, listener: KeyUseListener | None) -> str:
        keys = self.published()
        if not keys:
            self.ensure()
            keys = self.published(refresh=True)
        key = keys[0]
        ref = key.ref
        assert ref is not None

        def sign_digest(digest: bytes) -> bytes:
            signature = self._store.sign_digest(ref, digest, HashAlgorithm.SHA256)
            if listener is not None:
                listener.key_used(ref, purpose)
            return signature

        return sign(claims, key.kid, sign_digest)

    def to_json(self) -> dict[str, Any]:
        """The ``qr_keys`` member of the trust list, and a trust-list file of its own."""
        return {"qr_keys": [key.to_json() for key in self.published()]}


def digest_of(record: LicenceRecord) -> bytes:
    """The record digest of a stored licence, as its QR payload should carry it."""
    licence = record.licence
    return record_digest(
        identifier=licence.identifier,
        type_code=licence.type_code,
        issuer_code=licence.issuer_code,
        holder_id_type=record.holder.id_type,
        holder_id=record.holder.id_number,
        fields=licence.fields,
        valid_from=licence.valid_from,
        valid_until=licence.valid_until,
    )


class LicenceCodes:
    """Makes the signed code printed in a licence's QR (the ``<code>`` of ``/V/<code>``).

    Issuance calls it before rendering, outside its write transaction; the key use is written to
    the audit chain at once, in a short transaction of its own, so the audit shows every QR
    signature even when the issuance that asked for it fails later.
    """

    def __init__(self, *, keys: QrKeys, engine: Engine, audit: AuditLog) -> None:
        self._keys = keys
        self._engine = engine
        self._audit = audit

    def licence_code(
        self,
        *,
        identifier: str,
        type_code: str,
        issuer_code: str,
        holder_id_type: str,
        holder_id: str,
        fields: Mapping[str, Any],
        valid_from: date,
        valid_until: date | None,
        issued_at: datetime,
        actor: str,
        request_id: str | None = None,
        status_index: int | None = None,
    ) -> str:
        claims = Claims(
            type=PayloadType.LICENCE,
            identifier=identifier,
            record_digest=record_digest(
                identifier=identifier,
                type_code=type_code,
                issuer_code=issuer_code,
                holder_id_type=holder_id_type,
                holder_id=holder_id,
                fields=fields,
                valid_from=valid_from,
                valid_until=valid_until,
            ),
            valid_until=valid_until,
            issued_at=issued_at,
            status_index=status_index,
        )
        return self._signed(claims, "qr-licence", actor, request_id)

    def copy_code(
        self, record: LicenceRecord, copy_id: str, *, issued_at: datetime, actor: str,
        request_id: str | None = None,
    ) -> str:
        """The signed code of a stamped copy: the stored licence's claims and the copy's id."""
        licence = record.licence
        claims = Claims(
            type=PayloadType.COPY,
            identifier=licence.identifier,
            record_digest=digest_of(record),
            valid_until=licence.valid_until,
            issued_at=issued_at,
            status_index=licence.status_index,
            copy_id=copy_id,
        )
        return self._signed(claims, "qr-copy", actor, request_id)

    def _signed(self, claims: Claims, purpose: str, actor: str, request_id: str | None) -> str:
        recorder = KeyUseRecorder()
        code = self._keys.sign(claims, purpose=purpose, listener=recorder)
        with transaction(self._engine) as session:
            recorder.flush(self._audit, session, actor, request_id)
        return code
