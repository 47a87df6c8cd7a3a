"""Every presentation code minted, remembered by its nonce: what the holder consented to with it,
and which department used it.

A presentation code (``licences.presentation``) carries a random 8-byte nonce. Minting writes
one ``presentation_use`` row keyed by its hex, in the mint's own transaction (beside its
``licence.present`` audit entry): the licence, the service item the holder chose (NULL: show
only), who minted it, when and until when. When a department's counter system scans the code as
a use authorisation code (用证授权码, ``licences.use_codes``) the row records that department and
the time. The row is what makes a code usable once: a code whose nonce has no row was never
minted here, and the first department's claim is one conditional ``UPDATE`` (``claim``), so two
departments racing for the same code cannot both win, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, update
from sqlmodel import Field, Session, SQLModel, col

NONCE_HEX = 16  # the payload's 8-byte nonce, in hex


class PresentationUse(SQLModel, table=True):
    __tablename__ = "presentation_use"

    nonce: str = Field(primary_key=True, max_length=NONCE_HEX)
    identifier: str = Field(foreign_key="licence.identifier", max_length=96)
    service_item: str | None = Field(default=None, max_length=64)  # NULL: show only
    minted_by: str = Field(max_length=128)
    presented_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_by: str | None = Field(default=None, foreign_key="department.code", max_length=18)
    used_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


def claim(
    session: Session, *, nonce: str, identifier: str, department_code: str, at: datetime
) -> bool:
    """Mark an unused use authorisation code used by ``department_code``: True when this call
    claimed it, False when there is no such unused code for that licence (never minted, show
    only, or already used — the caller reads the row to say which).

    One ``UPDATE … WHERE used_by IS NULL``, the first statement of the caller's transaction: on
    PostgreSQL a concurrent claim waits for the row lock and then finds it taken; on SQLite the
    write lock is taken before anything is read, so the loser waits rather than failing on a
    stale snapshot."""
    statement = (
        update(PresentationUse)
        .where(
            col(PresentationUse.nonce) == nonce,
            col(PresentationUse.identifier) == identifier,
            col(PresentationUse.service_item).is_not(None),
            col(PresentationUse.used_by).is_(None),
        )
        .values(used_by=department_code, used_at=at)
    )
    result = session.connection().execute(statement)
    return result.rowcount == 1
