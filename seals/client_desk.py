"""Department API clients as the edge uses them: the operator's CLI, the Bearer check on every
request and the OAuth token endpoint.

Each method is one unit of work with its own transaction (a change and its audit entry commit
together) or read, and returns rows whose columns are loaded (sessions do not expire on commit),
so the edge never holds a session. The rules stay in ``seals.clients``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Engine

from core.audit import AuditLog
from core.clock import Clock
from core.db import reading, transaction
from keys.audit import AuditedKeyUse
from keys.store import KeyUseListener
from seals.clients import (
    DEPARTMENT_SCOPES,
    ApiClient,
    authenticate,
    create_client,
    list_clients,
    revoke_client,
    rotate_client_key,
)
from seals.registry import SealRegistry

T = TypeVar("T")


class ClientDesk:
    """API clients, one transaction per action."""

    def __init__(
        self, *, engine: Engine, audit: AuditLog, clock: Clock, registry: SealRegistry
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock
        self._registry = registry

    def create(
        self,
        department_code: str,
        *,
        name: str,
        actor: str,
        scopes: tuple[str, ...] = DEPARTMENT_SCOPES,
    ) -> tuple[ApiClient, str]:
        """A new client of an existing department (404 otherwise) and its key, shown once."""
        with transaction(self._engine) as session:
            self._registry.department(session, department_code)
            return create_client(
                session,
                self._audit,
                self._clock,
                department_code=department_code,
                name=name,
                actor=actor,
                scopes=scopes,
            )

    def clients(self) -> list[ApiClient]:
        with reading(self._engine) as session:
            return list_clients(session)

    def rotate(self, client_id: str, *, actor: str) -> tuple[ApiClient, str]:
        with transaction(self._engine) as session:
            return rotate_client_key(session, self._audit, client_id=client_id, actor=actor)

    def revoke(self, client_id: str, *, actor: str) -> ApiClient:
        with transaction(self._engine) as session:
            return revoke_client(
                session, self._audit, self._clock, client_id=client_id, actor=actor
            )

    def authenticate(self, key: str) -> ApiClient:
        """The active client whose API key this is; 401 otherwise (``seals.clients``)."""
        with reading(self._engine) as session:
            return authenticate(session, key)

    def client(self, client_id: str) -> ApiClient | None:
        """The client row, read afresh on each request so a revocation takes effect at once."""
        with reading(self._engine) as session:
            return session.get(ApiClient, client_id)

    def signed_for(
        self,
        actor: str,
        sign: Callable[[KeyUseListener], T],
        request_id: str | None = None,
    ) -> T:
        """Runs ``sign`` (e.g. minting an access token) with each key use audited under
        ``actor``, in a transaction of its own: no signature leaves without its audit entry."""
        with transaction(self._engine) as session:
            return sign(AuditedKeyUse(self._audit, session, actor, request_id))
