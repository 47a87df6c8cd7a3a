"""Which seal seals a licence, and why none may: the choice issuance and stamped copies rely on.

A licence of a type is sealed with the department's newest active seal authorised for that type
(``seals.authorisation``), within its validity and with a good certificate; without a type, with
any active licence seal (type 02) of the department. A refusal is 403 and says why, so the
department knows whether to authorise a seal, resume it, or renew it: ``extra["seal_status"]``
is ``unauthorised``, ``suspended``, ``revoked``, ``expired``, ``not-yet-valid`` or ``none``.
``seals.registry.SealRegistry.seal_for_issuance`` is the entry point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from sqlmodel import Session, col, select

from core.errors import Forbidden
from seals.authorisation import PROBLEMS, authorised_seals, check_usable
from seals.models import Department, Seal, SealType
from trust.authority import TrustDomain
from trust.models import CertificateRecord


@dataclass(frozen=True)
class SealContext:
    """What a sealing needs: the seal row and the DER of its certificate and chain."""

    seal: Seal
    department: Department
    certificate_der: bytes
    chain_der: tuple[bytes, ...]


def select_seal(
    session: Session,
    *,
    trust: TrustDomain,
    department: Department,
    licence_type: str | None,
    now: datetime,
) -> SealContext:
    """The first usable seal of the candidates, newest first; refused (403) with the reason of
    the newest candidate when none is usable."""
    refusal: tuple[str, Seal] | None = None
    for seal in candidate_seals(session, department, licence_type):
        found = check_usable(session, seal, now)
        if isinstance(found, CertificateRecord):
            return _context(session, trust, department, seal, found)
        refusal = refusal or (found, seal)
    if refusal is None:
        raise Forbidden(
            f"部门 {department.name} 没有可用的电子证照专用章 / the department has no usable "
            "licence seal",
            extra={"seal_status": "none"},
        )
    problem, seal = refusal
    label, english = PROBLEMS[problem]
    raise Forbidden(
        f"印章 {seal.code}（{seal.name}）{label}，不能用于签发 / seal {seal.code} is "
        f"{english} and cannot seal licences",
        extra={"seal_status": problem, "seal": seal.code},
    )


def candidate_seals(
    session: Session, department: Department, licence_type: str | None
) -> list[Seal]:
    """The seals that may seal ``licence_type``, newest first, usable or not; a type no seal of
    the department is authorised for is refused here (``unauthorised``)."""
    if licence_type is None:
        return list(
            session.exec(
                select(Seal)
                .where(
                    Seal.department_code == department.code,
                    Seal.seal_type == SealType.LICENCE.value,
                )
                .order_by(col(Seal.valid_from).desc())
            ).all()
        )
    seals = authorised_seals(session, department.code, licence_type)
    if not seals:
        raise Forbidden(
            f"部门 {department.name} 没有获授权加盖证照类型 {licence_type} 的印章 / no seal "
            f"of the department is authorised for licence type {licence_type}",
            extra={"seal_status": "unauthorised", "licence_type": licence_type},
        )
    return seals


def _context(
    session: Session,
    trust: TrustDomain,
    department: Department,
    seal: Seal,
    record: CertificateRecord,
) -> SealContext:
    return SealContext(
        seal=seal,
        department=department,
        certificate_der=trust.certificate(record).public_bytes(serialization.Encoding.DER),
        chain_der=tuple(
            c.public_bytes(serialization.Encoding.DER)
            for c in trust.intermediates(session) + trust.roots(session)
        ),
    )
