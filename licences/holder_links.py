"""Holder links (持证人链接): a secret URL the issuing department hands to a holder with a
licence, opening ``/h/present/<secret>`` — a phone page that shows a fresh presentation code.

A link is ``hl_<id>_<secret>``. Only the SHA-256 of the whole text is stored; the ``id`` is the
row's key, shown to the holder to tell links apart, and is not enough to use one. Every link
expires (30 days unless the department asks for fewer or more, at most a year), is listed to the
signed-in holder it was made for, and can be revoked by them at once. A link that is unknown,
wrong, revoked or expired is refused with one and the same answer, so nothing is learnt about
it; using a revoked or expired one (the whole secret, so only its holder can) is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import Column, DateTime
from sqlmodel import Field, Session, SQLModel, col, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import as_utc
from core.errors import Conflict, InvalidInput, NotFound
from licences.models import Holder, Licence
from licences.repository import holder_licence, licence_by_identifier

LINK_PREFIX = "hl_"
DEFAULT_DAYS = 30
MAX_DAYS = 366  # a year, leap day included
MAX_LISTED = 200


class HolderLink(SQLModel, table=True):
    __tablename__ = "holder_link"

    id: str = Field(primary_key=True, max_length=16)
    identifier: str = Field(foreign_key="licence.identifier", index=True, max_length=96)
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_by: str = Field(max_length=128)
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    # Revision 0012: every link expires; links made before it expire 30 days after the upgrade.
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class LinkStatus(str, Enum):
    ACTIVE = "active"  # 有效
    REVOKED = "revoked"  # 已撤销
    EXPIRED = "expired"  # 已过期 (computed)

    @property
    def label(self) -> str:
        return {
            "active": "有效 / active",
            "revoked": "已撤销 / revoked",
            "expired": "已过期 / expired",
        }[self.value]


def link_status(link: HolderLink, now: datetime) -> LinkStatus:
    if link.revoked_at is not None:
        return LinkStatus.REVOKED
    if now >= as_utc(link.expires_at):
        return LinkStatus.EXPIRED
    return LinkStatus.ACTIVE


@dataclass(frozen=True)
class LinkOwner:
    """The signed-in holder: the ID their licences are issued to, and the audit's actor."""

    id_type: str
    id_number: str
    actor: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class LinkUnusable(NotFound):
    """One answer for every link that cannot be used. ``link_id`` and ``status`` are set for
    a revoked or expired link presented whole (for the audit only; never answered)."""

    def __init__(self, link_id: str | None = None, status: LinkStatus | None = None) -> None:
        super().__init__(
            "持证人链接无效、已撤销或已过期 / the holder link is invalid, revoked or expired"
        )
        self.link_id = link_id
        self.status = status


def check_days(days: int | None) -> int:
    if days is None:
        return DEFAULT_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(
            f"链接有效天数应为 1-{MAX_DAYS} / a holder link lasts 1 to {MAX_DAYS} days",
            field="valid_days",
        )
    return days


class HolderLinks:
    def __init__(self, audit: AuditLog, clock: Clock) -> None:
        self._audit = audit
        self._clock = clock

    def create(
        self,
        session: Session,
        identifier: str,
        *,
        actor: str,
        valid_days: int | None = None,
        request_id: str | None = None,
    ) -> tuple[HolderLink, str]:
        """The link row and its secret, which is not stored and cannot be shown again."""
        days = check_days(valid_days)
        licence_by_identifier(session, identifier)
        link_id = secrets.token_hex(8)
        secret = f"{LINK_PREFIX}{link_id}_{secrets.token_urlsafe(24)}"
        now = self._clock.now()
        link = HolderLink(
            id=link_id,
            identifier=identifier,
            secret_sha256=_hash(secret),
            created_at=now,
            created_by=actor[:128],
            expires_at=now + timedelta(days=days),
        )
        session.add(link)
        self._audit.append(
            session,
            actor=actor,
            action="holder_link.create",
            object_type="licence",
            object_id=identifier,
            request_id=request_id,
            detail={"link": link_id, "expires_at": link.expires_at.isoformat()},
        )
        return link, secret

    def resolve(self, session: Session, secret: str) -> HolderLink:
        """The live link a secret names, or :class:`LinkUnusable` — the same for every failure;
        the caller audits a revoked or expired one with :meth:`refused` in a transaction of its
        own."""
        if not secret.startswith(LINK_PREFIX) or secret.count("_") < 2 or len(secret) > 128:
            raise LinkUnusable()
        link = session.get(HolderLink, secret[len(LINK_PREFIX) :].split("_", 1)[0])
        if link is None or not hmac.compare_digest(link.secret_sha256, _hash(secret)):
            raise LinkUnusable()
        status = link_status(link, self._clock.now())
        if status is not LinkStatus.ACTIVE:
            raise LinkUnusable(link.id, status)
        return _utc(link)

    def refused(
        self, session: Session, error: LinkUnusable, *, request_id: str | None = None
    ) -> None:
        """Audit the use of a revoked or expired link (only whoever holds its secret can try:
        a retry of a withdrawn capability). Unknown or wrong secrets are not written down."""
        if error.link_id is None or error.status is None:
            return
        self._audit.append(
            session,
            actor=f"holder-link:{error.link_id}",
            action="holder_link.use",
            object_type="holder_link",
            object_id=error.link_id,
            request_id=request_id,
            outcome="refused",
            detail={"status": error.status.value},
        )

    def of_holder(self, session: Session, owner: LinkOwner) -> list[HolderLink]:
        """The links to the holder's licences, newest first."""
        rows = session.exec(
            select(HolderLink)
            .join(Licence, col(Licence.identifier) == col(HolderLink.identifier))
            .join(Holder, col(Holder.id) == col(Licence.holder_id))
            .where(Holder.id_type == owner.id_type, Holder.id_number == owner.id_number)
            .order_by(col(HolderLink.created_at).desc(), col(HolderLink.id))
            .limit(MAX_LISTED)
        )
        return [_utc(row) for row in rows]

    def revoke(
        self, session: Session, owner: LinkOwner, link_id: str, *, request_id: str | None = None
    ) -> HolderLink:
        """Revoke one of the holder's links at once; another holder's is not found, a link
        already revoked or expired is a 409 naming its status."""
        link = session.get(HolderLink, link_id, with_for_update=True)
        missing = NotFound(f"没有该持证人链接 / no holder link {link_id}", field="link_id")
        if link is None:
            raise missing
        try:
            holder_licence(session, link.identifier, owner.id_type, owner.id_number)
        except NotFound:
            raise missing from None  # another holder's link is reported like a missing one
        now = self._clock.now()
        status = link_status(link, now)
        if status is not LinkStatus.ACTIVE:
            raise Conflict(
                f"该链接{status.label.split(' / ')[0]}，无需撤销 / the link is already "
                f"{status.value}",
                field="link_id",
                extra={"current_status": status.value},
            )
        link.revoked_at = now
        session.add(link)
        self._audit.append(
            session,
            actor=owner.actor,
            action="holder_link.revoke",
            object_type="holder_link",
            object_id=link.id,
            request_id=request_id,
            detail={"licence": link.identifier},
        )
        return _utc(link)


def _utc(link: HolderLink) -> HolderLink:
    link.created_at = as_utc(link.created_at)
    link.expires_at = as_utc(link.expires_at)
    if link.revoked_at is not None:
        link.revoked_at = as_utc(link.revoked_at)
    return link
