"""The issuing department's licences as the edge uses them: find, read, download, change status,
and the holder record a department corrects; the operator's ``issue``, ``revoke`` and batch file
go through it too.

Each method opens its own transaction (``core.db.reading`` for a read; a status change runs in
``licences.idempotency.once``, its audit entry in the same transaction) and returns rows loaded
inside it, or small frozen views of them. Rows stay readable after the transaction (sessions do
not expire on commit); nothing here relies on a relationship loaded later. Issuance and new
versions already own their transactions (``licences.issuance``, ``licences.versions``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock
from core.db import reading, transaction
from core.errors import Forbidden, Unavailable
from licences import batch, idempotency
from licences.catalogue import Catalogue
from licences.holders import CorrectionRefused, Holders
from licences.idempotency import IdempotencyKey
from licences.lifecycle import Lifecycle, Transition, parse_identifier
from licences.models import Holder, Licence
from licences.pulls import Pulled, PullRequest, Pulls
from licences.repository import (
    LicenceRecord,
    document,
    full_record,
    licence_by_identifier,
)
from licences.search import LicenceQuery, Page, search

ScopeCheck = Callable[[str], bool]


def only_issuer(licence: Licence, department_code: str | None) -> None:
    """Refuse (403) a department that did not issue ``licence``; None is the operator."""
    if department_code is not None and licence.issuer_code != department_code:
        raise Forbidden(
            "只有发证部门或获授权方可以访问 / only the issuing department or a granted party may read it"
        )


@dataclass(frozen=True)
class Found:
    """A licence looked up for a department: its whole record when the department issued it,
    else None (the caller may still pull it under the holder's grant)."""

    licence: Licence
    record: LicenceRecord | None


@dataclass(frozen=True)
class Download:
    """A licence and its sealed PDF when the department issued it, else None."""

    licence: Licence
    pdf: bytes | None


@dataclass(frozen=True)
class StatusChange:
    """The licence after a status change, read whole, and whether a key replayed it."""

    record: LicenceRecord
    replayed: bool


@dataclass(frozen=True)
class Corrected:
    """The holder after a name correction, and whether a key replayed it."""

    holder: Holder
    replayed: bool


class LicenceDesk:
    def __init__(
        self,
        *,
        engine: Engine,
        audit: AuditLog,
        clock: Clock,
        catalogue: Catalogue,
        lifecycle: Lifecycle,
        holders: Holders,
        search_engine: Engine | None = None,
    ) -> None:
        self._engine = engine
        # Search may read a streaming replica: a page a replication lag behind (milliseconds)
        # is still a page; a licence read by its identifier comes from the primary.
        self._search_engine = search_engine or engine
        self._clock = clock
        self._catalogue = catalogue
        self._lifecycle = lifecycle
        self._holders = holders
        self._pulls = Pulls(engine, audit, clock)

    # -- reading ---------------------------------------------------------------------------

    def find(self, query: LicenceQuery) -> Page:
        """A page of licences, newest first, cut by keyset (``licences.search``)."""
        try:
            with reading(self._search_engine) as session:
                return search(session, query, self._clock.now())
        except Unavailable:
            if self._search_engine is self._engine:
                raise
        with reading(self._engine) as session:  # the replica is down: the primary answers
            return search(session, query, self._clock.now())

    def licence(self, identifier: str) -> Licence:
        """A licence as stored now (404 if unknown)."""
        with reading(self._engine) as session:
            return licence_by_identifier(session, identifier)

    def record(self, identifier: str, department_code: str) -> Found:
        """A licence by its identifier (422 if malformed, 404 if unknown), whole for its issuer."""
        with reading(self._engine) as session:
            licence = licence_by_identifier(session, parse_identifier(identifier))
            if licence.issuer_code != department_code:
                return Found(licence, None)
            return Found(licence, full_record(session, licence))

    def download(self, identifier: str, department_code: str) -> Download:
        """A licence and, for its issuer, its sealed PDF."""
        with reading(self._engine) as session:
            licence = licence_by_identifier(session, parse_identifier(identifier))
            if licence.issuer_code != department_code:
                return Download(licence, None)
            return Download(licence, document(session, licence.identifier))

    def document(self, identifier: str) -> bytes:
        """The sealed PDF of a licence (the operator's ``elicence issue --out``)."""
        with reading(self._engine) as session:
            return document(session, identifier)

    def pull(self, request: PullRequest) -> Pulled:
        """Another department reads a licence under the holder's grant (``licences.pulls``);
        the pull or its refusal is audited."""
        return self._pulls.pull(request)

    def batch_items(
        self, text: str, *, department: str | None, actor: str, key_prefix: str | None
    ) -> list[batch.Item]:
        """The rows of a batch CSV file as issuance requests or the errors that stop them,
        each checked against the catalogue."""
        with reading(self._engine) as session:
            return batch.read_csv(
                text,
                entry_of=partial(self._catalogue.get, session),
                department=department,
                actor=actor,
                key_prefix=key_prefix,
            )

    # -- status changes ----------------------------------------------------------------------

    def change_status(
        self,
        *,
        identifier: str,
        transition: Transition,
        reason: str | None,
        actor: str,
        department_code: str | None,
        request_id: str | None = None,
        key: str | None = None,
    ) -> StatusChange:
        """Suspend, resume, cancel or revoke, at most once per Idempotency-Key; only the
        issuing department acts (``department_code`` None is the operator). Answers with the
        licence's whole record after the change."""
        changed = self._lifecycle.apply_once(
            self._engine,
            identifier=identifier,
            transition=transition,
            reason=reason,
            actor=actor,
            department_code=department_code,
            request_id=request_id,
            key=key,
        )
        with reading(self._engine) as session:
            record = full_record(session, changed.licence)
        return StatusChange(record, changed.replayed)

    # -- the holder record a department corrects -------------------------------------------

    def holder(self, id_type: str, id_number: str, *, department_code: str) -> Holder:
        """A holder, for a department that issued to it (403 otherwise)."""
        with reading(self._engine) as session:
            return self._holders.get(session, id_type, id_number, department_code=department_code)

    def correct_holder_name(
        self,
        *,
        id_type: str,
        id_number: str,
        name: str,
        allows: ScopeCheck,
        department_code: str,
        actor: str,
        request_id: str | None,
        key: str | None,
    ) -> Corrected:
        """Correct a holder's registered name (scope ``holders:correct:<category>``), at most
        once per Idempotency-Key; a refusal is audited in a transaction of its own."""
        idem = IdempotencyKey.of(
            department_code, "holder", key, {"id_type": id_type, "id": id_number, "name": name}
        )

        def write(session: Session) -> str:
            holder = self._holders.rename(
                session,
                id_type=id_type,
                id_number=id_number,
                name=name,
                allows=allows,
                actor=actor,
                request_id=request_id,
            )
            return f"{holder.id_type}/{holder.id_number}"

        def load(session: Session, reference: str) -> Holder:
            id_type_, _, number = reference.partition("/")
            return self._holders.get(session, id_type_, number, department_code=None)

        try:
            holder, replayed = idempotency.once(self._engine, idem, self._clock.now, write, load)
        except CorrectionRefused as refused:
            with transaction(self._engine) as session:
                self._holders.refused(session, refused, actor=actor, request_id=request_id)
            raise
        return Corrected(holder, replayed)
