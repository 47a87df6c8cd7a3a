"""The seals registry as the departments' API and the operator's CLI use it.

Each method is one unit of work: it opens its own transaction (a change, with its audit entries
in the same transaction) or a read, and hands back a frozen view (``seals.views``) or a row whose
columns are loaded, so the edge never holds a session. The rules themselves stay where they are
(``SealRegistry``, ``seals.authorisation``, ``seals.revocation``); this module only gives each
edge action its transaction and its answer.

Whether a department may issue a licence type is the catalogue's to say, and the catalogue lives
above this layer (``licences``): the container hands in that check as ``IssuingRights``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.audit import AuditLog
from core.db import reading, transaction
from core.errors import Forbidden, InvalidInput, NotFound, TooLarge
from seals.authorisation import authorise, withdraw
from seals.models import Department, Seal, SealType
from seals.registry import SealRegistry
from seals.revocation import resume_seal, revoke_seal
from seals.views import DepartmentView, SealView, department_view, seal_view
from trust.authority import TrustDomain

# (session, licence type code, department code): NotFound for an unknown type, Conflict for a
# withdrawn one, Forbidden when the department may not issue it (licences.catalogue).
IssuingRights = Callable[[Session, str, str], None]
MAX_IMAGE_BYTES = 2_000_000  # an uploaded seal image (PUT /api/v1/seals/{code}/image)


class SealDesk:
    """Departments and seals, one transaction per action."""

    def __init__(
        self,
        *,
        engine: Engine,
        registry: SealRegistry,
        trust: TrustDomain,
        audit: AuditLog,
        issuing_rights: IssuingRights,
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._trust = trust
        self._audit = audit
        self._may_issue = issuing_rights

    # Departments -----------------------------------------------------------------------------

    def department(self, code: str) -> DepartmentView:
        """Public: who the department is and which seals it holds (404 if unknown)."""
        with reading(self._engine) as session:
            found = self._registry.department(session, code)
            return department_view(found, self._registry.seals(session, code))

    def departments(self) -> list[Department]:
        """Every department, by code."""
        with reading(self._engine) as session:
            return self._registry.departments(session)

    def add_department(
        self,
        *,
        actor: str,
        code: str,
        name: str,
        division_code: str,
        level: str,
        parent_code: str | None = None,
    ) -> Department:
        """Register a department (``department.create`` audited in the same transaction)."""
        with transaction(self._engine) as session:
            return self._registry.add_department(
                session,
                actor=actor,
                code=code,
                name=name,
                division_code=division_code,
                level=level,
                parent_code=parent_code,
            )

    # Reading seals ---------------------------------------------------------------------------

    def seals(self, department_code: str | None = None) -> list[SealView]:
        """The department's seals (every seal without one), by code."""
        with reading(self._engine) as session:
            return [seal_view(session, s) for s in self._registry.seals(session, department_code)]

    def seal(self, code: str, department_code: str | None = None) -> SealView:
        """One seal; with ``department_code``, only for its own department (403)."""
        with reading(self._engine) as session:
            seal = session.get(Seal, code)
            if seal is None:
                raise NotFound(f"印章不存在 / no seal {code}", field="code")
            if department_code is not None and seal.department_code != department_code:
                raise Forbidden(
                    "只有印章所属部门可以查看 / only the seal's own department may read it"
                )
            return seal_view(session, seal)

    # Changing seals --------------------------------------------------------------------------

    def create(
        self,
        *,
        actor: str,
        department_code: str,
        seal_type: SealType,
        name: str | None = None,
        width_mm: float = 42.0,
        licence_types: Sequence[str] = (),
        request_id: str | None = None,
    ) -> SealView:
        """A new seal with its key, certificate, drawn image and authorisations. Each licence
        type must be one the department may issue, checked before a key is made."""
        with transaction(self._engine) as session:
            for type_code in licence_types:
                self._may_issue(session, type_code, department_code)
            seal = self._registry.create_seal(
                session,
                actor=actor,
                department_code=department_code,
                seal_type=seal_type,
                name=name,
                width_mm=width_mm,
                licence_types=licence_types,
                request_id=request_id,
            )
            session.flush()
            return seal_view(session, seal)

    def withdraw_certificates(
        self,
        code: str,
        reason: str,
        *,
        actor: str,
        department_code: str | None = None,
        request_id: str | None = None,
    ) -> SealView:
        """Revoke every certificate of the seal, or hold them (``certificateHold``: suspend)."""
        with transaction(self._engine) as session:
            seal = revoke_seal(
                session,
                trust=self._trust,
                audit=self._audit,
                seal_code=code,
                reason=reason,
                actor=actor,
                department_code=department_code,
                request_id=request_id,
            )
            return seal_view(session, seal)

    def resume(
        self,
        code: str,
        *,
        actor: str,
        department_code: str | None = None,
        request_id: str | None = None,
    ) -> SealView:
        """Lift a suspension: the held certificates become good again."""
        with transaction(self._engine) as session:
            seal = resume_seal(
                session,
                trust=self._trust,
                audit=self._audit,
                seal_code=code,
                actor=actor,
                department_code=department_code,
                request_id=request_id,
            )
            return seal_view(session, seal)

    def renew(
        self,
        code: str,
        *,
        actor: str,
        department_code: str | None = None,
        request_id: str | None = None,
    ) -> SealView:
        """延续: a new key version and certificate; the old certificate stays good."""
        with transaction(self._engine) as session:
            seal = self._registry.renew_seal(
                session,
                actor=actor,
                seal_code=code,
                department_code=department_code,
                request_id=request_id,
            )
            return seal_view(session, seal)

    def authorise(
        self,
        code: str,
        licence_type: str,
        *,
        actor: str,
        department_code: str | None = None,
        request_id: str | None = None,
    ) -> SealView:
        """Let the seal seal ``licence_type``, a type its department may issue."""
        with transaction(self._engine) as session:
            seal = self._registry.seal(session, code, department_code)
            self._may_issue(session, licence_type, seal.department_code)
            authorise(
                session,
                self._audit,
                seal=seal,
                licence_type=licence_type,
                actor=actor,
                request_id=request_id,
            )
            session.flush()
            return seal_view(session, seal)

    def deauthorise(
        self,
        code: str,
        licence_type: str,
        *,
        actor: str,
        department_code: str | None = None,
        request_id: str | None = None,
    ) -> SealView:
        """Stop the seal sealing ``licence_type``; licences it sealed are untouched."""
        with transaction(self._engine) as session:
            seal = self._registry.seal(session, code, department_code)
            withdraw(
                session,
                self._audit,
                seal=seal,
                licence_type=licence_type,
                actor=actor,
                request_id=request_id,
            )
            session.flush()
            return seal_view(session, seal)

    def upload_image(
        self,
        code: str,
        png: bytes,
        *,
        content_type: str,
        actor: str,
        department_code: str,
        request_id: str | None = None,
    ) -> SealView:
        """An image uploaded by the department: the seal is found (404, 403) before the body is
        judged, which must be ``image/png`` (422) of at most ``MAX_IMAGE_BYTES`` (413)."""
        with transaction(self._engine) as session:
            self._registry.seal(session, code, department_code)
            if content_type != "image/png":
                raise InvalidInput(
                    "印章图片须以 image/png 上传 / upload the seal image as image/png",
                    field="image",
                )
            if len(png) > MAX_IMAGE_BYTES:
                raise TooLarge(
                    f"印章图片不得超过{MAX_IMAGE_BYTES}字节 / seal image must be at most "
                    f"{MAX_IMAGE_BYTES} bytes",
                    field="image",
                )
            seal = self._registry.set_image(
                session,
                actor=actor,
                seal_code=code,
                png=png,
                department_code=department_code,
                request_id=request_id,
            )
            return seal_view(session, seal)

    def replace_image(self, code: str, png: bytes, *, actor: str) -> Seal:
        """The operator's replacement image (checked as a PNG seal image, no size limit);
        the row comes back with its new image loaded."""
        with transaction(self._engine) as session:
            return self._registry.set_image(session, actor=actor, seal_code=code, png=png)
