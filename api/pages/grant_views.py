"""The shapes of the holder's grants and usage log in the holder API (``/api/v1/holder/grants``,
``/api/v1/holder/usage``) and the ``/me/grants`` and ``/me/usage`` pages.

The reads and writes are the domain's: ``licences.grant_desk`` (grants, the grant form's
choices) and ``verify.holder_usage`` (department pulls and verifications of the holder's
licences, merged newest first under a keyset cursor). This module only turns their frozen views
into the API's models, so the OpenAPI schema and the JSON stay as they are.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from licences.grant_desk import GrantView
from verify.holder_usage import UsagePage


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identifier: str = Field(min_length=1, max_length=96, description="证照标识 / licence")
    department: str = Field(
        min_length=1, max_length=32, description="获授权部门的统一社会信用代码 / department"
    )
    service_item: str = Field(min_length=1, max_length=64, description="事项编码 / service item")
    business_number: str = Field(
        min_length=1, max_length=64, description="办件编号（字母、数字、-）/ business number"
    )
    valid_until: date = Field(description="授权最后一天（北京时间），最长一年 / last day, ≤ 1 year")


class SharedField(BaseModel):
    name: str
    title: str


class GrantOut(BaseModel):
    id: str
    identifier: str
    licence_type: str
    licence_type_name: str
    department: str
    department_name: str
    service_item: str
    business_number: str
    fields: list[SharedField] = Field(description="该事项可得的字段 / the fields it shares")
    valid_until: date
    created_at: datetime
    withdrawn_at: datetime | None = None
    status: Literal["active", "withdrawn", "expired"]
    status_label: str


class GrantsOut(BaseModel):
    items: list[GrantOut]


class UsageEntry(BaseModel):
    kind: Literal["pull", "verification"]
    at: datetime
    identifier: str
    licence_type_name: str | None = None
    who: str = Field(description="使用者 / who used the licence")
    department: str | None = None
    department_name: str | None = None
    client_id: str | None = None
    client_name: str | None = None
    service_item: str | None = None
    business_number: str | None = None
    what: str | None = None
    what_label: str | None = None
    channel: str | None = None
    channel_label: str | None = None
    method: str | None = None
    method_label: str | None = None
    indication: str | None = None
    sub_indication: str | None = None


class UsageOut(BaseModel):
    items: list[UsageEntry]
    next_cursor: str | None = None


def grant_out(grant: GrantView) -> GrantOut:
    return GrantOut.model_validate(grant, from_attributes=True)


def grant_outs(grants: list[GrantView]) -> list[GrantOut]:
    return [grant_out(g) for g in grants]


def usage_out(page: UsagePage) -> UsageOut:
    return UsageOut.model_validate(page, from_attributes=True)
