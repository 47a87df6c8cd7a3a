"""The table of published status lists, apart from the service that signs them
(``licences.status_list``) so that migrations and dumps see it without importing the service."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel


class StatusListRecord(SQLModel, table=True):
    """Every status list ever signed, by sequence: the newest is what ``/pki/status-list``
    serves. ``content_sha256`` is the SHA-256 of the raw list, so an unchanged list is not
    signed again before it is due."""

    __tablename__ = "status_list"

    sequence: int = Field(primary_key=True)
    issued_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    valid_until: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    entries: int  # the list's length in entries
    content_sha256: str = Field(max_length=64)
    document: str = Field(sa_column=Column(Text, nullable=False))  # the signed vc+jwt
