"""Repository tables: licence types, holders captured once, licences and their sealed bytes."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Column, Date, DateTime, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


class HolderCategory(str, Enum):
    NATURAL_PERSON = "natural_person"  # 自然人
    LEGAL_PERSON = "legal_person"  # 法人
    OTHER_ORGANISATION = "other_organisation"  # 其他组织


class LicenceStatus(str, Enum):
    """Status codes; ``expired`` is never stored, it is computed from the validity dates."""

    VALID = "valid"  # 有效
    SUSPENDED = "suspended"  # 暂停
    REVOKED = "revoked"  # 吊销/注销
    SUPERSEDED = "superseded"  # 已变更 (a newer version exists)
    EXPIRED = "expired"  # 过期

    @property
    def label(self) -> str:
        return {
            "valid": "有效 / valid",
            "suspended": "暂停 / suspended",
            "revoked": "已吊销 / revoked",
            "superseded": "已变更 / superseded",
            "expired": "已过期 / expired",
        }[self.value]


class LicenceType(SQLModel, table=True):
    """A catalogue entry (GB/T 36902)."""

    __tablename__ = "licence_type"

    code: str = Field(primary_key=True, max_length=21)
    name: str = Field(max_length=64)
    name_en: str | None = Field(default=None, max_length=128)
    authority_code: str = Field(max_length=18)
    authority_name: str = Field(max_length=128)
    authority_level: str = Field(max_length=16)
    holder_category: str = Field(max_length=24)
    holder_id_type: str = Field(max_length=3)
    validity_years: int | None = None  # None: indefinite (长期)
    field_schema: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    issuer_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: int = 1
    status: str = Field(default="active", max_length=16)


class Holder(SQLModel, table=True):
    __tablename__ = "holder"
    __table_args__ = (UniqueConstraint("id_type", "id_number"),)

    id: int | None = Field(default=None, primary_key=True)
    id_type: str = Field(max_length=3)
    id_number: str = Field(max_length=32)
    name: str = Field(max_length=128)


class Licence(SQLModel, table=True):
    __tablename__ = "licence"

    identifier: str = Field(primary_key=True, max_length=96)
    type_code: str = Field(foreign_key="licence_type.code", index=True, max_length=21)
    issuer_code: str = Field(foreign_key="department.code", index=True, max_length=18)
    serial: str = Field(max_length=32)
    version: int = 1
    holder_id: int = Field(foreign_key="holder.id", index=True)
    fields: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    valid_from: date = Field(sa_column=Column(Date, nullable=False))
    valid_until: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    status: str = Field(default=LicenceStatus.VALID.value, max_length=16)
    status_reason: str | None = Field(default=None, max_length=256)
    status_changed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    issued_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    verify_code: str = Field(unique=True, max_length=32)
    sha256: str = Field(index=True, max_length=64)
    seal_code: str = Field(foreign_key="seal.code", max_length=32)


class LicenceDocument(SQLModel, table=True):
    """The sealed PDF, in the same transaction as its record: never one without the other."""

    __tablename__ = "licence_document"

    identifier: str = Field(primary_key=True, foreign_key="licence.identifier", max_length=96)
    pdf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"

    department_code: str = Field(primary_key=True, max_length=18)
    key: str = Field(primary_key=True, max_length=128)
    request_sha256: str = Field(max_length=64)
    identifier: str = Field(max_length=96)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
