"""Digests a licence's stored PDF had before it was re-timestamped.

``elicence archive refresh`` appends a document timestamp to a sealed licence, which changes
its bytes and SHA-256. A copy downloaded earlier is still that licence, so its digest is kept
here and the repository still recognises it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


class SupersededDigest(SQLModel, table=True):
    __tablename__ = "licence_superseded_digest"

    sha256: str = Field(primary_key=True, max_length=64)
    identifier: str = Field(foreign_key="licence.identifier", index=True, max_length=96)
    superseded_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    reason: str = Field(default="archive-timestamp", max_length=32)
