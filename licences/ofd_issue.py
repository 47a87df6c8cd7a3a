"""Issuing a licence's OFD beside (or instead of) its PDF, and keeping it.

A licence type says which sealed documents its licences come as (``document_formats``: pdf,
ofd, both). For an OFD, issuance renders the same page view it renders for the PDF — same
identifier, same signed QR payload, same issue date — as an OFD package
(``licences.ofd_package``) and seals it with the department's seal in its SM2 form
(``seals.ofd_sealing``): the SM2 seal certificate that the domain's SM2 PKI issued beside the
seal's ECDSA one, the SESeal made by the SM2 seal CA, the timestamp of our own TSA. Every key
use (seal maker, seal, TSA) is told to the issuance's recorder, so it is audited in the
transaction that stores the licence. ``licence_ofd`` keeps the bytes, written with the licence
row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.clock import china_today
from core.db import transaction
from core.errors import NotFound, Unavailable
from keys.store import KeyUseListener
from licences.layout import Layout
from licences.models import DocumentFormats, LicenceDocument, LicenceOfd, LicenceType
from licences.ofd_package import build_package, stamp_boundary
from licences.render import LicenceView
from seals.issuing_seal import SealContext
from seals.ofd_sealing import OfdSealer, SealedOfd, Sm2SealKeys
from trust.tsa import TimeStampAuthority

MEDIA_TYPE = "application/ofd"


class Sm2Seals(Protocol):
    """The domain's SM2 PKI, as OFD issuance needs it: a department seal's SM2 key and
    certificate and the seal maker's — issued, in ``session`` and audited under ``actor``, on
    the seal's first OFD use."""

    def sm2_seal_keys(self, session: Session, context: SealContext, actor: str) -> Sm2SealKeys: ...


def formats_of(entry: LicenceType) -> DocumentFormats:
    return DocumentFormats(entry.document_formats or DocumentFormats.PDF.value)


def no_ofd(entry: LicenceType) -> Unavailable:
    return Unavailable(
        f"证照类型 {entry.code} 签发 OFD，但本服务未配置国密（SM2）印章 / type {entry.code} "
        "issues OFD, but this service has no SM2 seals configured",
        field="licence_type",
    )


@dataclass(frozen=True)
class OfdPage:
    """What the OFD prints: the PDF's view, layout and photo, and when it is issued."""

    view: LicenceView
    layout: Layout | None
    photo: bytes | None
    issued_at: datetime
    actor: str  # who a first use of the seal's SM2 certificate is audited under


class OfdIssuance:
    def __init__(
        self,
        *,
        engine: Engine,
        sealer: OfdSealer,
        sm2: Sm2Seals,
        tsa: TimeStampAuthority,
        regular_font: Path,
        bold_font: Path,
    ) -> None:
        self._engine = engine
        self._sealer = sealer
        self._sm2 = sm2
        self._tsa = tsa
        self._regular = regular_font
        self._bold = bold_font

    def seal(self, page: OfdPage, context: SealContext, listener: KeyUseListener) -> SealedOfd:
        """The sealed OFD of ``page`` (outside any write transaction, like the PDF's seal)."""
        package = build_package(
            page.view,
            page.layout,
            created=china_today(page.issued_at),
            regular_font=self._regular,
            bold_font=self._bold,
            photo=page.photo,
        )
        # A transaction of its own: the seal's SM2 certificate is issued on its first OFD use,
        # and stays whether or not this licence is stored.
        with transaction(self._engine) as session:
            keys = self._sm2.sm2_seal_keys(session, context, page.actor)
            unit = self._tsa.unit(session)
        return self._sealer.seal(
            package.files,
            keys=keys,
            when=page.issued_at,
            page_id=package.page_id,
            stamp_box=stamp_boundary(package),
            company=context.department.name,
            timestamps=unit,
            listener=listener,
        )


def store_ofd(session: Session, identifier: str, sealed: SealedOfd) -> None:
    session.add(
        LicenceOfd(
            identifier=identifier,
            ofd=sealed.data,
            sha256=sealed.sha256,
            sm2_certificate_serial=sealed.certificate_serial,
        )
    )


def ofd_row(session: Session, identifier: str) -> LicenceOfd:
    """A licence's sealed OFD; 404 (problem+json at the edge) for a licence without one."""
    row = session.get(LicenceOfd, identifier)
    if row is None:
        raise NotFound(f"该证照没有 OFD 文件 / licence {identifier} has no OFD document")
    return row


def stored_documents(session: Session, identifier: str) -> tuple[str, ...]:
    """Which sealed documents a stored licence has: "pdf", "ofd" or both."""
    pdf = session.get(LicenceDocument, identifier) is not None
    ofd = session.get(LicenceOfd, identifier) is not None
    return (("pdf",) if pdf else ()) + (("ofd",) if ofd else ())
