"""Storing a sealed licence: the writes issuance and the conversion of existing licences share.

One function, inside the caller's transaction, so a licence is never half-stored: the holder
(captured on first issuance, reused after), the row, the caller's hook, the sealed bytes (PDF,
OFD), the photo, the Idempotency-Key, the key uses and the ``licence.issue`` audit entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from core.audit import AuditLog, Pending
from keys.audit import KeyUseRecorder
from licences import holders, idempotency
from licences.idempotency import IdempotencyKey
from licences.models import Holder, Licence, LicenceDocument
from licences.ofd_issue import store_ofd
from licences.photos import Photo, store_photo
from seals.ofd_sealing import SealedOfd

# Called in the store transaction after the new row is flushed; raising rolls everything back.
StoreHook = Callable[[Session, Licence], None]


def write_issued(
    session: Session,
    audit: AuditLog,
    licence: Licence,
    pdf: bytes | None,
    recorder: KeyUseRecorder,
    holder: tuple[str, str, str],
    *,
    photo: Photo | None,
    key: IdempotencyKey | None,
    actor: str,
    request_id: str | None,
    hook: StoreHook | None,
    detail: dict[str, Any],
    ofd: SealedOfd | None = None,
) -> None:
    """The writes that store a sealed licence, inside the caller's transaction: the holder
    (captured on first issuance, reused after), the row, ``hook``, the bytes, the photo, the
    Idempotency-Key, the key uses and the ``licence.issue`` entry. Issuance and the conversion
    of existing licences (``licences.legacy_desk``) both store through here."""
    licence.holder_id = _holder_id(session, *holder)
    session.add(licence)
    session.flush()
    if hook is not None:
        hook(session, licence)
    if pdf is not None:
        session.add(LicenceDocument(identifier=licence.identifier, pdf=pdf))
    if ofd is not None:
        store_ofd(session, licence.identifier, ofd)
    if photo is not None:
        store_photo(session, licence.identifier, photo)
    idempotency.remember(session, key, licence.identifier, licence.issued_at)
    issued = Pending(
        actor=actor,
        action="licence.issue",
        object_type="licence",
        object_id=licence.identifier,
        request_id=request_id,
        detail={
            "type": licence.type_code,
            "type_version": licence.type_version,
            "seal": licence.seal_code,
            "sha256": licence.sha256,
            **({"photo_sha256": photo.sha256} if photo else {}),
            **(
                {"ofd_sha256": ofd.sha256, "sm2_certificate": ofd.certificate_serial} if ofd else {}
            ),
            **({"documents": ["ofd"]} if pdf is None else {}),
            **detail,
        },
    )
    recorder.flush(audit, session, actor, request_id, then=[issued])


def _holder_id(session: Session, id_type: str, number: str, name: str) -> int:
    """The holder's row, captured on first issuance and reused by every later one."""
    holder = holders.find(session, id_type, number)
    if holder is None:
        holder = Holder(id_type=id_type, id_number=number, name=name)
        session.add(holder)
        session.flush()
    assert holder.id is not None
    return holder.id
