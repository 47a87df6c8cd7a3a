"""Purpose-stamped copies (加注件): a licence copy that says what it may be used for.

A holder who hands a licence to a department for one matter asks for a copy stamped
"仅供办理<事项>使用，他用无效" with the date, so the copy cannot be passed off for anything else.
The service makes it itself, from the repository: the licence's data is rendered again by
``licences.render`` with the stamp drawn on the page (a banner under the title, the sentence
large and pale across the table, and the copy's number at the foot), with a QR code of its own,
and the page is sealed through the same path issuance uses (``SealRegistry.signer``,
``LongTermSealing.evidence``, ``seals.apply.apply_seal``: PAdES certification, B-LTA) by the
issuing department's licence seal. No uploaded or previously sealed file is ever stamped.

**Decision: what the purpose is.** Either or both of
* ``service_item``, a 事项编码 that must be one of the licence type's ``service_items`` in the
  catalogue — the code the receiving department's system knows;
* ``purpose``, the matter's name (事项名称) as free text, for matters the catalogue does not
  list: 2-30 characters after NFC normalisation and whitespace folding, with no control,
  format, private-use or unassigned characters, and only characters the licence font can
  print (a stamp that shows empty boxes would say nothing).
Printed: "仅供办理<name>（事项编码 <code>）使用，他用无效", with only the part given.

Verifying a copy (its PDF or its QR code) finds it through ``licences.repository``, shows the
licence's repository data and the printed purpose, and follows the licence's status: a copy of a
revoked licence is REVOKED. Copies are made only of a valid licence, by its holder.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy.engine import Engine
from sqlalchemy.orm import defer
from sqlmodel import Session, col, func, select

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.db import reading, transaction
from core.errors import Conflict, InvalidInput, NotFound
from keys.audit import KeyUseRecorder
from licences.catalogue_rules import field_layout
from licences.issuance import Fonts
from licences.links import new_verify_code, verify_url
from licences.models import HolderCategory, LicenceStatus, LicenceType, LicenceTypeVersion
from licences.qrkeys import LicenceCodes
from licences.render import (
    GREY,
    LEFT,
    MM,
    PAGE_H,
    PAGE_W,
    RED,
    RIGHT,
    TABLE_FLOOR,
    TABLE_TOP,
    LicenceView,
    Overlay,
    RenderedLicence,
    font_name,
    render_licence,
    text_width,
)
from licences.repository import (
    LicenceRecord,
    effective_status,
    full_record,
    holder_licence,
)
from licences.stamped_records import StampedCopy
from licences.validity import chinese_date
from seals.issuing_seal import SealContext
from seals.ltv import LongTermSealing
from seals.registry import SealRegistry
from seals.sealing import seal_rendered

MIN_PURPOSE, MAX_PURPOSE = 2, 30
MAX_PER_DAY = 20  # copies of one licence in 24 hours: each costs a seal and a timestamp
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
REASON = "电子证照加注件 / purpose-stamped licence copy"


@dataclass(frozen=True)
class StampRequest:
    identifier: str
    id_type: str  # the signed-in holder: only their own licence can be copied
    id_number: str
    actor: str
    purpose: str | None = None
    service_item: str | None = None
    request_id: str | None = None


def check_purpose(text: str | None, font_path: object) -> str | None:
    """The matter's name as it will be printed, or None when not given."""
    if text is None:
        return None
    folded = re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()
    if not folded:
        return None
    if not MIN_PURPOSE <= len(folded) <= MAX_PURPOSE:
        raise InvalidInput(
            f"办理事项名称应为 {MIN_PURPOSE}-{MAX_PURPOSE} 个字符 / the purpose must be "
            f"{MIN_PURPOSE}-{MAX_PURPOSE} characters",
            field="purpose",
        )
    if any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in text):
        raise InvalidInput(
            "办理事项名称含控制字符或不可见字符 / the purpose contains control or invisible "
            "characters",
            field="purpose",
        )
    glyphs = pdfmetrics.getFont(font_name(font_path)).face.charToGlyph  # type: ignore[arg-type]
    missing = sorted({ch for ch in folded if ch != " " and ord(ch) not in glyphs})
    if missing:
        raise InvalidInput(
            f"以下字符无法打印：{''.join(missing)} / these characters cannot be printed: "
            f"{' '.join(f'U+{ord(ch):04X}' for ch in missing)}",
            field="purpose",
        )
    return folded


def stamp_text(purpose: str | None, service_item: str | None) -> str:
    """The sentence printed on the copy and shown by verification."""
    if purpose and service_item:
        what = f"{purpose}（事项编码 {service_item}）"
    elif purpose:
        what = purpose
    else:
        what = f"事项编码 {service_item}"
    return f"仅供办理{what}使用，他用无效"


