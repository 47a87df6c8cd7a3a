"""The registry of departments and their seals: making a seal (identifier, key, certificate,
image, authorisations), its image, renewal and key rotation, and the signer each issuance uses.
Which seal a licence is sealed with is ``seals.issuing_seal``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.clock import Clock
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from keys.store import KeyRef, KeyStore, KeyUseListener
from seals.authorisation import authorise, check_department
from seals.image import MAX_NAME_CHARS, render_seal_image, validate_uploaded_seal_image
from seals.issuing_seal import SealContext, select_seal
from seals.models import Department, Seal, SealStatus, SealType
from seals.signer import KeyStoreSigner
from trust.authority import TrustDomain
from trust.models import CertificateRecord

SEAL_LIFETIME = timedelta(days=365 * 3)


def check_seal_name(name: str, *, field: str) -> None:
    """A department's name runs round its seal (``seals.image``), which holds at most
    ``MAX_NAME_CHARS`` characters. The seal certificate's common name is shortened to fit
    (``trust.profiles.fit_common_name``); its O keeps the whole name."""
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(
            f"部门名称最多 {MAX_NAME_CHARS} 个字符（印章上排不下），实为 {len(name)} 个 / the "
            f"department name has {len(name)} characters; a seal holds at most {MAX_NAME_CHARS}",
            field=field,
        )


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
        self,
        session: Session,
        *,
        actor: str,
        code: str,
        name: str,
        division_code: str,
        level: str,
        parent_code: str | None = None,
    ) -> Department:
        check_department(code, division_code, level)
        if not name.strip():
            raise InvalidInput("部门名称不能为空 / the department name is required", field="name")
        check_seal_name(name, field="name")
        if session.get(Department, code) is not None:
            raise Conflict(f"部门已存在 / department {code} exists")
        if parent_code is not None:
            self.department(session, parent_code)
        department = Department(
            code=code,
            name=name.strip(),
            division_code=division_code,
            level=level,
            parent_code=parent_code,
        )
        session.add(department)
        self._audit.append(
            session,
            actor=actor,
            action="department.create",
            object_type="department",
            object_id=code,
            detail={"name": name, "division": division_code, "parent": parent_code},
        )
        return department

    def departments(self, session: Session) -> list[Department]:
        return list(session.exec(select(Department).order_by(col(Department.code))).all())

    def seals(self, session: Session, department_code: str | None = None) -> list[Seal]:
        query = select(Seal).order_by(col(Seal.code))
        if department_code is not None:
            query = query.where(Seal.department_code == department_code)
        return list(session.exec(query).all())

    def seal(self, session: Session, code: str, department_code: str | None = None) -> Seal:
        """The seal, locked for update; only its own department may act on it (403)."""
        seal = session.get(Seal, code, with_for_update=True)
        if seal is None:
            raise NotFound(f"印章不存在 / no seal {code}", field="code")
        if department_code is not None and seal.department_code != department_code:
            raise Forbidden("只有印章所属部门可以操作 / only the seal's own department may do this")
        return seal

    def department(self, session: Session, code: str) -> Department:
        department = session.get(Department, code)
        if department is None:
            raise NotFound(f"部门不存在 / no department {code}", field="department")
        return department

    def create_seal(
        self,
        session: Session,
        *,
        actor: str,
        department_code: str,
        seal_type: SealType,
        name: str | None = None,
        width_mm: float = 42.0,
        licence_types: Sequence[str] = (),
        request_id: str | None = None,
    ) -> Seal:
        """A new seal: identifier, key, certificate from the seal CA, drawn image, and the
        licence types it may seal (``seals.authorisation``), all in the caller's transaction."""
        department = self.department(session, department_code)
        # before a key is made
        check_seal_name(department.name, field="department.name")
        if not 20.0 <= width_mm <= 60.0:
            raise InvalidInput(
                "印章尺寸须为20至60毫米 / seal size must be 20-60 mm", field="width_mm"
            )
        code = self._next_code(session, department, seal_type)
        key_ref = self._keys.create(f"seal-{code}")
        certificate = self._certify(session, actor, department, seal_type, code, key_ref)
        seal = self._seal_row(department, seal_type, code, key_ref, certificate)
        seal.name = (name or "").strip() or seal.name  # the name given, else the drawn one
        seal.width_mm = width_mm
        session.add(seal)
        self._audit.append(
            session,
            actor=actor,
            action="seal.create",
            object_type="seal",
            object_id=code,
            request_id=request_id,
            detail={
                "department": department.code,
                "type": seal_type.value,
                "certificate": certificate.serial,
            },
        )
        session.flush()
        for licence_type in dict.fromkeys(licence_types):  # each once, in the order given
            authorise(
                session,
                self._audit,
                seal=seal,
                licence_type=licence_type,
                actor=actor,
                request_id=request_id,
            )
        return seal

    def _seal_row(
        self,
        department: Department,
        seal_type: SealType,
        code: str,
        key_ref: KeyRef,
        certificate: CertificateRecord,
    ) -> Seal:
        """A new seal's row, named after its department and type, with its drawn image."""
        return Seal(
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

    @staticmethod
    def _next_code(session: Session, department: Department, seal_type: SealType) -> str:
        """The next code of a seal: division code, seal type, then a six-digit running number."""
        prefix = f"{department.division_code}{seal_type.value}"
        count = session.exec(
            select(func.count()).select_from(Seal).where(col(Seal.code).startswith(prefix))
        ).one()
        return f"{prefix}{count + 1:06d}"

    def _certify(
        self,
        session: Session,
        actor: str,
        department: Department,
        seal_type: SealType,
        code: str,
        key_ref: KeyRef,
    ) -> CertificateRecord:
        """A seal certificate from the seal CA for ``key_ref``, named after the department and
        the seal type, valid for ``SEAL_LIFETIME``."""
        return self._trust.issue_seal_certificate(
            session,
            actor=actor,
            department_name=department.name,
            department_code=department.code,
            seal_name=seal_type.label,
            seal_code=code,
            key_ref=key_ref,
            lifetime=SEAL_LIFETIME,
        )

    def set_image(
        self,
        session: Session,
        *,
        actor: str,
        seal_code: str,
        png: bytes,
        department_code: str | None = None,
        request_id: str | None = None,
    ) -> Seal:
        """Replace the drawn image with an uploaded one, checked first (``InvalidInput``).
        Licences already sealed keep the image they were sealed with."""
        seal = self.seal(session, seal_code, department_code)
        seal.image_png = validate_uploaded_seal_image(png)
        session.add(seal)
        self._audit.append(
            session,
            actor=actor,
            action="seal.image",
            object_type="seal",
            object_id=seal_code,
            request_id=request_id,
            detail={"bytes": len(png), "sha256": hashlib.sha256(png).hexdigest()},
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

    def renew_seal(
        self,
        session: Session,
        *,
        actor: str,
        seal_code: str,
        department_code: str | None = None,
        request_id: str | None = None,
    ) -> Seal:
        """延续: a new key version and certificate with a new validity (also for an expired
        seal); the old certificate stays good, so licences it sealed keep verifying."""
        self.seal(session, seal_code, department_code)
        return self.rotate_seal_key(
            session, actor=actor, seal_code=seal_code, action="seal.renew", request_id=request_id
        )

    def rotate_seal_key(
        self,
        session: Session,
        *,
        actor: str,
        seal_code: str,
        action: str = "seal.rotate",
        request_id: str | None = None,
    ) -> Seal:
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
            raise Conflict(
                f"印章 {seal_code} {SealStatus(seal.status).label} / seal {seal_code} is "
                f"{seal.status}",
                extra={"current_status": seal.status},
            )
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
        certificate = self._certify(
            session, actor, department, SealType(seal.seal_type), seal_code, new_ref
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
            action=action,
            object_type="seal",
            object_id=seal_code,
            request_id=request_id,
            detail={
                "key": str(new_ref),
                "certificate": certificate.serial,
                "previous_certificate": previous_certificate,
            },
        )
        return seal

    def seal_for_issuance(
        self, session: Session, department_code: str, licence_type: str | None = None
    ) -> SealContext:
        """The seal to seal a licence of ``licence_type`` with, or a 403 that says why none may
        (``seals.issuing_seal``): the department's newest active seal authorised for the type,
        within its validity and with a good certificate; without a type, any active licence
        seal (type 02) of the department."""
        department = self.department(session, department_code)
        return select_seal(
            session,
            trust=self._trust,
            department=department,
            licence_type=licence_type,
            now=self._clock.now(),
        )

    def signer(self, context: SealContext, listener: KeyUseListener) -> KeyStoreSigner:
        return KeyStoreSigner(
            store=self._keys,
            ref=KeyRef.parse(context.seal.key_ref),
            certificate_der=context.certificate_der,
            chain_der=list(context.chain_der),
            listener=listener,
        )
