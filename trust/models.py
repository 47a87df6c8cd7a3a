"""Certificate rows: the public certificate and a *reference* to its key, never key material."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel


class CertificateRecord(SQLModel, table=True):
    __tablename__ = "certificate"

    serial: str = Field(primary_key=True, max_length=40)  # lower-case hex
    role: str = Field(max_length=32, index=True)  # see trust.profiles.Role
    name: str = Field(max_length=128, index=True)
    issuer_serial: str | None = Field(default=None, max_length=40, index=True)
    subject: str = Field(max_length=512)
    not_before: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    not_after: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    pem: str = Field(sa_column=Column(Text, nullable=False))
    key_ref: str = Field(max_length=256)
    status: str = Field(default="good", max_length=16)  # good | revoked | hold
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    revocation_reason: str | None = Field(default=None, max_length=64)


class AuthorityRecord(SQLModel, table=True):
    """A CA of this domain, by short name (``root``, ``seal-ca``), with its CRL counter."""

    __tablename__ = "certificate_authority"

    name: str = Field(primary_key=True, max_length=32)
    certificate_serial: str = Field(max_length=40)
    crl_number: int = 0
