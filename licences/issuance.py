"""Issuing a licence: validate, assign the identifier, render, seal, store — whole or not at all.

Three steps, each one function, which new versions (``licences.versions``) reuse as they are:

1. ``prepare`` checks everything in a read-only session and returns a ``Draft``;
2. ``render_and_seal`` renders the page and seals *those* bytes — nothing else is ever sealed —
   outside any transaction (milliseconds of CPU must not hold the database's write lock);
3. ``store`` writes the record, the sealed bytes, the idempotency entry and the audit entries in
   one transaction, with a hook for what a new version changes on its predecessor.

What the page prints, its QR code and the row that records it are ``licences.issued_page``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.db import reading, transaction
from core.errors import Conflict, InvalidInput
from keys.audit import KeyUseRecorder
from licences import holders, idempotency, status_index
from licences.catalogue import Catalogue
from licences.catalogue_rules import ID_TYPES_FOR_CATEGORY, validate_fields
from licences.id_documents import validate_holder_id
from licences.idempotency import IdempotencyKey
from licences.identifiers import LicenceIdentifier, random_serial
from licences.issued_page import Draft, licence_row, page_view, verification_code
from licences.issued_store import StoreHook, write_issued
from licences.layout import has_photo_slot
from licences.layout_page import check_page_fits, render_page
from licences.links import verify_url
from licences.models import (
    Licence,
    LicenceType,
)
from licences.ofd_issue import OfdIssuance, OfdPage, formats_of, no_ofd, stored_documents
from licences.photos import Photo, decode_photo
from licences.qrkeys import LicenceCodes
from licences.validity import validity_dates
from seals.ltv import LongTermSealing
from seals.ofd_sealing import SealedOfd
from seals.registry import SealRegistry
from seals.sealing import seal_rendered

MAX_NAME = holders.MAX_NAME


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
    scope: str = "issue"  # the route the Idempotency-Key belongs to ("issue", "batch#3", ...)
    photo: str | None = None  # the holder's photo, base64 JPEG or PNG (licences.photos)

    def body(self) -> dict[str, Any]:
        """What the caller asked for: the part of the request an Idempotency-Key is bound to."""
        body = {
            "licence_type": self.licence_type,
            "holder": [self.holder_id_type, self.holder_id, self.holder_name],
            "fields": self.fields,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
        }
        if self.photo is not None:  # absent: the fingerprint of a request before photos
            body["photo"] = hashlib.sha256(self.photo.encode()).hexdigest()
        return body

    def fingerprint(self) -> str:
        return idempotency.fingerprint(self.body())

    def key(self) -> IdempotencyKey | None:
        return IdempotencyKey.of(
            self.department_code, self.scope, self.idempotency_key, self.body()
        )


@dataclass(frozen=True)
class Fonts:
    regular: Path
    bold: Path


@dataclass
class Sealed:
    """A rendered and sealed licence whose row is not stored yet."""

    licence: Licence
    pdf: bytes | None  # None: the type issues OFD only
    recorder: KeyUseRecorder
    holder: tuple[str, str, str]  # id type, number, name: found or captured when stored
    qr_version: int
    photo: Photo | None = None
    ofd: SealedOfd | None = None  # the type issues OFD (alone or beside the PDF)

    @property
    def documents(self) -> tuple[str, ...]:
        return (("pdf",) if self.pdf is not None else ()) + (("ofd",) if self.ofd else ())


@dataclass
class IssuedLicence:
    licence: Licence
    verify_url: str
    replayed: bool = False
    qr_version: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    documents: tuple[str, ...] = ("pdf",)  # the sealed documents stored: "pdf", "ofd"


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
        qr_codes: LicenceCodes | None = None,  # signed QR payloads; None: random codes
        long_term: LongTermSealing | None = None,  # timestamp + LTV data; None: PAdES B-B
        ofd: OfdIssuance | None = None,  # OFD with SM2 seals; None: types issuing OFD refused
    ) -> None:
        self._engine = engine
        self._catalogue = catalogue
        self._seals = seals
        self._audit = audit
        self._clock = clock
        self._fonts = fonts
        self._base_url = public_base_url
        self._qr_codes = qr_codes
        self._long_term = long_term
        self._ofd = ofd

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def issues_ofd(self) -> bool:
        """Whether this service seals OFD licences (its key store holds SM2 keys)."""
        return self._ofd is not None

    def verify_url(self, code: str) -> str:
        return verify_url(self._base_url, code)

    def issue(self, request: IssueRequest) -> IssuedLicence:
        key = request.key()
        with reading(self._engine) as session:
            replay = self.replay(session, key)
            if replay is not None:
                return replay
            draft = self.prepare(session, request)
        return self.store(
            self.render_and_seal(draft),
            key=key,
            actor=request.actor,
            request_id=request.request_id,
        )

    # --- 1. prepare ---------------------------------------------------------------------------

    def prepare(
        self,
        session: Session,
        request: IssueRequest,
        *,
        identifier: LicenceIdentifier | None = None,
        previous: str | None = None,
    ) -> Draft:
        """Every check an issuance needs, in the order a department would fix them."""
        entry = self._catalogue.get(session, request.licence_type)
        self._catalogue.check_issuer(entry, request.department_code)
        if formats_of(entry).ofd and self._ofd is None:
            raise no_ofd(entry)
        fields = validate_fields(entry, request.fields)
        holder_id, holder_name = self._check_holder(entry, request)
        valid_from, valid_until = self.validity(entry, request.valid_from, request.valid_until)
        context = self._seals.seal_for_issuance(session, request.department_code, entry.code)
        known = holders.find(session, request.holder_id_type, holder_id)
        if known is not None and known.name != holder_name:
            raise holders.name_conflict(known, entry.holder_category)
        draft = Draft(
            entry=entry,
            identifier=identifier
            or LicenceIdentifier(
                type_code=entry.code,
                issuer_code=request.department_code,
                serial=random_serial(),
                version="001",
            ),
            department_code=request.department_code,
            holder_id_type=request.holder_id_type,
            holder_id=holder_id,
            holder_name=holder_name,
            fields=fields,
            valid_from=valid_from,
            valid_until=valid_until,
            context=context,
            previous=previous,
            status_index=status_index.allocate(session),
            photo=self._photo(entry, request.photo),
        )
        # A page that cannot hold the fields is refused here, before the QR code is signed.
        check_page_fits(
            page_view(draft, self._clock.now(), self.verify_url("")),
            draft.layout,
            regular_font=self._fonts.regular,
            bold_font=self._fonts.bold,
        )
        return draft

    def validity(
        self, entry: LicenceType, valid_from: date | None, valid_until: date | None
    ) -> tuple[date, date | None]:
        """The validity dates by the type's rule (``licences.validity``), today in China."""
        today = china_today(self._clock.now())
        return validity_dates(entry, valid_from, valid_until, today)

    @staticmethod
    def _photo(entry: LicenceType, photo: str | None) -> Photo | None:
        """The request's photo, checked; a type whose page has no photo slot takes none."""
        if photo is None:
            return None
        if not has_photo_slot(entry.layout):
            raise InvalidInput(
                f"证照类型 {entry.code} 的版式没有照片位置 / the layout of type {entry.code} has "
                "no photo slot",
                field="photo",
            )
        return decode_photo(photo)

    @staticmethod
    def _check_holder(entry: LicenceType, request: IssueRequest) -> tuple[str, str]:
        accepted = ID_TYPES_FOR_CATEGORY.get(entry.holder_category, (entry.holder_id_type,))
        if request.holder_id_type not in accepted:
            raise InvalidInput(
                f"此类证照的持证主体证件类型应为 {'、'.join(accepted)} 之一 / holder id_type must "
                f"be one of {', '.join(accepted)} for this licence type",
                field="holder.id_type",
                extra={"accepted_id_types": list(accepted)},
            )
        name = holders.check_name(request.holder_name)
        return validate_holder_id(request.holder_id_type, request.holder_id), name

    # --- 2. render and seal -------------------------------------------------------------------

    def render_and_seal(self, draft: Draft) -> Sealed:
        """Render the page from the draft and seal exactly those bytes."""
        issued_at = self._clock.now()
        code = verification_code(self._qr_codes, draft, issued_at)
        view = page_view(draft, issued_at, self.verify_url(code))
        photo = draft.photo.jpeg if draft.photo else None
        formats = formats_of(draft.entry)
        sealed: bytes | None = None
        recorder = KeyUseRecorder()
        qr_version = 0
        if formats.pdf:
            rendered = render_page(
                view,
                draft.layout,
                regular_font=self._fonts.regular,
                bold_font=self._fonts.bold,
                photo=photo,
            )
            sealed, recorder = seal_rendered(
                engine=self._engine,
                seals=self._seals,
                long_term=self._long_term,
                context=draft.context,
                pdf=rendered.pdf,
                box=rendered.seal_box,
                reason="电子证照签发 / licence issuance",
            )
            qr_version = rendered.qr_version
        ofd: SealedOfd | None = None
        if formats.ofd:
            if self._ofd is None:
                raise no_ofd(draft.entry)
            # The same view: same identifier, QR payload and date as the PDF, one licence.
            page = OfdPage(
                view, draft.layout, photo, issued_at, f"department:{draft.department_code}"
            )
            ofd = self._ofd.seal(page, draft.context, recorder)
        # The row's digest is the PDF's; an OFD-only licence's is its OFD's (its one document).
        digest = hashlib.sha256(sealed).hexdigest() if sealed is not None else None
        licence = licence_row(
            draft, issued_at=issued_at, code=code, sha256=digest or (ofd.sha256 if ofd else "")
        )
        holder = (draft.holder_id_type, draft.holder_id, draft.holder_name)
        return Sealed(licence, sealed, recorder, holder, qr_version, draft.photo, ofd)

    # --- 3. store -----------------------------------------------------------------------------

    def store(
        self,
        sealed: Sealed,
        *,
        key: IdempotencyKey | None,
        actor: str,
        request_id: str | None,
        hook: StoreHook | None = None,
        detail: dict[str, Any] | None = None,
    ) -> IssuedLicence:
        """Write the licence, its bytes, the key and the audit entries in one transaction."""
        licence = sealed.licence
        try:
            with transaction(self._engine) as session:
                replay = self.replay(session, key)
                if replay is not None:
                    sealed.recorder.flush(self._audit, session, actor, request_id)
                    return replay
                write_issued(
                    session,
                    self._audit,
                    sealed.licence,
                    sealed.pdf,
                    sealed.recorder,
                    sealed.holder,
                    photo=sealed.photo,
                    key=key,
                    actor=actor,
                    request_id=request_id,
                    hook=hook,
                    detail=detail or {},
                    ofd=sealed.ofd,
                )
        except IntegrityError as exc:
            # A concurrent request with the same Idempotency-Key (or a concurrent new version of
            # the same licence, or a first issuance to the same new holder) won the race.
            with reading(self._engine) as session:
                replay = self.replay(session, key)
            if replay is None:
                raise Conflict(
                    "并发请求冲突，请重试 / a concurrent request changed the same data; retry",
                    cause=str(exc.orig),
                ) from exc
            return replay
        return IssuedLicence(
            licence=licence,
            verify_url=self.verify_url(licence.verify_code),
            qr_version=sealed.qr_version,
            documents=sealed.documents,
        )

    def replay(self, session: Session, key: IdempotencyKey | None) -> IssuedLicence | None:
        identifier = idempotency.replay(session, key)
        if identifier is None:
            return None
        licence = session.get(Licence, identifier)
        assert licence is not None
        return IssuedLicence(
            licence=licence,
            verify_url=self.verify_url(licence.verify_code),
            replayed=True,
            documents=stored_documents(session, identifier),
        )
