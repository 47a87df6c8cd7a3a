"""The record of a converted licence (存量证照转换): which licence of this domain a department's
earlier system's licence became.

One row per (department, licence type, original number): the key that makes a conversion
idempotent, so running the same file again finds the row and changes nothing. ``content_sha256``
is the digest of the record as the department sent it (``licences.legacy.LegacyRecord.digest``):
a row sent again with other content is a *conflict*, never a silent overwrite.
``original_number`` is indexed on its own, so a department's search by the number its staff and
holders still quote is one index read.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, DateTime, Index
from sqlmodel import Field, SQLModel


class LegacyLicence(SQLModel, table=True):
    __tablename__ = "legacy_licence"
    __table_args__ = (Index("ix_legacy_licence_original_number", "original_number"),)

    department_code: str = Field(primary_key=True, max_length=18)
    type_code: str = Field(primary_key=True, max_length=21)
    original_number: str = Field(primary_key=True, max_length=64)
    identifier: str = Field(foreign_key="licence.identifier", unique=True, max_length=96)
    original_issue_date: date = Field(sa_column=Column(Date, nullable=False))
    original_status: str = Field(max_length=16)
    content_sha256: str = Field(max_length=64)
    converted_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
