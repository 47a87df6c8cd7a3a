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


class Department(SQLModel, table=True):
    __tablename__ = "department"

    code: str = Field(primary_key=True, max_length=18)  # unified social credit code
    name: str = Field(max_length=128)
    division_code: str = Field(max_length=6)  # GB/T 2260 administrative division
    level: str = Field(max_length=16)  # national | provincial | municipal | county


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
