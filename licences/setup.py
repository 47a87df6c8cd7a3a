"""Setting a domain up: the trust domain ``elicence init`` creates, and the seed data (departments,
their licence seals and API clients, catalogue entries) ``elicence init --demo`` lays down.

Each method owns its transaction, so the operator's commands never hold a session. A seed is
one transaction: departments, seals, clients and types land together or not at all, and a run
that fails halfway leaves nothing to clean up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import select

from core.audit import AuditLog
from core.clock import Clock
from core.db import reading, transaction
from licences.catalogue import Catalogue
from licences.models import Licence, LicenceType
from licences.repository import document
from seals.clients import DEPARTMENT_SCOPES, create_client
from seals.models import Department, SealType
from seals.registry import SealRegistry
from trust.authority import TrustDomain


@dataclass(frozen=True)
class DepartmentSeed:
    """A department to create, with a licence seal for ``licence_types`` (none when it issues
    nothing, as a supervision office) and one API client holding ``client_scopes``."""

    code: str
    name: str
    division_code: str
    level: str
    licence_types: tuple[str, ...]
    client_scopes: tuple[str, ...] = DEPARTMENT_SCOPES


class DomainSetup:
    """The trust domain and seed data, one transaction per step."""

    def __init__(
        self,
        *,
        engine: Engine,
        trust: TrustDomain,
        seals: SealRegistry,
        catalogue: Catalogue,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._trust = trust
        self._seals = seals
        self._catalogue = catalogue
        self._audit = audit
        self._clock = clock

    def initialise(self, actor: str) -> bool:
        """Creates the CA hierarchy and service certificates once; False when they exist."""
        with transaction(self._engine) as session:
            return self._trust.initialise(session, actor)

    def is_initialised(self) -> bool:
        with reading(self._engine) as session:
            return self._trust.is_initialised(session)

    def has_department(self, code: str) -> bool:
        with reading(self._engine) as session:
            return session.get(Department, code) is not None

    def seed(
        self,
        departments: Sequence[DepartmentSeed],
        licence_types: Sequence[LicenceType],
        *,
        actor: str,
        client_name: str,
    ) -> dict[str, str]:
        """Creates the departments, then each one's licence seal and API client, then the
        catalogue entries, in one transaction. Returns each department's API key under its
        code (stored nowhere else) and its client's id under ``<code>:client``."""
        keys: dict[str, str] = {}
        with transaction(self._engine) as session:
            for spec in departments:
                self._seals.add_department(
                    session,
                    actor=actor,
                    code=spec.code,
                    name=spec.name,
                    division_code=spec.division_code,
                    level=spec.level,
                )
            session.flush()
            for spec in departments:
                if spec.licence_types:
                    self._seals.create_seal(
                        session,
                        actor=actor,
                        department_code=spec.code,
                        seal_type=SealType.LICENCE,
                        licence_types=list(spec.licence_types),
                    )
                client, keys[spec.code] = create_client(
                    session,
                    self._audit,
                    self._clock,
                    department_code=spec.code,
                    name=client_name,
                    actor=actor,
                    scopes=spec.client_scopes,
                )
                keys[f"{spec.code}:client"] = client.id
            for entry in licence_types:
                self._catalogue.add(session, actor=actor, entry=entry)
        return keys

    def first_licence(self, issuer_code: str) -> Licence | None:
        """A licence the department issued (the demo's showcase), or None."""
        with reading(self._engine) as session:
            return session.exec(select(Licence).where(Licence.issuer_code == issuer_code)).first()

    def document(self, identifier: str) -> bytes:
        """The sealed PDF of a licence (404 when there is none)."""
        with reading(self._engine) as session:
            return document(session, identifier)
