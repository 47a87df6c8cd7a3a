"""The table of purpose-stamped copies (加注件), apart from the service that makes them
(``licences.stamped``) so that the repository reads (``licences.repository``) can find a copy by
its SHA-256 or its verification code without importing the service."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, LargeBinary
from sqlmodel import Field, SQLModel


class StampedCopy(SQLModel, table=True):
    """One copy of one licence version, rendered by the service with the stamp text on the page
    and sealed by the issuing department's licence seal. The licence's status decides the
    copy's: nothing here changes after it is written."""

    __tablename__ = "stamped_copy"

    id: str = Field(primary_key=True, max_length=16)
    identifier: str = Field(foreign_key="licence.identifier", index=True, max_length=96)
    licence_version: int
    purpose: str | None = Field(default=None, max_length=64)  # 事项名称, as the holder wrote it
    service_item: str | None = Field(default=None, max_length=64)  # 事项编码 from the catalogue
    stamp_text: str = Field(max_length=200)  # the sentence printed, e.g. 仅供办理……使用，他用无效
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    sha256: str = Field(unique=True, max_length=64)
    # The copy's QR code: a signed copy payload (licences.payload), or random for copies made
    # before revision 0016 or by a domain that signs no QR payloads.
    verify_code: str = Field(unique=True, max_length=512)
    seal_code: str = Field(foreign_key="seal.code", max_length=32)
    seal_certificate_serial: str = Field(max_length=40)
    requested_by: str = Field(max_length=128)  # the holder's actor: holder:<subject>
    pdf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
