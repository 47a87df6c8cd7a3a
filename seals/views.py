"""What the seals registry shows of a department and its seals, built inside a transaction.

The edge (routes, commands) holds no session, so it cannot follow a seal to its certificates or
its authorisations after the transaction ends. These frozen views are built while the session
is open (``seal_view``) and carry everything the API and the CLI print: never a key, never the
image bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from seals.authorisation import authorised_types
from seals.models import Department, Seal, SealStatus, SealType
from seals.revocation import seal_certificates


@dataclass(frozen=True)
class CertificateView:
    """One certificate the seal has had; the old ones stay so older licences keep verifying."""

    serial: str
    status: str  # good | revoked | hold
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None
    revocation_reason: str | None


@dataclass(frozen=True)
class SealView:
    """A seal as its own department (or the operator) sees it."""

    code: str
    name: str
    department: str
    seal_type: str  # GB/T 38540 type code: 01 公章, 02 电子证照专用章, 03 业务专用章
    seal_type_label: str
    status: str  # active | suspended | revoked
    status_label: str
    valid_from: datetime
    valid_until: datetime
    width_mm: float  # printed size of the seal image
    key_ref: str  # the key version the current certificate is bound to
    licence_types: tuple[str, ...]  # what the seal is authorised to seal
    certificate_serial: str
    certificates: tuple[CertificateView, ...]  # oldest first


@dataclass(frozen=True)
class PublicSealView:
    """A seal as anyone may see it: identifier, type, status, validity."""

    code: str
    name: str
    seal_type: str
    seal_type_label: str
    status: str
    status_label: str
    valid_from: datetime
    valid_until: datetime


@dataclass(frozen=True)
class DepartmentView:
    """A department and the seals it holds (public information)."""

    code: str  # unified social credit code (GB 32100)
    name: str
    division_code: str  # GB/T 2260
    level: str
    parent_code: str | None
    seals: tuple[PublicSealView, ...]


def seal_view(session: Session, seal: Seal) -> SealView:
    """The seal with its certificates and authorisations, read in the caller's session."""
    return SealView(
        code=seal.code,
        name=seal.name,
        department=seal.department_code,
        seal_type=seal.seal_type,
        seal_type_label=SealType(seal.seal_type).label,
        status=seal.status,
        status_label=SealStatus(seal.status).label,
        valid_from=seal.valid_from,
        valid_until=seal.valid_until,
        width_mm=seal.width_mm,
        key_ref=seal.key_ref,
        licence_types=tuple(authorised_types(session, seal.code)),
        certificate_serial=seal.certificate_serial,
        certificates=tuple(
            CertificateView(
                serial=r.serial,
                status=r.status,
                not_before=r.not_before,
                not_after=r.not_after,
                revoked_at=r.revoked_at,
                revocation_reason=r.revocation_reason,
            )
            for r in seal_certificates(session, seal.code)
        ),
    )


def department_view(department: Department, seals: Iterable[Seal]) -> DepartmentView:
    """The public page of a department: who it is, and its seals without keys or images."""
    return DepartmentView(
        code=department.code,
        name=department.name,
        division_code=department.division_code,
        level=department.level,
        parent_code=department.parent_code,
        seals=tuple(
            PublicSealView(
                code=s.code,
                name=s.name,
                seal_type=s.seal_type,
                seal_type_label=SealType(s.seal_type).label,
                status=s.status,
                status_label=SealStatus(s.status).label,
                valid_from=s.valid_from,
                valid_until=s.valid_until,
            )
            for s in seals
        ),
    )
