"""Converting a department's existing licences (存量证照转换): each checked record of its earlier
system (``licences.legacy``) becomes a licence of this domain, rendered with the conversion note
and sealed, whole or not at all.

**Decision: idempotent by the original number.** The key is (department, licence type, original
number) in ``legacy_licence`` (revision 0025). A record whose key is there already is
``unchanged`` when its content digest is the one converted, and a ``conflict`` otherwise, naming
the first field that differs from what was converted: a department correcting its old data
changes the licence through the lifecycle (amend, revoke), never by converting over it.

**Decision: status in the same transaction.** The licence row, its sealed bytes, the key uses,
the ``licence.issue`` audit entry (detail ``converted_from``), the ``legacy_licence`` row and,
for a revoked, cancelled or suspended record, the lifecycle's own status change and its audit
entry (``licences.lifecycle.Lifecycle.mark``) are written in one transaction, in that order, so
the outbox sees ``licence.issued`` then ``licence.revoked`` and a crash leaves nothing half
done. An expired record is stored valid with its dates: expiry is computed, never stored.

The page: the issuer block prints the original issue date (the date the licence was granted);
the note prints the original number, that date and the conversion date in China.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.db import reading, transaction
from core.errors import ElicenceError, ErrorKind, Forbidden, InvalidInput
from keys.audit import KeyUseRecorder
from licences import holders, status_index
from licences.catalogue import Catalogue
from licences.catalogue_rules import ID_TYPES_FOR_CATEGORY, validate_fields
from licences.id_documents import validate_holder_id
from licences.identifiers import LicenceIdentifier, random_serial
from licences.issuance import Fonts
from licences.issued_page import Draft, licence_row, page_view, verification_code
from licences.issued_store import write_issued
from licences.layout_page import check_page_fits, render_page
from licences.legacy import LegacyRecord, Outcome, Row, RowReport, note_overlay, validity
from licences.legacy_records import LegacyLicence
from licences.lifecycle import Lifecycle, Transition
from licences.links import verify_url
from licences.models import Licence, LicenceStatus
from licences.qrkeys import LicenceCodes
from licences.validity import chinese_date
from seals.ltv import LongTermSealing
from seals.registry import SealRegistry
from seals.sealing import seal_rendered

TRANSITION = {
    LicenceStatus.REVOKED: Transition.REVOKE,
    LicenceStatus.CANCELLED: Transition.CANCEL,
    LicenceStatus.SUSPENDED: Transition.SUSPEND,
}
CHUNK = 500  # rows looked up together when a file is converted (or run again)
DEFAULT_REASON = "存量证照转换，沿用原系统状态 / converted with the status of the earlier system"


class LegacyConversion:
    def __init__(
        self,
        *,
        engine: Engine,
        catalogue: Catalogue,
        seals: SealRegistry,
        audit: AuditLog,
        lifecycle: Lifecycle,
        clock: Clock,
        fonts: Fonts,
        public_base_url: str,
        qr_codes: LicenceCodes | None = None,
        long_term: LongTermSealing | None = None,
    ) -> None:
        self._engine = engine
        self._catalogue = catalogue
        self._seals = seals
        self._audit = audit
        self._lifecycle = lifecycle
        self._clock = clock
        self._fonts = fonts
        self._base_url = public_base_url
        self._qr_codes = qr_codes
        self._long_term = long_term

    def today(self) -> date:
        """Today in China: what the reader checks dates against."""
        return china_today(self._clock.now())

    def convert_all(
        self, rows: Iterable[Row], *, department_code: str, actor: str, request_id: str | None
    ) -> Iterator[RowReport]:
        """A report per row, in order, as each is done (a caller may stream them). Rows are
        taken ``CHUNK`` at a time and the ones converted before are found with one query per
        chunk, so running a file again costs a look-up, not a transaction, per row."""
        chunk: list[Row] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                yield from self._chunk(chunk, department_code, actor, request_id)
                chunk = []
        yield from self._chunk(chunk, department_code, actor, request_id)

    def _chunk(
        self, rows: list[Row], department_code: str, actor: str, request_id: str | None
    ) -> Iterator[RowReport]:
        numbers = {row.record.original_number for row in rows if row.record is not None}
        with reading(self._engine) as session:
            known = {
                (old.type_code, old.original_number): old
                for old in session.exec(
                    select(LegacyLicence)
                    .where(LegacyLicence.department_code == department_code)
                    .where(col(LegacyLicence.original_number).in_(numbers))
                )
            }
        for row in rows:
            record = row.record
            old = (
                None if record is None else known.get((record.licence_type, record.original_number))
            )
            if record is not None and old is not None and old.content_sha256 == record.digest():
                yield RowReport(
                    row.number, record.original_number, Outcome.UNCHANGED, old.identifier
                )
            else:
                yield self.convert_row(
                    row, department_code=department_code, actor=actor, request_id=request_id
                )

    def convert_row(
        self, row: Row, *, department_code: str, actor: str, request_id: str | None
    ) -> RowReport:
        if row.record is None:
            assert row.error is not None
            return RowReport(row.number, row.original_number, Outcome.REFUSED, error=row.error)
        record = row.record
        try:
            with reading(self._engine) as session:
                known = self._known(session, department_code, record, row.number)
                if known is not None:
                    return known
                draft = self._prepare(session, department_code, record)
            return self._store(row.number, record, draft, actor, request_id)
        except ElicenceError as error:
            if error.kind is ErrorKind.UNAVAILABLE:  # the service's fault, not the row's: stop
                raise
            return RowReport(row.number, record.original_number, Outcome.REFUSED, error=error)

    # --- idempotency --------------------------------------------------------------------------

    def _known(
        self, session: Session, department_code: str, record: LegacyRecord, number: int
    ) -> RowReport | None:
        """The report of a record converted before: unchanged, or a conflict naming the field."""
        known = session.get(
            LegacyLicence, (department_code, record.licence_type, record.original_number)
        )
        if known is None:
            return None
        if known.content_sha256 == record.digest():
            return RowReport(number, record.original_number, Outcome.UNCHANGED, known.identifier)
        licence = session.get(Licence, known.identifier)
        assert licence is not None
        name = _first_difference(known, licence, record)
        error = InvalidInput(
            f"该原证照已于 {chinese_date(china_today(known.converted_at))} 转换为 "
            f"{known.identifier}，内容（{name}）与当时不同，未覆盖；请通过变更、吊销等办理 / "
            f"already converted as {known.identifier}; {name} differs from the converted "
            "record and was not overwritten (amend or revoke the licence instead)",
            field=name,
        )
        return RowReport(
            number, record.original_number, Outcome.CONFLICT, known.identifier, error=error
        )

    # --- checks -------------------------------------------------------------------------------

    def _prepare(self, session: Session, department_code: str, record: LegacyRecord) -> Draft:
        """Issuance's checks, in its order, with the legacy validity rule (an ended term is
        kept) and the refusal of another department's type naming ``licence_type``."""
        entry = self._catalogue.get(session, record.licence_type)
        try:
            self._catalogue.check_issuer(entry, department_code)
        except Forbidden as error:
            raise Forbidden(error.message, field="licence_type", extra=error.extra) from None
        fields = validate_fields(entry, record.fields)
        id_type = record.holder_id_type or entry.holder_id_type
        accepted = ID_TYPES_FOR_CATEGORY.get(entry.holder_category, (entry.holder_id_type,))
        if id_type not in accepted:
            raise InvalidInput(
                f"此类证照的持证主体证件类型应为 {'、'.join(accepted)} 之一 / holder id_type must "
                f"be one of {', '.join(accepted)} for this licence type",
                field="holder.id_type",
            )
        holder_name = holders.check_name(record.holder_name)
        holder_id = validate_holder_id(id_type, record.holder_id, china_today(self._clock.now()))
        valid_from, valid_until = validity(entry, record)
        context = self._seals.seal_for_issuance(session, department_code, entry.code)
        known = holders.find(session, id_type, holder_id)
        if known is not None and known.name != holder_name:
            raise holders.name_conflict(known, entry.holder_category)
        draft = Draft(
            entry=entry,
            identifier=LicenceIdentifier(
                type_code=entry.code,
                issuer_code=department_code,
                serial=random_serial(),
                version="001",
            ),
            department_code=department_code,
            holder_id_type=id_type,
            holder_id=holder_id,
            holder_name=holder_name,
            fields=fields,
            valid_from=valid_from,
            valid_until=valid_until,
            context=context,
            status_index=status_index.allocate(session),
        )
        check_page_fits(
            page_view(draft, self._clock.now(), verify_url(self._base_url, "")),
            draft.layout,
            regular_font=self._fonts.regular,
            bold_font=self._fonts.bold,
        )
        return draft

    # --- render, seal, store ------------------------------------------------------------------

    def _store(
        self,
        number: int,
        record: LegacyRecord,
        draft: Draft,
        actor: str,
        request_id: str | None,
    ) -> RowReport:
        now = self._clock.now()
        code = verification_code(self._qr_codes, draft, now)
        view = replace(
            page_view(draft, now, verify_url(self._base_url, code)),
            issue_date=chinese_date(record.original_issue_date),
        )
        rendered = render_page(
            view,
            draft.layout,
            regular_font=self._fonts.regular,
            bold_font=self._fonts.bold,
            overlay=note_overlay(
                record.original_number, record.original_issue_date, china_today(now)
            ),
        )
        sealed, recorder = seal_rendered(
            engine=self._engine,
            seals=self._seals,
            long_term=self._long_term,
            context=draft.context,
            pdf=rendered.pdf,
            box=rendered.seal_box,
            reason="存量证照转换 / conversion of an existing licence",
        )
        licence = licence_row(
            draft, issued_at=now, code=code, sha256=hashlib.sha256(sealed).hexdigest()
        )
        try:
            with transaction(self._engine) as session:
                known = self._known(session, draft.department_code, record, number)
                if known is not None:  # a concurrent run converted it first
                    recorder.flush(self._audit, session, actor, request_id)
                    return known
                self._write(session, licence, sealed, recorder, draft, record, actor, request_id)
        except IntegrityError:
            # A concurrent run stored the same original number first: report what it stored.
            with reading(self._engine) as session:
                known = self._known(session, draft.department_code, record, number)
            if known is None:
                raise
            return known
        return RowReport(number, record.original_number, Outcome.CONVERTED, licence.identifier)

    def _write(
        self,
        session: Session,
        licence: Licence,
        pdf: bytes,
        recorder: KeyUseRecorder,
        draft: Draft,
        record: LegacyRecord,
        actor: str,
        request_id: str | None,
    ) -> None:
        write_issued(
            session,
            self._audit,
            licence,
            pdf,
            recorder,
            (draft.holder_id_type, draft.holder_id, draft.holder_name),
            photo=None,
            key=None,
            actor=actor,
            request_id=request_id,
            hook=None,
            detail={
                "converted_from": record.original_number,
                "original_issue_date": record.original_issue_date.isoformat(),
                "original_status": record.status.value,
            },
        )
        session.add(
            LegacyLicence(
                department_code=draft.department_code,
                type_code=licence.type_code,
                original_number=record.original_number,
                identifier=licence.identifier,
                original_issue_date=record.original_issue_date,
                original_status=record.status.value,
                content_sha256=record.digest(),
                converted_at=licence.issued_at,
            )
        )
        session.flush()
        transition = TRANSITION.get(record.status)
        if transition is not None:
            self._lifecycle.mark(
                session,
                licence,
                transition,
                reason=record.status_reason or DEFAULT_REASON,
                actor=actor,
                request_id=request_id,
            )


def _first_difference(known: LegacyLicence, licence: Licence, record: LegacyRecord) -> str:
    """The first field in which ``record`` differs from what was converted."""
    start, end = record.valid_from, record.valid_until
    checks: list[tuple[str, bool]] = [
        ("holder.name", (licence.holder_name or "") != record.holder_name.strip()),
        ("original_issue_date", known.original_issue_date != record.original_issue_date),
        ("valid_from", licence.valid_from != start),
        ("valid_until", end is not None and licence.valid_until != end),
        ("status", known.original_status != record.status.value),
    ]
    for name in sorted(set(record.fields) | set(licence.fields)):
        before, now = licence.fields.get(name), record.fields.get(name)
        checks.append((f"fields.{name}", _as_text(before) != _as_text(now)))
    for name, differs in checks:
        if differs:
            return name
    return "record"


def _as_text(value: object) -> str:
    return "" if value is None else str(value)
