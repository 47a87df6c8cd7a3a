"""Rows of the SM2 PKI (revision 0028): its certificates and its CAs, beside the ECDSA ones.

They are tables of their own, not rows of ``certificate`` and ``certificate_authority``: every
reader of those tables parses and signs with ``cryptography``, which has no SM2. What the two
forms share is revocation: an SM2 seal certificate *follows* the ECDSA seal certificate it was
issued beside (``follows_serial``), and its status is that row's status, so a seal revoked,
suspended or resumed is so in both forms at the same instant, with no second write to forget.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, LargeBinary
from sqlmodel import Field, SQLModel


class Sm2CertificateRecord(SQLModel, table=True):
    __tablename__ = "sm2_certificate"

    serial: str = Field(primary_key=True, max_length=40)  # lower-case hex
    role: str = Field(max_length=32, index=True)  # trust.profiles.Role values
    name: str = Field(max_length=128, index=True)  # CA name, seal code, or OCSP's CA
    issuer_serial: str | None = Field(default=None, max_length=40, index=True)
    subject: str = Field(max_length=512)
    not_before: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    not_after: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_ref: str = Field(max_length=256)
    # A seal's SM2 certificate: the ECDSA seal certificate (``certificate.serial``) whose
    # revocation row it shares. None for CAs and OCSP responders.
    follows_serial: str | None = Field(
        default=None, foreign_key="certificate.serial", max_length=40, index=True
    )


class Sm2AuthorityRecord(SQLModel, table=True):
    """An SM2 CA (``sm2-root``, ``sm2-seal-ca``) and its current CRL."""

    __tablename__ = "sm2_authority"

    name: str = Field(primary_key=True, max_length=32)
    certificate_serial: str = Field(max_length=40)
    crl_number: int = 0
    crl_der: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    crl_next_update: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    # SHA-256 of the entries the current CRL lists: a revocation changes it, and the next
    # request for the CRL publishes a new one at once.
    crl_entries_sha256: str | None = Field(default=None, max_length=64)
