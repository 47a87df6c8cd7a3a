"""Tables of the recognised trust domains (migrations 0009 and 0013).

``federation_domain`` keeps, per recognised domain, the URL of its trust list, the SHA-256 of the
signer certificate the operator pinned, the SHA-256 of the root that signer chains to (recorded
when the domain is recognised: the domain speaks only for what chains to it), and the last list
accepted (whole, as fetched, so its
signature can be checked again at any time). ``federation_type_map`` says which local licence
type a foreign licence type corresponds to, so a department can accept it for a service item.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from core.audit import AuditLog
from core.db import as_utc, transaction
from core.errors import ElicenceError, ErrorKind, InvalidInput, NotFound
from trust.trustlist import canonical

TYPE_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}[0-9]{3}")
LocalTypes = Callable[[Session, str], str | None]  # local type code -> its name, None if absent


class RecognisedDomain(SQLModel, table=True):
    __tablename__ = "federation_domain"

    name: str = Field(primary_key=True, max_length=128)  # the list's ``domain.name``
    url: str = Field(max_length=512)
    fingerprint: str = Field(max_length=64)  # pinned, lower-case hex
    document: str = Field(sa_column=Column(Text, nullable=False))
    sequence: int
    fetched_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    next_update: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    added_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # SHA-256 of the domain's root CA (migration 0013; None for a domain recognised before it,
    # taken from its stored list and recorded at its next refresh)
    root_sha256: str | None = Field(default=None, max_length=64)


class TypeMapping(SQLModel, table=True):
    __tablename__ = "federation_type_map"

    domain_name: str = Field(primary_key=True, max_length=128, foreign_key="federation_domain.name")
    foreign_type: str = Field(primary_key=True, max_length=21)
    local_type: str = Field(max_length=21)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


def all_domains(session: Session) -> list[RecognisedDomain]:
    return list(session.exec(select(RecognisedDomain).order_by(col(RecognisedDomain.name))))


def mappings(session: Session, domain_name: str | None = None) -> list[TypeMapping]:
    query = select(TypeMapping).order_by(
        col(TypeMapping.domain_name), col(TypeMapping.foreign_type)
    )
    if domain_name is not None:
        query = query.where(TypeMapping.domain_name == domain_name)
    return list(session.exec(query))


def mapped_type(session: Session, domain_name: str, foreign_type: str) -> str | None:
    row = session.get(TypeMapping, (domain_name, foreign_type))
    return row.local_type if row is not None else None


def document_digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(document)).hexdigest()


def view(row: RecognisedDomain, maps: list[TypeMapping]) -> dict[str, Any]:
    document = json.loads(row.document)
    return {
        "name": row.name,
        "organisation": (document.get("domain") or {}).get("organisation"),
        "url": row.url,
        "fingerprint": row.fingerprint,
        "root_sha256": row.root_sha256,
        "sequence": row.sequence,
        "fetched_at": as_utc(row.fetched_at).isoformat(),
        "next_update": as_utc(row.next_update).isoformat(),
        "added_at": as_utc(row.added_at).isoformat(),
        "cas": len(document.get("cas") or []),
        "seals": len(document.get("seals") or []),
        "mappings": [{"foreign_type": m.foreign_type, "local_type": m.local_type} for m in maps],
    }


def stored_state(row: RecognisedDomain) -> tuple[int, str]:
    return row.sequence, document_digest(json.loads(row.document))


def set_mapping(
    session: Session,
    name: str,
    foreign_type: str,
    local_type: str | None,
    local_types: LocalTypes,
    now: datetime,
) -> TypeMapping | None:
    """Map ``foreign_type`` of domain ``name`` to ``local_type`` of our catalogue, or remove the
    mapping (``local_type`` None); in the caller's transaction."""
    if TYPE_CODE.fullmatch(foreign_type) is None:
        raise InvalidInput(
            f"外域证照类型代码格式错误 / {foreign_type!r} is not a licence type code "
            "(18-character credit code + 3 digits)",
            field="foreign_type",
        )
    if session.get(RecognisedDomain, name) is None:
        raise NotFound(f"未承认该信任域 / {name} is not a recognised domain", field="domain")
    row = session.get(TypeMapping, (name, foreign_type), with_for_update=True)
    if local_type is None:
        if row is None:
            raise NotFound(
                f"没有该映射 / no mapping of {foreign_type} for {name}", field="foreign_type"
            )
        session.delete(row)
        return None
    if local_types(session, local_type) is None:
        raise NotFound(
            f"本域目录中没有该证照类型 / no licence type {local_type} in this domain's catalogue",
            field="local_type",
        )
    if row is None:
        row = TypeMapping(
            domain_name=name, foreign_type=foreign_type, local_type=local_type, created_at=now
        )
    row.local_type = local_type
    session.add(row)
    return row


def remove_domain(session: Session, audit: AuditLog, name: str, actor: str) -> None:
    """Remove the domain and its mappings, with its audit entry, in the caller's transaction."""
    row = session.get(RecognisedDomain, name, with_for_update=True)
    if row is None:
        raise NotFound(f"未承认该信任域 / {name} is not a recognised domain", field="domain")
    dropped = mappings(session, name)
    for mapping in dropped:
        session.delete(mapping)
    session.flush()
    session.delete(row)
    audit.append(
        session,
        actor=actor,
        action="federation.remove",
        object_type="trust-domain",
        object_id=name,
        detail={"url": row.url, "fingerprint": row.fingerprint, "mappings": len(dropped)},
    )


def record_refusal(
    engine: Engine,
    audit: AuditLog,
    action: str,
    subject: str,
    actor: str,
    exc: ElicenceError,
    detail: dict[str, Any],
) -> None:
    """A refused list (or a peer that could not be reached: ``failed``) is recorded in its own
    transaction; nothing else is written. The original error is what the caller sees."""
    outcome = "failed" if exc.kind is ErrorKind.UNAVAILABLE else "refused"
    try:
        with transaction(engine) as session:
            audit.append(
                session,
                actor=actor,
                action=action,
                object_type="trust-domain",
                object_id=subject[:128],
                outcome=outcome,
                detail={**detail, "reason": exc.message[:300]},
            )
    except ElicenceError:
        pass
