"""Presentation codes and holder links as the departments' API and the holder-link page use them.

Three credentials may mint a presentation code: the issuing department's, a holder link's
secret, and the signed-in holder's session (``licences.holder_desk``). Each method here is one
unit of work: it opens its own transaction (the mint's ``key.sign`` and ``licence.present``
entries, a link's ``holder_link.create``, in the same transaction) and returns the presentation
or the rows it made, so the edge never holds a session. A revoked or expired link presented
whole is audited (``holder_link.use``, refused) in a transaction of its own, since the refused
request's is rolled back; the :class:`LinkUnusable` is then raised again for the edge to answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock
from core.db import transaction
from core.errors import Conflict, Forbidden, Unauthenticated
from licences.holder_links import DEFAULT_DAYS, HolderLink, HolderLinks, LinkUnusable
from licences.models import Licence
from licences.presentation import Presentation, PresentationService
from licences.repository import LicenceRecord, full_record, licence_by_identifier

ONLY_ISSUER = "只有发证部门可以操作 / only the issuing department may do this"


def check_issuer(licence: Licence, department_code: str) -> None:
    """Only the issuing department acts on a licence through these routes (403)."""
    if licence.issuer_code != department_code:
        raise Forbidden(ONLY_ISSUER)


@dataclass(frozen=True)
class LinkPresentation:
    """What the holder-link page shows: the licence, and a fresh code or why there is none."""

    record: LicenceRecord
    presentation: Presentation | None
    refused: str  # the reason when the licence cannot be presented now, else ""


class PresentationDesk:
    """Holder links and the presentation codes minted with a department's or a link's say-so."""

    def __init__(
        self,
        *,
        engine: Engine,
        audit: AuditLog,
        clock: Clock,
        presentations: PresentationService,
    ) -> None:
        self._engine = engine
        self._links = HolderLinks(audit, clock)
        self._presentations = presentations

    @property
    def ttl_seconds(self) -> int:
        """How long a presentation code lives."""
        return int(self._presentations.ttl.total_seconds())

    def create_link(
        self,
        identifier: str,
        *,
        department_code: str,
        actor: str,
        valid_days: int | None,
        request_id: str,
    ) -> tuple[HolderLink, str]:
        """A holder link for the issuing department's licence: the row and its secret, which is
        returned once and stored only as a SHA-256."""
        with transaction(self._engine) as session:
            check_issuer(licence_by_identifier(session, identifier), department_code)
            return self._links.create(
                session,
                identifier,
                actor=actor,
                valid_days=valid_days or DEFAULT_DAYS,
                request_id=request_id,
            )

    def mint_for_issuer(
        self, identifier: str, *, department_code: str, actor: str, request_id: str
    ) -> Presentation:
        """A presentation code minted by the issuing department (403 for any other)."""
        with transaction(self._engine) as session:
            check_issuer(licence_by_identifier(session, identifier), department_code)
            return self._presentations.mint(session, identifier, actor=actor, request_id=request_id)

    def mint_with_link(self, identifier: str, secret: str, *, request_id: str) -> Presentation:
        """A presentation code minted with the licence's holder-link secret (401 for a link to
        another licence; :class:`LinkUnusable` for one that does not work)."""
        try:
            with transaction(self._engine) as session:
                link = self._links.resolve(session, secret)
                if link.identifier != identifier:
                    raise Unauthenticated(
                        "持证人链接与证照不符 / the holder link is for another licence"
                    )
                return self._presentations.mint(
                    session, identifier, actor=f"holder-link:{link.id}", request_id=request_id
                )
        except LinkUnusable as error:
            self._refused(error, request_id)
            raise

    def link_page(self, secret: str, *, request_id: str) -> LinkPresentation:
        """Mint for the holder-link page: the licence, and the code or the reason it cannot be
        presented now (:class:`LinkUnusable` for a link that does not work)."""
        try:
            with transaction(self._engine) as session:
                return self._mint_on_page(session, self._links.resolve(session, secret), request_id)
        except LinkUnusable as error:
            self._refused(error, request_id)
            raise

    def _mint_on_page(
        self, session: Session, link: HolderLink, request_id: str
    ) -> LinkPresentation:
        record = full_record(session, licence_by_identifier(session, link.identifier))
        try:
            presentation = self._presentations.mint(
                session, link.identifier, actor=f"holder-link:{link.id}", request_id=request_id
            )
        except Conflict as exc:
            return LinkPresentation(record, None, exc.message)
        return LinkPresentation(record, presentation, "")

    def _refused(self, error: LinkUnusable, request_id: str) -> None:
        """Audit a revoked or expired link presented whole; unknown or wrong secrets are not
        written down."""
        if error.link_id is None:
            return
        with transaction(self._engine) as session:
            self._links.refused(session, error, request_id=request_id)
