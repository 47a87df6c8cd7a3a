"""Request and response bodies of the JSON API."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class HolderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id_type: str = Field(
        pattern=r"^\d{3}$",
        description=(
            "111 居民身份证 / resident ID; 001 统一社会信用代码 / credit code; 414 护照 / passport; "
            "516 港澳居民来往内地通行证; 511 台湾居民来往大陆通行证; 560 港澳台居民居住证; "
            "553 外国人永久居留身份证 (docs/identity-documents.md)"
        ),
    )
    id: str = Field(
        min_length=1,
        max_length=32,
        description="证件号码；外国护照写作 国家代码:号码 / ID number; another country's passport "
        "is written ISO-3166-alpha-3:number, e.g. USA:X12345678",
    )
    name: str = Field(min_length=1, max_length=128)


class IssueBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    licence_type: str = Field(min_length=21, max_length=21, description="证照类型代码")
    holder: HolderIn
    fields: dict[str, Any]
    valid_from: date | None = None
    valid_until: date | None = None
    photo: str | None = Field(
        default=None,
        max_length=700_000,
        description="持证人照片，base64 JPEG/PNG，至多 512 KiB、2000×2000 像素，至少 200×250；"
        "仅用于版式有照片位置的类型 / the holder's photo, base64 JPEG or PNG, at most 512 KiB "
        "and 2000×2000 px, at least 200×250; only for a type whose layout has a photo slot",
    )


class Links(BaseModel):
    pdf: str
    verify: str
    ofd: str | None = None  # the sealed OFD, when the licence's type issues one


class IssuedOut(BaseModel):
    identifier: str
    version: int
    status: str
    sha256: str
    links: Links
    previous: str | None = None  # a new version (amend, renew, reissue): the one it replaces
    # The sealed documents stored for it, by format ("pdf", "ofd"): its type's document_formats.
    documents: dict[str, str] = {}


class LicenceOut(BaseModel):
    identifier: str
    version: int
    licence_type: str
    issuer: str
    holder: dict[str, str]
    fields: dict[str, Any]
    valid_from: date
    valid_until: date | None
    status: str
    status_label: str = ""
    status_reason: str | None
    status_changed_at: str | None = None
    issued_at: str
    sha256: str
    seal: str
    links: Links
    type_version: int = 1
    previous: str | None = None
    superseded_by: str | None = None
