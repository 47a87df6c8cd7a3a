"""Repository tables: licence types, holders captured once, licences and their sealed bytes."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel


class HolderCategory(str, Enum):
    NATURAL_PERSON = "natural_person"  # 自然人
    LEGAL_PERSON = "legal_person"  # 法人
    OTHER_ORGANISATION = "other_organisation"  # 其他组织


class LicenceStatus(str, Enum):
    """Licence status codes (证照状态). English values are stored and exchanged; the Chinese
    names are those of the national licence standards. ``expired`` is never stored: it is computed
    from the validity dates, so no scheduled job has to run for a licence to expire."""

    VALID = "valid"  # 有效
    SUSPENDED = "suspended"  # 暂停 (中止)
    CANCELLED = "cancelled"  # 注销: ended at the holder's request or because it is no longer needed
    REVOKED = "revoked"  # 吊销: withdrawn as an administrative penalty
    SUPERSEDED = "superseded"  # 已变更: amended or renewed, a newer version replaces it
    VOID = "void"  # 作废: reported lost or damaged and reissued as a new version
    EXPIRED = "expired"  # 过期 (computed)

    @property
    def zh(self) -> str:
        return _STATUS_ZH[self.value]

    @property
    def label(self) -> str:
        return f"{self.zh} / {_STATUS_EN[self.value]}"

    @classmethod
    def parse(cls, text: str) -> LicenceStatus:
        """A status by its English value or its Chinese name (both appear in exchange files)."""
        for status in cls:
            if text in (status.value, status.zh, _STATUS_ZH_SHORT[status.value]):
                return status
        raise ValueError(text)


_STATUS_ZH = {
    "valid": "有效",
    "suspended": "暂停",
    "cancelled": "已注销",
    "revoked": "已吊销",
    "superseded": "已变更",
    "void": "已作废",
    "expired": "已过期",
}
_STATUS_ZH_SHORT = {k: v.removeprefix("已") for k, v in _STATUS_ZH.items()}
_STATUS_EN = {
    "valid": "valid",
    "suspended": "suspended",
    "cancelled": "cancelled",
    "revoked": "revoked",
    "superseded": "superseded by a newer version",
    "void": "void (reported lost, reissued)",
    "expired": "expired",
}


class ValidityRule(str, Enum):
    FIXED = "fixed"  # 固定期限: a term, from the type's validity_years or given at issuance
    INDEFINITE = "indefinite"  # 长期有效


class DocumentFormats(str, Enum):
    """Which sealed documents a type's licences come as (revision 0027): the PAdES PDF, the OFD
    with its GB/T 38540 seal (the national form), or both from one issuance."""

    PDF = "pdf"
    OFD = "ofd"
    BOTH = "both"

    @property
    def pdf(self) -> bool:
        return self is not DocumentFormats.OFD

    @property
    def ofd(self) -> bool:
        return self is not DocumentFormats.PDF


class TypeStatus(str, Enum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"  # 停用: issues nothing new; its licences stay as they are


class LicenceType(SQLModel, table=True):
    """A catalogue entry (GB/T 36902). ``version`` moves on every change of the definition and
    each version is kept in ``licence_type_version``, so a licence can say which rules it was
    issued under."""

    __tablename__ = "licence_type"

    code: str = Field(primary_key=True, max_length=21)
    name: str = Field(max_length=64)
    name_en: str | None = Field(default=None, max_length=128)
    authority_code: str = Field(max_length=18)
    authority_name: str = Field(max_length=128)
    authority_level: str = Field(max_length=16)
    holder_category: str = Field(max_length=24)
    holder_id_type: str = Field(max_length=3)
    validity_years: int | None = None  # default term of a fixed-term type
    field_schema: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    issuer_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    version: int = 1
    status: str = Field(default=TypeStatus.ACTIVE.value, max_length=16)
    service_items: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )  # 事项编码 of the government services this licence serves
    # For each service item (事项编码), the fields of this type it needs: a department pulling a
    # licence the holder granted for that item receives these fields and no others.
    service_item_fields: dict[str, list[str]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    issuing_level: str = Field(default="", max_length=16)  # "" until normalised: the authority's
    validity_rule: str = Field(default="", max_length=16)  # "" until normalised from the years
    updated_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    withdrawn_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    # The page template (照面版式, ``licences.layout``); None prints today's default page.
    layout: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # pdf | ofd | both (``DocumentFormats``); every type before revision 0027 is "pdf".
    document_formats: str = Field(
        default=DocumentFormats.PDF.value,
        sa_column=Column(String(8), nullable=False, server_default=DocumentFormats.PDF.value),
    )


class LicenceTypeVersion(SQLModel, table=True):
    """Every version of a catalogue entry, as it stood: the history a licence's
    ``type_version`` points into."""

    __tablename__ = "licence_type_version"

    code: str = Field(primary_key=True, foreign_key="licence_type.code", max_length=21)
    version: int = Field(primary_key=True)
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    actor: str = Field(max_length=128)


class Holder(SQLModel, table=True):
    __tablename__ = "holder"
    __table_args__ = (UniqueConstraint("id_type", "id_number"),)

    id: int | None = Field(default=None, primary_key=True)
    id_type: str = Field(max_length=3)
    id_number: str = Field(max_length=32)
    name: str = Field(max_length=128)


NOT_VALID = "status != 'valid'"


class Licence(SQLModel, table=True):
    __tablename__ = "licence"
    # Keyset pagination of a department's licences, newest first.
    __table_args__ = (
        Index("ix_licence_issuer_issued", "issuer_code", "issued_at", "identifier"),
        Index("ux_licence_status_index", "status_index", unique=True),
        # The licences a status list names: a partial index, so its size follows the revoked,
        # suspended and superseded licences, not the table (revision 0017). Queries must say
        # ``status != 'valid'`` with the literal for the planners (SQLite's above all) to use it.
        Index(
            "ix_licence_status_listed",
            "status_index",
            "status",
            sqlite_where=text(NOT_VALID),
            postgresql_where=text(NOT_VALID),
        ),
        # The expiry scan's windows of days (supervision.expiry, revision 0022).
        Index("ix_licence_valid_until", "valid_until"),
    )

    identifier: str = Field(primary_key=True, max_length=96)
    type_code: str = Field(foreign_key="licence_type.code", index=True, max_length=21)
    issuer_code: str = Field(foreign_key="department.code", index=True, max_length=18)
    serial: str = Field(index=True, max_length=32)  # shared by every version of one licence
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
    verify_code: str = Field(unique=True, max_length=512)  # signed QR payload (base32)
    sha256: str = Field(index=True, max_length=64)
    seal_code: str = Field(foreign_key="seal.code", max_length=32)
    type_version: int = 1  # the catalogue version it was issued under
    previous: str | None = Field(default=None, foreign_key="licence.identifier", max_length=96)
    superseded_by: str | None = Field(default=None, foreign_key="licence.identifier", max_length=96)
    # The certificate that sealed this licence: a seal's key (and so its certificate) rotates,
    # and a licence must still be matched against the one it was sealed with.
    seal_certificate_serial: str | None = Field(default=None, max_length=40)
    # The holder's name as this licence was issued under it, and as its PDF prints it. Every
    # reader shows this, never the holder row's current registered name, so no later correction
    # (licences.holders) changes what a sealed licence shows. Written by every issuance; NULL
    # only for a row the upgrade to revision 0012 could not fill (read as the registered name).
    holder_name: str | None = Field(default=None, max_length=128)
    # The licence's entry in the domain's status list (licences.status_index), carried by its
    # signed QR payload. NULL for licences issued before status lists (revision 0014).
    status_index: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))


class LicenceDocument(SQLModel, table=True):
    """The sealed PDF, in the same transaction as its record: never one without the other."""

    __tablename__ = "licence_document"

    identifier: str = Field(primary_key=True, foreign_key="licence.identifier", max_length=96)
    pdf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LicenceOfd(SQLModel, table=True):
    """The sealed OFD of a licence whose type issues one (revision 0027), written in the same
    transaction as its record. ``sha256`` finds the licence an uploaded OFD claims to be;
    ``sm2_certificate_serial`` names the SM2 seal certificate that sealed it (the seal's key
    rotates; a licence is matched against the certificate it was sealed with)."""

    __tablename__ = "licence_ofd"

    identifier: str = Field(primary_key=True, foreign_key="licence.identifier", max_length=96)
    ofd: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str = Field(index=True, max_length=64)
    sm2_certificate_serial: str = Field(max_length=40)


class IdempotencyRecord(SQLModel, table=True):
    """The first result of a write made with an Idempotency-Key, per department, route (scope)
    and key; ``identifier`` names what the write produced (a licence, a type, a holder)."""

    __tablename__ = "idempotency_record"

    department_code: str = Field(primary_key=True, max_length=18)
    scope: str = Field(primary_key=True, max_length=32)
    key: str = Field(primary_key=True, max_length=128)
    request_sha256: str = Field(max_length=64)
    identifier: str = Field(max_length=96)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class LicencePhoto(SQLModel, table=True):
    """The holder's photo printed on a licence, once per licence and apart from its row: the
    re-encoded image (no metadata), whose SHA-256 joins the licence's record digest
    (``licences.payload.record_digest``), so a photo swapped here fails verification."""

    __tablename__ = "licence_photo"

    identifier: str = Field(primary_key=True, foreign_key="licence.identifier", max_length=96)
    media_type: str = Field(max_length=16)
    width: int
    height: int
    image: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