def _stamp_overlay(sentence: str, day: str, copy_id: str) -> Overlay:
    """Draws the stamp over a finished page, clear of the QR code and of the seal."""

    def draw(c: Canvas, regular: str, bold: str) -> None:
        banner = f"加注件 · {sentence} · {day}"
        size = min(10.5, (RIGHT - LEFT) / text_width(banner, bold, 1))
        c.setFillColor(RED)
        c.setFont(bold, size)
        c.drawCentredString(PAGE_W / 2, PAGE_H - 57 * MM, banner)
        # Large and pale across the table, so no field can be cut out without the stamp.
        rise, run = TABLE_TOP - TABLE_FLOOR, RIGHT - LEFT
        line = f"{sentence}  {day}"
        size = min(30.0, 0.92 * math.hypot(rise, run) / text_width(line, bold, 1))
        c.saveState()
        c.setFillColor(RED)
        c.setFillAlpha(0.16)
        c.translate(PAGE_W / 2, (TABLE_TOP + TABLE_FLOOR) / 2)
        c.rotate(math.degrees(math.atan2(rise, run)))
        c.setFont(bold, size)
        c.drawCentredString(0, -0.35 * size, line)
        c.setFont(regular, size * 0.5)
        c.drawCentredString(0, -1.2 * size, "PURPOSE-STAMPED COPY · FOR THE STATED USE ONLY")
        c.restoreState()
        c.setFillColor(GREY)
        c.setFont(regular, 7)
        c.drawCentredString(
            PAGE_W / 2,
            20.5 * MM,
            f"加注件编号 Copy {copy_id} · 扫码核验用途与状态 / scan to verify",
        )

    return draw


def _service_item(entry: LicenceType, given: str | None, purpose: str | None) -> str | None:
    """The service item a copy is stamped for: one the type serves, or none when a purpose is
    given; a copy needs one or the other."""
    item = (given or "").strip() or None
    if item is not None and item not in entry.service_items:
        raise InvalidInput(
            f"事项编码 {item} 不是此类证照服务的事项 / service item {item} is not one this "
            f"licence type serves (one of: {', '.join(entry.service_items) or '-'})",
            field="service_item",
        )
    if purpose is None and item is None:
        raise InvalidInput(
            "请填写办理事项名称或选择事项编码 / give the purpose or a service item",
            field="purpose",
        )
    return item


def _layout_as_issued(
    entry: LicenceType, schema: LicenceTypeVersion | None, fields: dict[str, Any]
) -> tuple[tuple[str, str], ...]:
    """The licence's fields laid out by the field schema of the type version it was issued
    under (the current schema when that version is not kept), as its page showed them."""
    return field_layout(
        entry.model_copy(
            update={"field_schema": schema.definition["field_schema"]}
            if schema is not None and "field_schema" in schema.definition
            else {}
        ),
        fields,
    )


def _copy_view(record: LicenceRecord, layout: tuple[tuple[str, str], ...], url: str) -> LicenceView:
    """What the copy's page prints: the licence as issued, pointing at the copy's own code."""
    licence, entry = record.licence, record.licence_type
    is_person = entry.holder_category == HolderCategory.NATURAL_PERSON.value
    return LicenceView(
        title=entry.name,
        title_en=entry.name_en,
        identifier=licence.identifier,
        holder_label="持证人" if is_person else "持证主体",
        holder_name=record.holder.name,
        holder_id=record.holder.id_number,
        fields=layout,
        issuer_name=record.issuer.name,
        issue_date=chinese_date(china_today(licence.issued_at)),
        valid_from=chinese_date(licence.valid_from),
        valid_until=chinese_date(licence.valid_until) if licence.valid_until else None,
        verify_url=url,
        version=f"{licence.version:03d}",
    )


