"""Department API clients (each belongs to a department): keys are shown once, stored as SHA-256 hashes, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, Session, SQLModel, select

from core.audit import AuditLog
from core.clock import Clock
from core.errors import InvalidInput, NotFound, Unauthenticated

PREFIX = "elk_"
# What a department's client may do; "admin" is never granted by default.
DEPARTMENT_SCOPES = (
    "licences:issue",
    "licences:manage",
    "catalogue:write",
    "licences:pull",
    "events:subscribe",  # signed events at the department's endpoint (supervision.subscriptions)
)
# Correcting holders' registered names, per holder category: only for the registry that is
# authoritative for that kind of holder, and never granted by default (licences.holders).
HOLDER_SCOPES = (
    "holders:correct:natural_person",
    "holders:correct:legal_person",
    "holders:correct:other_organisation",
)
# A supervision office (电子监察) reads figures, the audit trail and alerts of the departments
# under its division, and writes nothing: its client holds this scope and no other.
SUPERVISE = "supervise"
# The platform's message service receives expiry reminders (topic ``reminders``); never default.
REMINDERS = "events:reminders"
ALL_SCOPES = (*DEPARTMENT_SCOPES, *HOLDER_SCOPES, "admin", SUPERVISE, REMINDERS)
SUPERVISE_ALONE = (
    "监察权限 supervise 须单独授予，不能与其他权限同时持有 / the supervise scope is exclusive: a "
    "supervision office's client holds no other scope"
)


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_client"

    id: str = Field(primary_key=True, max_length=16)
    department_code: str = Field(foreign_key="department.code", index=True, max_length=18)
    name: str = Field(max_length=64)
    key_sha256: str = Field(max_length=64)
    scopes: list[str] = Field(
        default_factory=lambda: list(DEPARTMENT_SCOPES), sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_client(
    session: Session,
    audit: AuditLog,
    clock: Clock,
    *,
    department_code: str,
    name: str,
    actor: str,
    scopes: tuple[str, ...] = DEPARTMENT_SCOPES,
) -> tuple[ApiClient, str]:
    """Returns the client and its API key, which is never stored and cannot be shown again."""
    unknown = set(scopes) - set(ALL_SCOPES)
    if unknown or not scopes:
        raise InvalidInput(f"未知的权限范围 / unknown scopes {sorted(unknown)}", field="scopes")
    if SUPERVISE in scopes and set(scopes) != {SUPERVISE}:
        raise InvalidInput(SUPERVISE_ALONE, field="scopes")
    client_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    key = f"{PREFIX}{client_id}_{secret}"
    client = ApiClient(
        id=client_id,
        department_code=department_code,
        name=name,
        key_sha256=_hash(key),
        created_at=clock.now(),
        scopes=list(scopes),
    )
    session.add(client)
    audit.append(
        session,
        actor=actor,
        action="client.create",
        object_type="api_client",
        object_id=client_id,
        detail={"department": department_code, "scopes": list(scopes)},
    )
    return client, key


def authenticate(session: Session, key: str) -> ApiClient:
    problem = Unauthenticated("API 密钥无效 / invalid API key")
    if not key.startswith(PREFIX) or key.count("_") < 2:
        raise problem
    client_id = key[len(PREFIX) :].split("_", 1)[0]
    client = session.get(ApiClient, client_id)
    if client is None or client.revoked_at is not None:
        raise problem
    if not hmac.compare_digest(client.key_sha256, _hash(key)):
        raise problem
    return client


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.exec(select(ApiClient)))


def revoke_client(
    session: Session, audit: AuditLog, clock: Clock, *, client_id: str, actor: str
) -> ApiClient:
    client = session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"客户端不存在 / no API client {client_id}")
    if client.revoked_at is None:
        client.revoked_at = clock.now()
        session.add(client)
        audit.append(
            session,
            actor=actor,
            action="client.revoke",
            object_type="api_client",
            object_id=client_id,
            detail={"department": client.department_code},
        )
    return client


def rotate_client_key(
    session: Session, audit: AuditLog, *, client_id: str, actor: str
) -> tuple[ApiClient, str]:
    """A new API key for the same client; the old key stops working in the same transaction."""
    client = session.get(ApiClient, client_id)
    if client is None or client.revoked_at is not None:
        raise NotFound(f"客户端不存在或已吊销 / no active API client {client_id}")
    key = f"{PREFIX}{client_id}_{secrets.token_urlsafe(32)}"
    client.key_sha256 = _hash(key)
    session.add(client)
    audit.append(
        session,
        actor=actor,
        action="client.rotate",
        object_type="api_client",
        object_id=client_id,
        detail={"department": client.department_code},
    )
    return client, key
