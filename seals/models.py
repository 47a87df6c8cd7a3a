"""Departments and their seals, with the metadata of GB/T 38540."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import Column, DateTime, LargeBinary
from sqlmodel import Field, SQLModel


class SealType(str, Enum):
    OFFICIAL = "01"  # 公章
    LICENCE = "02"  # 电子证照专用章
    BUSINESS = "03"  # 业务专用章

    @property
    def label(self) -> str:
        return {"01": "公章", "02": "电子证照专用章", "03": "业务专用章"}[self.value]


class SealStatus(str, Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"

    @property
    def label(self) -> str:
        return {"active": "有效", "suspended": "已暂停", "revoked": "已吊销"}[self.value]


class Department(SQLModel, table=True):
    __tablename__ = "department"

    code: str = Field(primary_key=True, max_length=18)  # unified social credit code
    name: str = Field(max_length=128)
    division_code: str = Field(max_length=6)  # GB/T 2260 administrative division
    level: str = Field(max_length=16)  # national | provincial | municipal | county
    # The department above this one (a county bureau under a municipal one); migration 0007.
    parent_code: str | None = Field(
        default=None, foreign_key="department.code", nullable=True, max_length=18
    )


class Seal(SQLModel, table=True):
    __tablename__ = "seal"

    code: str = Field(primary_key=True, max_length=32)  # seal identifier
    department_code: str = Field(foreign_key="department.code", index=True, max_length=18)
    seal_type: str = Field(max_length=2)
    name: str = Field(max_length=64)
    certificate_serial: str = Field(max_length=40)
    key_ref: str = Field(max_length=256)
    status: str = Field(default=SealStatus.ACTIVE.value, max_length=16)
    valid_from: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    valid_until: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    width_mm: float = 42.0
    image_png: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SealAuthorisation(SQLModel, table=True):
    """Which licence types a seal may seal (migration 0007).

    A department may hold several seals; issuance picks an active seal authorised for the
    licence type, so a seal reserved for one business line never appears on another's licences.
    """

    __tablename__ = "seal_authorisation"

    seal_code: str = Field(foreign_key="seal.code", primary_key=True, max_length=32)
    licence_type_code: str = Field(primary_key=True, max_length=21)