class StampedCopies:
    def __init__(
        self,
        *,
        engine: Engine,
        seals: SealRegistry,
        audit: AuditLog,
        clock: Clock,
        fonts: Fonts,
        public_base_url: str,
        long_term: LongTermSealing | None = None,
        qr_codes: LicenceCodes | None = None,
    ) -> None:
        self._qr_codes = qr_codes  # signs the copy's QR code; None: a random code (online only)
        self._engine = engine
        self._seals = seals
        self._audit = audit
        self._clock = clock
        self._fonts = fonts
        self._base_url = public_base_url
        self._long_term = long_term

    def verify_url(self, copy: StampedCopy) -> str:
        return verify_url(self._base_url, copy.verify_code)

    def create(self, request: StampRequest) -> StampedCopy:
        """Check, render, seal, then store the copy with its audit entries in one transaction."""
        with reading(self._engine) as session:
            licence = holder_licence(
                session, request.identifier, request.id_type, request.id_number
            )
            record = full_record(session, licence)
            self._check_valid(record)
            entry = record.licence_type
            purpose = check_purpose(request.purpose, self._fonts.bold)
            item = _service_item(entry, request.service_item, purpose)
            schema = session.get(LicenceTypeVersion, (licence.type_code, licence.type_version))
            context = self._seals.seal_for_issuance(session, licence.issuer_code, entry.code)
            self._check_quota(session, licence.identifier)
            layout = _layout_as_issued(entry, schema, licence.fields)
        copy_id, now = secrets.token_hex(8), self._clock.now()
        code = (
            self._qr_codes.copy_code(
                record, copy_id, issued_at=now, actor=request.actor, request_id=request.request_id
            )
            if self._qr_codes is not None
            else new_verify_code()
        )
        sentence = stamp_text(purpose, item)
        view = _copy_view(record, layout, verify_url(self._base_url, code))
        rendered = render_licence(
            view,
            regular_font=self._fonts.regular,
            bold_font=self._fonts.bold,
            overlay=_stamp_overlay(sentence, chinese_date(china_today(now)), copy_id),
        )
        pdf, recorder = self._seal(rendered, context)
        copy = StampedCopy(
            id=copy_id,
            identifier=licence.identifier,
            licence_version=licence.version,
            purpose=purpose,
            service_item=item,
            stamp_text=sentence,
            created_at=now,
            sha256=hashlib.sha256(pdf).hexdigest(),
            verify_code=code,
            seal_code=context.seal.code,
            seal_certificate_serial=context.seal.certificate_serial,
            requested_by=request.actor[:128],
            pdf=pdf,
        )
        self._store(copy, recorder, request)
        return copy

    def _seal(
        self, rendered: RenderedLicence, context: SealContext
    ) -> tuple[bytes, KeyUseRecorder]:
        return seal_rendered(
            engine=self._engine,
            seals=self._seals,
            long_term=self._long_term,
            context=context,
            pdf=rendered.pdf,
            box=rendered.seal_box,
            reason=REASON,
        )

    def _store(self, copy: StampedCopy, recorder: KeyUseRecorder, request: StampRequest) -> None:
        with transaction(self._engine) as session:
            # The licence may have changed while the copy was sealed: check again, under lock.
            licence = holder_licence(
                session, copy.identifier, request.id_type, request.id_number, for_update=True
            )
            self._check_valid(full_record(session, licence))
            session.add(copy)
            recorder.flush(self._audit, session, request.actor, request.request_id)
            self._audit.append(
                session,
                actor=request.actor,
                action="licence.stamped_copy",
                object_type="licence",
                object_id=copy.identifier,
                request_id=request.request_id,
                detail={
                    "copy": copy.id,
                    "purpose": copy.purpose,
                    "service_item": copy.service_item,
                    "seal": copy.seal_code,
                    "sha256": copy.sha256,
                },
            )

    def _check_valid(self, record: LicenceRecord) -> None:
        status = effective_status(record.licence, china_today(self._clock.now()))
        if status is not LicenceStatus.VALID:
            raise Conflict(
                f"证照当前状态为{status.label}，不能制作加注件 / the licence is {status.value}; "
                "only a valid licence can be copied",
                field="identifier",
                extra={"current_status": status.value},
            )

    def _check_quota(self, session: Session, identifier: str) -> None:
        since = self._clock.now() - timedelta(days=1)
        made = session.exec(
            select(func.count())
            .select_from(StampedCopy)
            .where(StampedCopy.identifier == identifier, col(StampedCopy.created_at) >= since)
        ).one()
        if made >= MAX_PER_DAY:
            raise Conflict(
                f"24小时内最多制作 {MAX_PER_DAY} 份加注件 / at most {MAX_PER_DAY} stamped copies "
                "of one licence in 24 hours",
                field="identifier",
            )

    @staticmethod
    def of_licence(session: Session, identifier: str) -> list[StampedCopy]:
        """The licence's copies, newest first, without their PDFs."""
        return list(
            session.exec(
                select(StampedCopy)
                .options(defer(StampedCopy.pdf))  # type: ignore[arg-type]
                .where(StampedCopy.identifier == identifier)
                .order_by(col(StampedCopy.created_at).desc())
            )
        )

    @staticmethod
    def get(session: Session, copy_id: str, id_type: str, id_number: str) -> StampedCopy:
        """One of the holder's copies; another holder's is as unknown as a missing one."""
        copy = session.get(StampedCopy, copy_id[:16])
        if copy is None:
            raise NotFound(f"加注件不存在 / no stamped copy {copy_id[:16]}", field="copy_id")
        try:
            holder_licence(session, copy.identifier, id_type, id_number)
        except NotFound:
            raise NotFound(
                f"加注件不存在 / no stamped copy {copy_id[:16]}", field="copy_id"
            ) from None
        return copy
