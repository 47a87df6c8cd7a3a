"""Request and response bodies of the catalogue (GB/T 36902 fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

LEVEL = "national | provincial | municipal | county (国家级、省级、市级、县级)"
ServiceItem = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z-]{1,64}$")]
FieldName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class LicenceTypeUpdate(BaseModel):
    """A whole definition (PUT replaces it; a change is a new version)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="证照类型名称")
    name_en: str | None = Field(default=None, max_length=128)
    authority_name: str | None = Field(
        default=None, max_length=128, description="定义机构名称；缺省为本部门登记名称"
    )
    authority_level: str = Field(description=f"定义机构层级 / {LEVEL}")
    holder_category: str = Field(
        description="持证主体类别 natural_person 自然人 | legal_person 法人 | other_organisation 其他组织"
    )
    validity_rule: str | None = Field(
        default=None, description="fixed 固定期限 | indefinite 长期；缺省按 validity_years 判断"
    )
    validity_years: int | None = Field(default=None, ge=1, le=100, description="有效年限")
    issuing_level: str | None = Field(
        default=None, description=f"发证层级，缺省同定义机构 / {LEVEL}"
    )
    service_items: list[str] = Field(
        default_factory=list, max_length=100, description="关联的政务服务事项编码"
    )
    service_item_fields: dict[
        ServiceItem, Annotated[list[FieldName], Field(min_length=1, max_length=40)]
    ] = Field(
        default_factory=dict,
        max_length=100,
        description="各事项所需的照面字段（事项须在 service_items 中）；获授权部门调取时只得到这些字段 / "
        "the fields each service item needs; a granted pull returns only these",
    )
    field_schema: dict[str, Any] = Field(description="照面字段的 JSON Schema")
    issuer_codes: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="可签发部门；空表示仅定义机构 / the departments that may issue it; empty: "
        "the defining authority alone",
    )
    layout: dict[str, Any] | None = Field(
        default=None,
        description="照面版式（毫米，见 docs/layouts.md）；缺省为标准版式 / the page template in "
        "mm (docs/layouts.md); none: the default page",
    )
    document_formats: str | None = Field(
        default=None,
        max_length=8,
        description="签发的文件格式：pdf（缺省）| ofd（国家标准版式文件，GB/T 38540 国密签章）| both "
        "/ the sealed documents issued: pdf (default), ofd (GB/T 33190 with a GB/T 38540 SM2 "
        "seal) or both",
    )


class LicenceTypeIn(LicenceTypeUpdate):
    code: str = Field(
        min_length=21,
        max_length=21,
        description="证照类型代码：定义机构统一社会信用代码 + 3 位顺序码",
    )


class LicenceTypeOut(BaseModel):
    code: str
    name: str
    name_en: str | None
    authority_code: str
    authority_name: str
    authority_level: str
    holder_category: str
    holder_id_type: str
    validity_rule: str
    validity_years: int | None
    issuing_level: str
    service_items: list[str]
    service_item_fields: dict[str, list[str]] = {}
    issuer_codes: list[str]
    field_schema: dict[str, Any]
    layout: dict[str, Any] | None = None
    document_formats: str = "pdf"
    version: int
    status: str
    updated_at: datetime | None = None
    withdrawn_at: datetime | None = None


class TypeVersionOut(BaseModel):
    version: int
    created_at: datetime
    actor: str
    definition: dict[str, Any]


class WithdrawBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=256)
