"""The registry of departments and their seals, and the seal signer each issuance uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func
from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import as_utc
from core.errors import Conflict, Forbidden, NotFound
from keys.store import KeyRef, KeyStore, KeyUseListener
from seals.image import render_seal_image
from seals.models import Department, Seal, SealStatus, SealType
from seals.signer import KeyStoreSigner
from trust.authority import TrustDomain
from trust.models import CertificateRecord

SEAL_LIFETIME = timedelta(days=365 * 3)


@dataclass(frozen=True)
class SealContext:
    """What a sealing needs: the seal row and the DER of its certificate and chain."""

    seal: Seal
    department: Department
    certificate_der: bytes
    chain_der: tuple[bytes, ...]


class SealRegistry:
    def __init__(
        self,
        *,
        trust: TrustDomain,
        keystore: KeyStore,
        clock: Clock,
        audit: AuditLog,
        font_path: Path,
    ) -> None:
        self._trust = trust
        self._keys = keystore
        self._clock = clock
        self._audit = audit
        self._font = font_path

    def add_department(
        self, session: Session, *, actor: str, code: str, name: str, division_code: str, level: str
    ) -> Department:
        if session.get(Department, code) is not None:
            raise Conflict(f"部门已存在 / department {code} exists")
        department = Department(code=code, name=name, division_code=division_code, level=level)
        session.add(department)
        self._audit.append(
            session,
            actor=actor,
            action="department.create",
            object_type="department",
            object_id=code,
            detail={"name": name},
        )
        return department

    def department(self, session: Session, code: str) -> Department:
        department = session.get(Department, code)
        if department is None:
            raise NotFound(f"部门不存在 / no department {code}", field="department")
        return department

    def create_seal(
        self, session: Session, *, actor: str, department_code: str, seal_type: SealType
    ) -> Seal:
        department = self.department(session, department_code)
        prefix = f"{department.division_code}{seal_type.value}"
        count = session.exec(
            select(func.count()).select_from(Seal).where(col(Seal.code).startswith(prefix))
        ).one()
        code = f"{prefix}{count + 1:06d}"
        key_ref = self._keys.create(f"seal-{code}")
        certificate = self._trust.issue_seal_certificate(
            session,
            actor=actor,
            department_name=department.name,
            department_code=department.code,
            seal_name=seal_type.label,
            seal_code=code,
            key_ref=key_ref,
            lifetime=SEAL_LIFETIME,
        )
        seal = Seal(
            code=code,
            department_code=department.code,
            seal_type=seal_type.value,
            name=f"{department.name}{seal_type.label}",
            certificate_serial=certificate.serial,
            key_ref=str(key_ref),
            valid_from=certificate.not_before,
            valid_until=certificate.not_after,
            image_png=render_seal_image(
                department.name, seal_type.label, font_path=self._font, seal_code=code
            ),
        )
        session.add(seal)
        self._audit.append(
            session,
            actor=actor,
            action="seal.create",
            object_type="seal",
            object_id=code,
            detail={
                "department": department.code,
                "type": seal_type.value,
                "certificate": certificate.serial,
            },
        )
        return seal

    def active_seals(self, session: Session, department_code: str) -> list[Seal]:
        self.department(session, department_code)
        return list(
            session.exec(
                select(Seal)
                .where(
                    Seal.department_code == department_code,
                    Seal.status == SealStatus.ACTIVE.value,
                )
                .order_by(col(Seal.code))
            ).all()
        )

    def rotate_seal_key(self, session: Session, *, actor: str, seal_code: str) -> Seal:
        """Give the seal a new key version and a new certificate from the seal CA bound to it.

        The old certificate row stays, status good: licences sealed with it name it
        (``licence.seal_certificate_serial``) and still verify. The new key version is made in
        the store before the database transaction commits; if the commit fails, that version is
        simply never used, and the next rotation makes another.
        """
        seal = session.get(Seal, seal_code, with_for_update=True)
        if seal is None:
            raise NotFound(f"印章不存在 / no seal {seal_code}", field="seal")
        if seal.status != SealStatus.ACTIVE.value:
            raise Conflict(f"印章 {seal_code} 未启用 / seal {seal_code} is {seal.status}")
        department = self.department(session, seal.department_code)
        old_ref = KeyRef.parse(seal.key_ref)
        new_ref = self._keys.rotate(old_ref.label)
        self._audit.append(
            session,
            actor=actor,
            action="key.rotate",
            object_type="key",
            object_id=str(new_ref),
            detail={"purpose": "seal", "seal": seal_code, "previous": str(old_ref)},
        )
        certificate = self._trust.issue_seal_certificate(
            session,
            actor=actor,
            department_name=department.name,
            department_code=department.code,
            seal_name=SealType(seal.seal_type).label,
            seal_code=seal_code,
            key_ref=new_ref,
            lifetime=SEAL_LIFETIME,
        )
        previous_certificate = seal.certificate_serial
        seal.key_ref = str(new_ref)
        seal.certificate_serial = certificate.serial
        seal.valid_from = certificate.not_before
        seal.valid_until = certificate.not_after
        session.add(seal)
        self._audit.append(
            session,
            actor=actor,
            action="seal.rotate",
            object_type="seal",
            object_id=seal_code,
            detail={
                "key": str(new_ref),
                "certificate": certificate.serial,
                "previous_certificate": previous_certificate,
            },
        )
        return seal

    def seal_for_issuance(self, session: Session, department_code: str) -> SealContext:
        """The department's active licence seal, refused when none can be used now."""
        department = self.department(session, department_code)
        seals = session.exec(
            select(Seal)
            .where(
                Seal.department_code == department_code, Seal.seal_type == SealType.LICENCE.value
            )
            .order_by(col(Seal.valid_from).desc())
        ).all()
        now = self._clock.now()
        for seal in seals:
            if seal.status != SealStatus.ACTIVE.value:
                continue
            if not (as_utc(seal.valid_from) <= now < as_utc(seal.valid_until)):
                continue
            record = session.get(CertificateRecord, seal.certificate_serial)
            if record is None or record.status != "good":
                continue
            return SealContext(
                seal=seal,
                department=department,
                certificate_der=_der(record.pem),
                chain_der=tuple(
                    c.public_bytes(serialization.Encoding.DER)
                    for c in self._trust.intermediates(session) + self._trust.roots(session)
                ),
            )
        raise Forbidden(
            f"部门 {department.name} 没有可用的电子证照专用章 / the department has no usable licence seal"
        )

    def signer(self, context: SealContext, listener: KeyUseListener) -> KeyStoreSigner:
        return KeyStoreSigner(
            store=self._keys,
            ref=KeyRef.parse(context.seal.key_ref),
            certificate_der=context.certificate_der,
            chain_der=list(context.chain_der),
            listener=listener,
        )


def _der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
