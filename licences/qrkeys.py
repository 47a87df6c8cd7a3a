"""The QR signing key: one ``qr-signing`` P-256 key in the key store, published for offline use.

QR payloads are signed with their own key, not a seal key: a seal key belongs to one department
and signs PDFs; this key vouches for the compact payloads of every department's licences, and its
public half is what an offline verifier downloads (the trust list's ``qr_keys``). Every version of
the label stays verifiable, so a rotation does not invalidate licences already printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import Engine

from core.audit import AuditLog
from core.db import transaction
from keys.audit import KeyUseRecorder
from keys.store import KeyRef, KeyStore, KeyUseListener
from keys.versions import P256Versions
from licences.payload import Claims, PayloadType, key_id, record_digest, sign
from licences.repository import LicenceRecord

LABEL = "qr-signing"
ALG = "ES256"


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
        self._versions = P256Versions(
            keystore, LABEL, lambda public, ref: PublishedKey(key_id(public), public, ref), "QR "
        )

    def ensure(self) -> bool:
        """Create the key if the store has none; True when it was created now."""
        return self._versions.ensure()

    def published(self, *, refresh: bool = False) -> list[PublishedKey]:
        """Every version of the QR key, newest first."""
        return self._versions.published(refresh=refresh)

    def public_key(self, kid: bytes) -> ec.EllipticCurvePublicKey | None:
        """The key named by ``kid``; the store is listed again once before giving up, so a key
        rotated in by another process is found."""
        return self._versions.public_key(kid)

    def listed_key(self, kid: bytes) -> ec.EllipticCurvePublicKey | None:
        """The key named by ``kid`` if listed already, without asking the store."""
        return self._versions.listed_key(kid)

    @property
    def in_process(self) -> bool:
        """Whether the keys are read without leaving this process (``keys.store``)."""
        return self._versions.in_process

    def sign(self, claims: Claims, *, purpose: str, listener: KeyUseListener | None) -> str:
        key, sign_digest = self._versions.signer(purpose, listener)
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
        photo_sha256=record.photo_sha256,
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
        photo_sha256: str | None = None,
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
                photo_sha256=photo_sha256,
            ),
            valid_until=valid_until,
            issued_at=issued_at,
            status_index=status_index,
        )
        return self._signed(claims, "qr-licence", actor, request_id)

    def copy_code(
        self,
        record: LicenceRecord,
        copy_id: str,
        *,
        issued_at: datetime,
        actor: str,
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
