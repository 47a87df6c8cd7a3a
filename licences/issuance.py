"""Issuing a licence: validate, assign the identifier, render, seal, store — whole or not at all.

Rendering and sealing run outside the write transaction (they take milliseconds of CPU and must
not hold the database's write lock); the record, the sealed bytes, the idempotency entry and the
audit entries are then written in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import reading, transaction
from core.errors import Conflict, InvalidInput
from keys.audit import KeyUseRecorder
from licences.catalogue import Catalogue, field_layout, validate_fields
from licences.identifiers import LicenceIdentifier, random_serial, validate_holder_id
from licences.links import new_verify_code, verify_url
from licences.models import (
    Holder,
    HolderCategory,
    IdempotencyRecord,
    Licence,
    LicenceDocument,
    LicenceType,
)
from licences.render import LicenceView, render_licence
from seals.apply import SealRequest, apply_seal
from seals.registry import SealContext, SealRegistry

CHINA = ZoneInfo("Asia/Shanghai")
MAX_NAME = 128


@dataclass(frozen=True)
class IssueRequest:
    department_code: str
    licence_type: str
    holder_id_type: str
    holder_id: str
    holder_name: str
    fields: dict[str, Any]
    valid_from: date | None = None
    valid_until: date | None = None
    idempotency_key: str | None = None
    actor: str = "system"
    request_id: str | None = None

    def fingerprint(self) -> str:
        body = {
            "licence_type": self.licence_type,
            "holder": [self.holder_id_type, self.holder_id, self.holder_name],
            "fields": self.fields,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }
        return hashlib.sha256(
            json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()


@dataclass(frozen=True)
class Fonts:
    regular: Path
    bold: Path


@dataclass
class IssuedLicence:
    licence: Licence
    verify_url: str
    replayed: bool = False
    qr_version: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class IssuanceService:
    def __init__(
        self,
        *,
        engine: Engine,
        catalogue: Catalogue,
        seals: SealRegistry,
        audit: AuditLog,
        clock: Clock,
        fonts: Fonts,
        public_base_url: str,
    ) -> None:
        self._engine = engine
        self._catalogue = catalogue
        self._seals = seals
        self._audit = audit
        self._clock = clock
        self._fonts = fonts
        self._base_url = public_base_url

    def verify_url(self, code: str) -> str:
        return verify_url(self._base_url, code)

    def issue(self, request: IssueRequest) -> IssuedLicence:
        fingerprint = request.fingerprint()
        with reading(self._engine) as session:
            replay = self._replay(session, request, fingerprint)
            if replay is not None:
                return replay
            entry = self._catalogue.get(session, request.licence_type)
            self._catalogue.check_issuer(entry, request.department_code)
            fields = validate_fields(entry, request.fields)
            holder_id = self._check_holder(entry, request)
            valid_from, valid_until = self._validity(entry, request)
            context = self._seals.seal_for_issuance(session, request.department_code)
            known = session.exec(
                select(Holder).where(
                    Holder.id_type == request.holder_id_type, Holder.id_number == holder_id
                )
            ).first()
            if known is not None and known.name != request.holder_name:
                raise Conflict(
                    "持证主体名称与证照库记录不一致 / the holder's name differs from the repository's "
                    "record; update the holder first",
                    field="holder.name",
                )

        identifier = LicenceIdentifier(
            type_code=entry.code,
            issuer_code=request.department_code,
            serial=random_serial(),
            version="001",
        )
        code = new_verify_code()
        url = self.verify_url(code)
        issued_at = self._clock.now()
        is_person = entry.holder_category == HolderCategory.NATURAL_PERSON.value
        view = LicenceView(
            title=entry.name,
            title_en=entry.name_en,
            identifier=str(identifier),
            holder_label="持证人" if is_person else "持证主体",
            holder_name=request.holder_name,
            holder_id=holder_id,
            fields=field_layout(entry, fields),
            issuer_name=context.department.name,
            issue_date=_chinese_date(issued_at.astimezone(CHINA).date()),
            valid_from=_chinese_date(valid_from),
            valid_until=_chinese_date(valid_until) if valid_until else None,
            verify_url=url,
            version=identifier.version,
        )
        rendered = render_licence(
            view, regular_font=self._fonts.regular, bold_font=self._fonts.bold
        )
        recorder = KeyUseRecorder()
        sealed = self._seal(rendered.pdf, rendered.seal_box, context, recorder)
        digest = hashlib.sha256(sealed).hexdigest()
        licence = Licence(
            identifier=str(identifier),
            type_code=entry.code,
            issuer_code=request.department_code,
            serial=identifier.serial,
            version=1,
            holder_id=0,
            fields=fields,
            valid_from=valid_from,
            valid_until=valid_until,
            issued_at=issued_at,
            verify_code=code,
            sha256=digest,
            seal_code=context.seal.code,
        )
        try:
            with transaction(self._engine) as session:
                replay = self._replay(session, request, fingerprint)
                if replay is not None:
                    recorder.flush(self._audit, session, request.actor, request.request_id)
                    return replay
                licence.holder_id = self._holder(session, request, holder_id)
                session.add(licence)
                session.flush()
                session.add(LicenceDocument(identifier=licence.identifier, pdf=sealed))
                if request.idempotency_key:
                    session.add(
                        IdempotencyRecord(
                            department_code=request.department_code,
                            key=request.idempotency_key,
                            request_sha256=fingerprint,
                            identifier=licence.identifier,
                            created_at=issued_at,
                        )
                    )
                recorder.flush(self._audit, session, request.actor, request.request_id)
                self._audit.append(
                    session,
                    actor=request.actor,
                    action="licence.issue",
                    object_type="licence",
                    object_id=licence.identifier,
                    request_id=request.request_id,
                    detail={"type": entry.code, "seal": context.seal.code, "sha256": digest},
                )
        except IntegrityError:
            # A concurrent request with the same Idempotency-Key won the race.
            with reading(self._engine) as session:
                replay = self._replay(session, request, fingerprint)
            if replay is None:
                raise
            return replay
        return IssuedLicence(licence=licence, verify_url=url, qr_version=rendered.qr_version)

    def _seal(
        self,
        pdf: bytes,
        box: tuple[float, float, float, float],
        context: SealContext,
        recorder: KeyUseRecorder,
    ) -> bytes:
        signer = self._seals.signer(context, recorder)
        return apply_seal(
            SealRequest(
                pdf=pdf,
                box=box,
                image_png=context.seal.image_png,
                reason="电子证照签发 / licence issuance",
                location=context.department.name,
                name=context.seal.name,
            ),
            signer,
        )

    def _replay(
        self, session: Session, request: IssueRequest, fingerprint: str
    ) -> IssuedLicence | None:
        if not request.idempotency_key:
            return None
        record = session.get(IdempotencyRecord, (request.department_code, request.idempotency_key))
        if record is None:
            return None
        if record.request_sha256 != fingerprint:
            raise Conflict(
                "同一幂等键已用于不同的请求 / this Idempotency-Key was used with a different request",
                field="Idempotency-Key",
            )
        licence = session.get(Licence, record.identifier)
        assert licence is not None
        return IssuedLicence(
            licence=licence, verify_url=self.verify_url(licence.verify_code), replayed=True
        )

    @staticmethod
    def _check_holder(entry: LicenceType, request: IssueRequest) -> str:
        if request.holder_id_type != entry.holder_id_type:
            raise InvalidInput(
                f"此类证照的持证主体证件类型应为 {entry.holder_id_type} / holder id_type must be "
                f"{entry.holder_id_type} for this licence type",
                field="holder.id_type",
            )
        name = request.holder_name.strip()
        if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
            raise InvalidInput("持证主体名称无效 / invalid holder name", field="holder.name")
        return validate_holder_id(request.holder_id_type, request.holder_id)

    def _validity(self, entry: LicenceType, request: IssueRequest) -> tuple[date, date | None]:
        today = self._clock.now().astimezone(CHINA).date()
        valid_from = request.valid_from or today
        valid_until = request.valid_until
        if valid_until is None and entry.validity_years:
            valid_until = _add_years(valid_from, entry.validity_years) - timedelta(days=1)
        if valid_until is not None and valid_until < valid_from:
            raise InvalidInput(
                "有效期截止早于起始 / valid_until is before valid_from", field="valid_until"
            )
        if valid_until is not None and valid_until < today:
            raise InvalidInput("有效期已过 / valid_until is in the past", field="valid_until")
        return valid_from, valid_until

    @staticmethod
    def _holder(session: Session, request: IssueRequest, holder_id: str) -> int:
        holder = session.exec(
            select(Holder).where(
                Holder.id_type == request.holder_id_type, Holder.id_number == holder_id
            )
        ).first()
        if holder is None:
            holder = Holder(
                id_type=request.holder_id_type, id_number=holder_id, name=request.holder_name
            )
            session.add(holder)
            session.flush()
        assert holder.id is not None
        return holder.id


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"
