"""The last CRL each CA published, kept so a request does not cost a signature."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, LargeBinary
from sqlmodel import Field, SQLModel


class CrlRecord(SQLModel, table=True):
    __tablename__ = "crl"

    ca_name: str = Field(primary_key=True, max_length=32)
    crl_number: int = 0
    der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    next_update: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
