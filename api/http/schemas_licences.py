"""Bodies of the lifecycle, batch, search and holder routes."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.http.schemas import LicenceOut, Links


class ReasonBody(BaseModel):
    """suspend, resume, cancel (注销), revoke (吊销), reissue (补发)."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(
        default=None, max_length=256, description="原因；暂停、注销、吊销、补发必填"
    )


class AmendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fields: dict[str, Any] = Field(
        default_factory=dict, description="要变更的照面字段（合并；null 表示删除）/ a merge patch"
    )
    reason: str | None = Field(default=None, max_length=256)


class RenewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    valid_from: date | None = Field(default=None, description="缺省为今天")
    valid_until: date | None = Field(
        default=None, description="缺省为原截止日（或今天）起再延一个有效年限"
    )
    reason: str | None = Field(default=None, max_length=256)


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[dict[str, Any]] = Field(
        min_length=1, max_length=1000, description="每项同 POST /api/v1/licences 的请求体"
    )


class ItemError(BaseModel):
    status: int
    title: str
    detail: str
    field: str | None = None


class ItemOut(BaseModel):
    index: int
    status: int
    identifier: str | None = None
    version: int | None = None
    sha256: str | None = None
    links: Links | None = None
    replayed: bool = False
    error: ItemError | None = None


class BatchOut(BaseModel):
    results: list[ItemOut]
    summary: dict[str, Any]


class SearchOut(BaseModel):
    items: list[LicenceOut]
    next_cursor: str | None = Field(description="下一页游标；null 表示没有更多")


class HolderOut(BaseModel):
    id_type: str
    id: str
    name: str


class HolderPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, description="登记名称 / registered name")
