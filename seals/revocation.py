"""Withdrawing a seal: revoke its certificates, or suspend them (certificateHold) and resume.

A seal is the department's key plus every certificate issued for it (a rotated seal has
several). Revoking the seal revokes all of them, publishes new CRLs, and the OCSP responder
answers ``revoked`` at once; issuance with the seal stops (``seal_for_issuance`` skips it).
Licences sealed before the revocation time, as their timestamps prove, remain valid; anything
sealed after is refused by verification (``verify.ltv``). A suspension can be lifted: the
certificates leave the CRL, OCSP answers ``good`` again and the seal can issue again.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.errors import Conflict, Forbidden, NotFound
from seals.models import Seal, SealStatus
from trust.authority import TrustDomain
from trust.models import CertificateRecord
from trust.profiles import Role

HOLD = "certificateHold"


def _seal(session: Session, seal_code: str, department_code: str | None) -> Seal:
    seal = session.get(Seal, seal_code, with_for_update=True)
    if seal is None:
        raise NotFound(f"印章不存在 / no seal {seal_code}", field="seal")
    if department_code is not None and seal.department_code != department_code:
        raise Forbidden("只有印章所属部门可以操作 / only the seal's own department may do this")
    return seal


def seal_certificates(session: Session, seal_code: str) -> list[CertificateRecord]:
    """Every certificate issued for the seal, oldest first: what a withdrawal changes and what
    a seal's view lists."""
    return list(
        session.exec(
            select(CertificateRecord)
            .where(CertificateRecord.role == Role.SEAL.value, CertificateRecord.name == seal_code)
            .order_by(col(CertificateRecord.not_before))
        ).all()
    )


def revoke_seal(
    session: Session,
    *,
    trust: TrustDomain,
    audit: AuditLog,
    seal_code: str,
    reason: str,
    actor: str,
    department_code: str | None = None,
    request_id: str | None = None,
) -> Seal:
    """Revoke (or with ``certificateHold``, suspend) every certificate of the seal."""
    seal = _seal(session, seal_code, department_code)
    hold = reason == HOLD
    if seal.status == SealStatus.REVOKED.value:
        raise Conflict(
            "印章已吊销 / the seal is already revoked", extra={"current_status": "revoked"}
        )
    if hold and seal.status == SealStatus.SUSPENDED.value:
        raise Conflict(
            "印章已暂停 / the seal is already suspended", extra={"current_status": "suspended"}
        )
    serials = []
    for record in seal_certificates(session, seal_code):
        if record.status == "revoked" or (hold and record.status == "hold"):
            continue
        trust.revocation.revoke(session, actor=actor, serial=record.serial, reason=reason)
        serials.append(record.serial)
    seal.status = SealStatus.SUSPENDED.value if hold else SealStatus.REVOKED.value
    session.add(seal)
    audit.append(
        session,
        actor=actor,
        action="seal.suspend" if hold else "seal.revoke",
        object_type="seal",
        object_id=seal_code,
        request_id=request_id,
        detail={"reason": reason, "certificates": serials},
    )
    return seal


def resume_seal(
    session: Session,
    *,
    trust: TrustDomain,
    audit: AuditLog,
    seal_code: str,
    actor: str,
    department_code: str | None = None,
    request_id: str | None = None,
) -> Seal:
    """Lift a suspension: the held certificates become good again."""
    seal = _seal(session, seal_code, department_code)
    if seal.status != SealStatus.SUSPENDED.value:
        raise Conflict(
            f"印章未暂停 / the seal is {seal.status}, not suspended",
            extra={"current_status": seal.status},
        )
    serials = []
    for record in seal_certificates(session, seal_code):
        if record.status == "hold":
            trust.revocation.release_hold(session, actor=actor, serial=record.serial)
            serials.append(record.serial)
    seal.status = SealStatus.ACTIVE.value
    session.add(seal)
    audit.append(
        session,
        actor=actor,
        action="seal.resume",
        object_type="seal",
        object_id=seal_code,
        request_id=request_id,
        detail={"certificates": serials},
    )
    return seal
