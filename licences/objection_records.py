"""The stored objection (错录申诉): a holder says one field of their licence is wrong.

One row per objection (revision 0026). ``open_key`` is ``<serial>:<field>`` while the objection
is open and NULL once it is answered: a unique column that allows any number of NULLs is how
"at most one open objection per licence and field" holds on SQLite and PostgreSQL alike,
without a partial index either would spell differently. ``issuer_code`` is copied from the
licence so the department's queue and the supervision figures read one index, not a join per
row; a licence's issuer never changes.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import Column, DateTime, Index
from sqlmodel import Field, SQLModel

MAX_TEXT = 500  # a comment, a proposed value, a reason to reject
MAX_FIELD = 64


class ObjectionState(str, Enum):
    OPEN = "open"
    AMENDED = "amended"  # answered with a new, sealed version of the licence
    REJECTED = "rejected"  # answered with a reason


STATE_LABELS = {
    ObjectionState.OPEN.value: "待处理 / open",
    ObjectionState.AMENDED.value: "已更正 / amended",
    ObjectionState.REJECTED.value: "未予更正 / rejected",
}


class LicenceObjection(SQLModel, table=True):
    __tablename__ = "licence_objection"
    __table_args__ = (
        Index("ix_licence_objection_issuer_state", "issuer_code", "state", "raised_at"),
        Index("ix_licence_objection_holder", "holder_id", "raised_at"),
    )

    id: str = Field(primary_key=True, max_length=20)  # obj_ + 16 hex
    identifier: str = Field(foreign_key="licence.identifier", index=True, max_length=96)
    issuer_code: str = Field(max_length=18)
    holder_id: int = Field(foreign_key="holder.id")
    field: str = Field(max_length=MAX_FIELD)
    comment: str = Field(max_length=MAX_TEXT)
    proposed: str | None = Field(default=None, max_length=MAX_TEXT)
    state: str = Field(default=ObjectionState.OPEN.value, max_length=16)
    open_key: str | None = Field(default=None, unique=True, max_length=100)
    raised_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    raised_by: str = Field(max_length=128)
    answered_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    answered_by: str | None = Field(default=None, max_length=128)
    reject_reason: str | None = Field(default=None, max_length=MAX_TEXT)
    amended_identifier: str | None = Field(
        default=None, foreign_key="licence.identifier", max_length=96
    )
