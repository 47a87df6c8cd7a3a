"""A licence exported as a Verifiable Credential, for the two parties entitled to it: the issuing
department (``GET /api/v1/licences/{identifier}/credential``) and the signed-in holder
(``GET /me/licences/{identifier}/credential``).

Ownership is checked exactly as the sealed PDF's: a department reaches only the licences it
issued, and a holder only their own; anybody else's licence is reported exactly like one that
does not exist (404), so the answer says nothing about which identifiers exist. Unlike the PDF,
no grant lets another department pull a credential: it carries the holder's ID number whole
(``licences.credential``). A department's refusal is audited, as a refused pull is.

Each export is three steps, so no database lock is held while the key store signs (a Vault or
PKCS#11 signature is a round trip): read the record; build and sign the credential, the key use
collected; then one write transaction records the ``key.sign`` entry (purpose
``credential-export``) and ``licence.credential`` naming the licence and who asked. The
credential is handed out only once that transaction has committed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.db import reading, transaction
from core.errors import Conflict, NotFound
from keys.audit import KeyUseRecorder
from licences import credential
from licences.grants import HolderKey
from licences.holder_desk import own_record
from licences.lifecycle import parse_identifier
from licences.models import LicenceStatus
from licences.repository import (
    LicenceRecord,
    effective_status,
    full_record,
    licence_by_identifier,
)
from trust.jose import CredentialKeys

ACTION = "licence.credential"


@dataclass(frozen=True)
class ExportedCredential:
    """A signed credential: its compact JWS, and the file name it downloads as."""

    identifier: str
    token: str
    filename: str


class CredentialDesk:
    """Exports a licence version as ``application/vc+jwt`` for its issuer or its holder."""

    def __init__(
        self,
        *,
        engine: Engine,
        audit: AuditLog,
        clock: Clock,
        keys: CredentialKeys,
        base_url: str,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock
        self._keys = keys
        self._base_url = base_url

    def for_issuer(
        self, identifier: str, *, department_code: str, actor: str, request_id: str | None
    ) -> ExportedCredential:
        """The credential of a licence this department issued (422 malformed, 404 unknown or
        another department's, 409 for a licence that is no longer valid and has no status
        entry)."""
        wanted = parse_identifier(identifier)
        with reading(self._engine) as session:
            record = self._issued_by(session, wanted, department_code)
        if record is None:
            with transaction(self._engine) as session:
                self._audit.append(
                    session,
                    actor=actor,
                    action=ACTION,
                    object_type="licence",
                    object_id=wanted,
                    outcome="refused",
                    detail={"viewer": "department", "department": department_code},
                    request_id=request_id,
                )
            raise NotFound(f"证照不存在 / no licence {wanted}", field="identifier")
        return self._export(record, actor=actor, viewer="department", request_id=request_id)

    def for_holder(
        self, holder: HolderKey, identifier: str, *, request_id: str | None
    ) -> ExportedCredential:
        """The credential of one of the holder's own licences (422 malformed, 404 for another
        holder's or none, 409 as for the issuer)."""
        with reading(self._engine) as session:
            record = own_record(session, holder, identifier)
        return self._export(record, actor=holder.actor, viewer="holder", request_id=request_id)

    @staticmethod
    def _issued_by(session: Session, identifier: str, department_code: str) -> LicenceRecord | None:
        try:
            licence = licence_by_identifier(session, identifier)
        except NotFound:
            return None
        if licence.issuer_code != department_code:
            return None
        return full_record(session, licence)

    def _export(
        self, record: LicenceRecord, *, actor: str, viewer: str, request_id: str | None
    ) -> ExportedCredential:
        licence = record.licence
        if licence.status_index is None and licence.status != LicenceStatus.VALID.value:
            # Nothing in the credential could say what happened to it: refuse rather than sign
            # a document that reads as valid (docs/credentials.md).
            status = LicenceStatus(licence.status)
            raise Conflict(
                f"该证照{status.zh}，且签发于状态列表之前，不能导出可验证凭证 / the licence is "
                f"{status.value} and predates the status list, so no credential can say so",
                field="identifier",
            )
        document = credential.document(record, self._base_url)
        recorder = KeyUseRecorder()
        token = credential.sign(self._keys, document, listener=recorder)
        with transaction(self._engine) as session:
            recorder.flush(self._audit, session, actor, request_id)
            self._audit.append(
                session,
                actor=actor,
                action=ACTION,
                object_type="licence",
                object_id=licence.identifier,
                detail={
                    "viewer": viewer,
                    "version": licence.version,
                    "status_index": licence.status_index,
                    "status_today": self._status_today(record).value,
                },
                request_id=request_id,
            )
        return ExportedCredential(
            identifier=licence.identifier,
            token=token,
            filename=f"{licence.serial}-{licence.version:03d}.vc.jwt",
        )

    def _status_today(self, record: LicenceRecord) -> LicenceStatus:
        return effective_status(record.licence, china_today(self._clock.now()))
