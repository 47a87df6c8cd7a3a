"""Failed verifications, one narrow row each, so the repeated-failure rules count with an index.

The audit chain holds every verification, but its detail is JSON, which no index reaches the
same way on SQLite and PostgreSQL. The rules keep this table instead: a row only for a
verification that failed (or named no licence of this domain), written by the rule in the
batch transaction of its audit entry, so a PASSED verification writes and reads nothing here.
``audit_seq`` counts "up to this entry" when a batch holds several (revision 0020).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, DateTime, Index, delete, distinct, func
from sqlmodel import Field, Session, SQLModel, col, select

# Rows are needed only for the rules' windows (minutes): older ones are deleted now and then,
# by the failure whose audit entry's number is a multiple of PRUNE_EVERY.
RETAIN = timedelta(days=1)
PRUNE_EVERY = 1000


class FailedVerification(SQLModel, table=True):
    __tablename__ = "failed_verification"
    __table_args__ = (
        Index("ix_failed_verification_source", "source", "at"),
        Index("ix_failed_verification_identifier", "identifier", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    source: str | None = Field(default=None, max_length=32)  # supervision.sources, never an address
    identifier: str | None = Field(default=None, max_length=96)  # the licence it named, if any
    audit_seq: int


def record(
    session: Session, *, at: datetime, source: str | None, identifier: str | None, audit_seq: int
) -> None:
    session.add(
        FailedVerification(
            at=at,
            source=source[:32] if source else None,
            identifier=identifier[:96] if identifier else None,
            audit_seq=audit_seq,
        )
    )
    session.flush()


def count_for_identifier(session: Session, identifier: str, since: datetime, upto: int) -> int:
    """Failures naming ``identifier`` after ``since``, up to audit entry ``upto``."""
    query = select(func.count()).where(
        FailedVerification.identifier == identifier[:96],
        col(FailedVerification.at) > since,
        col(FailedVerification.audit_seq) <= upto,
    )
    return int(session.exec(query).one())


def tally_for_source(
    session: Session, source: str, since: datetime, upto: int
) -> tuple[int, str | None]:
    """Failures from ``source`` after ``since`` up to entry ``upto``, and the one licence they
    all named (None when they named several, or some named none)."""
    query = select(
        func.count(),
        func.count(col(FailedVerification.identifier)),
        func.count(distinct(col(FailedVerification.identifier))),
        func.min(col(FailedVerification.identifier)),
    ).where(
        FailedVerification.source == source[:32],
        col(FailedVerification.at) > since,
        col(FailedVerification.audit_seq) <= upto,
    )
    total, named, distinct_named, first = session.exec(query).one()
    one = first if total and named == total and distinct_named == 1 else None
    return int(total), one


def prune(session: Session, before: datetime) -> int:
    """Deletes the failures older than ``before``; how many."""
    result = session.connection().execute(
        delete(FailedVerification).where(col(FailedVerification.at) < before)
    )
    return int(result.rowcount)
