"""Downloading a licence's sealed OFD: the issuing department, a department the holder granted
it, and the holder — each exactly as for the sealed PDF.

The issuing department gets it; another department only under the holder's grant, through
the same pull (``licences.pulls``, ``what="ofd"``) with the same rule as the PDF — a sealed
document is the whole licence, so a grant that covers less is refused it — and the same audit
and usage entry; a holder gets their own licence's, and another holder's is a 404 like one that
does not exist. A licence without an OFD (its type issues PDF) is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import select

from core.db import reading
from licences.grants import HolderKey
from licences.holder_desk import own_record
from licences.lifecycle import parse_identifier
from licences.models import Licence, LicenceOfd
from licences.ofd_issue import ofd_row, stored_documents
from licences.repository import licence_by_identifier


@dataclass(frozen=True)
class OfdFile:
    """A sealed OFD to download: its file name (without ``.ofd``), digest and bytes."""

    name: str
    sha256: str
    ofd: bytes


def _file(licence: Licence, engine: Engine) -> OfdFile:
    with reading(engine) as session:
        row = ofd_row(session, licence.identifier)
    return OfdFile(f"{licence.serial}-{licence.version:03d}", row.sha256, row.ofd)


class OfdDesk:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def for_department(
        self, identifier: str, department_code: str, pull: Callable[[str], object]
    ) -> OfdFile:
        """The OFD for the issuing department; for another, ``pull(identifier)`` first — the
        holder's grant, checked and audited as for the PDF (it raises when refused)."""
        with reading(self._engine) as session:
            licence = licence_by_identifier(session, parse_identifier(identifier))
        if licence.issuer_code != department_code:
            pull(licence.identifier)
        return _file(licence, self._engine)

    def for_holder(self, holder: HolderKey, identifier: str) -> OfdFile:
        """The holder's own licence's OFD (404 for another's, or for a licence without one)."""
        with reading(self._engine) as session:
            licence = own_record(session, holder, identifier).licence
        return _file(licence, self._engine)

    def first(self) -> str | None:
        """The identifier of the first licence stored with an OFD (``make run`` prints it)."""
        with reading(self._engine) as session:
            row = session.exec(select(LicenceOfd.identifier).order_by(LicenceOfd.identifier))
            return row.first()

    def documents(self, identifier: str) -> tuple[str, ...]:
        """Which sealed documents the licence has: "pdf", "ofd" or both."""
        with reading(self._engine) as session:
            return stored_documents(session, identifier)
