"""The verification log: when, through which channel and with what result a licence was verified.

The audit chain already records every verification, but it is an append-only integrity record
for operators, not something to query per licence. This table answers the holder's question
"who checked my licence, and when?" cheaply, by identifier, and keeps no personal data of the
verifier (the public verification routes are anonymous).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, Session, SQLModel, col, select

from core.db import as_utc

MAX_HISTORY = 500

CHANNELS: dict[str, str] = {
    "qr-page": "手机扫码打开核验页 / phone scan of the QR code",
    "page-scan": "柜台扫码枪 / counter QR scanner",
    "page-upload": "核验页上传文件 / file upload on the verification page",
    "api-qr": "核验接口（二维码） / verification API, QR text",
    "api-upload": "核验接口（文件） / verification API, file",
    "cli": "命令行 / command line",
}
METHODS: dict[str, str] = {
    "pdf": "PDF文件 / PDF file",
    "qr-code": "证照二维码（旧版） / licence QR (earlier form)",
    "qr-payload": "证照二维码 / licence QR",
    "presentation": "出示码 / presentation QR",
}


class VerificationLog(SQLModel, table=True):
    __tablename__ = "verification_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    identifier: str | None = Field(default=None, index=True, max_length=96)
    channel: str = Field(max_length=32)
    method: str = Field(max_length=16)
    indication: str = Field(max_length=16)
    sub_indication: str | None = Field(default=None, max_length=40)


def record(
    session: Session,
    *,
    at: datetime,
    identifier: str | None,
    channel: str,
    method: str,
    indication: str,
    sub_indication: str | None,
) -> None:
    session.add(
        VerificationLog(
            at=at,
            identifier=identifier[:96] if identifier else None,
            channel=channel[:32],
            method=method[:16],
            indication=indication,
            sub_indication=sub_indication,
        )
    )


def history(session: Session, identifier: str, limit: int = 100) -> list[VerificationLog]:
    """The newest verifications of one licence first."""
    rows = session.exec(
        select(VerificationLog)
        .where(VerificationLog.identifier == identifier)
        .order_by(col(VerificationLog.id).desc())
        .limit(max(1, min(limit, MAX_HISTORY)))
    ).all()
    for row in rows:
        row.at = as_utc(row.at)
    return list(rows)
