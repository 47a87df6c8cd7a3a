"""Supervisors signing in to the supervision pages with their office's API client.

A supervision office's staff hold the client id and API key of a client with the ``supervise``
scope (and no other: ``seals.clients``). Signing in checks both, and that the scope is there,
and leaves a ``supervisor.sign_in`` audit entry whatever the outcome, so a guessing attempt is on
the chain as well as a success. The pages then re-read the client on every request
(:meth:`SupervisorDesk.active`): revoking the client ends every session at once.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from core.audit import AuditLog
from core.db import reading, transaction
from core.errors import Unauthenticated
from seals.clients import SUPERVISE, ApiClient, authenticate
from seals.models import Department

SIGN_IN = "supervisor.sign_in"
SIGN_OUT = "supervisor.sign_out"
WRONG = (
    "客户端编号或密钥错误，或该凭证不是监察凭证 / wrong client id or API key, or these are not a "
    "supervision office's credentials"
)


@dataclass(frozen=True)
class Supervisor:
    """The office a signed-in supervisor acts for, and the client they signed in with."""

    client_id: str
    office_code: str
    office_name: str
    division_code: str

    @property
    def actor(self) -> str:
        return f"supervisor:{self.office_code}/client:{self.client_id}"


def _supervisor(client: ApiClient, office: Department | None) -> Supervisor | None:
    if client.revoked_at is not None or list(client.scopes) != [SUPERVISE] or office is None:
        return None
    return Supervisor(client.id, office.code, office.name, office.division_code)


class SupervisorDesk:
    """Sign-in, sign-out and the per-request check, one transaction each."""

    def __init__(self, *, engine: Engine, audit: AuditLog) -> None:
        self._engine = engine
        self._audit = audit

    def sign_in(self, client_id: str, api_key: str, request_id: str | None = None) -> Supervisor:
        """The supervisor for these credentials; 401 (audited) for anything else — an unknown
        or revoked client, a wrong key, a key of another client, a department's client."""
        client_id = client_id.strip()[:32]
        found: Supervisor | None = None
        reason = "wrong_credentials"
        with reading(self._engine) as session:
            try:
                client = authenticate(session, api_key.strip())
            except Unauthenticated:
                client = None
            if client is not None and hmac.compare_digest(client.id, client_id):
                found = _supervisor(client, session.get(Department, client.department_code))
                if found is None:
                    reason = "not_supervise"
        with transaction(self._engine) as session:
            self._audit.append(
                session,
                actor=found.actor if found else f"client:{client_id or '-'}",
                action=SIGN_IN,
                object_type="api_client",
                object_id=client_id or "-",
                outcome="ok" if found else "refused",
                detail={"office": found.office_code} if found else {"reason": reason},
                request_id=request_id,
            )
        if found is None:
            raise Unauthenticated(WRONG)
        return found

    def sign_out(self, supervisor: Supervisor, request_id: str | None = None) -> None:
        with transaction(self._engine) as session:
            self._audit.append(
                session,
                actor=supervisor.actor,
                action=SIGN_OUT,
                object_type="api_client",
                object_id=supervisor.client_id,
                detail={"office": supervisor.office_code},
                request_id=request_id,
            )

    def active(self, client_id: str) -> Supervisor | None:
        """The supervisor of a session's client, read afresh: None once the client is revoked
        or no longer holds only ``supervise``."""
        with reading(self._engine) as session:
            client = session.get(ApiClient, client_id)
            if client is None:
                return None
            return _supervisor(client, session.get(Department, client.department_code))
