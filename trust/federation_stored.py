"""A recognised domain's trust list as this server keeps it: fetched, checked, stored, read back.

``trust.federation.Federation`` (the operator's actions and the verifier's view) builds on
``StoredLists``, which holds the one path by which a list is fetched and accepted: the list is
fetched and checked (signature, pin and sequence in ``trust.federation_list``, scope in
``trust.federation_scope``) before any transaction opens, then stored in one transaction that
compares the sequence again, so two refreshes racing cannot put an older list back and a refused
list leaves the stored one as it was. Stored lists are parsed once per document, and the root
each speaks for is worked out once per document and URL, per process.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock
from core.db import reading, transaction
from core.errors import Conflict, ElicenceError, InvalidInput, NotFound
from trust import federation_http
from trust.authority import TrustDomain
from trust.federation_http import Peers, Resolver, system_resolve
from trust.federation_list import TrustList, accept, parse
from trust.federation_scope import Material, check_list, check_origins, material, own_root
from trust.federation_store import (
    LocalTypes,
    RecognisedDomain,
    all_domains,
    document_digest,
    record_refusal,
    stored_state,
)
from trust.profiles import Role
from trust.services import TRUST_LIST_NAME
from trust.trustlist import fingerprint

MAX_LIST_BYTES = 4 * 1024 * 1024
AUTO = "system:federation"  # the actor of refreshes the server makes itself
OwnList = Callable[[Session], dict[str, Any]]  # this domain's trust-list content, unsigned
log = logging.getLogger("trust.federation")  # the name operators' log filters know


@dataclass(frozen=True)
class Recognised:
    """A recognised domain as the verifier sees it: its last accepted list, parsed."""

    name: str
    url: str
    fingerprint: str
    root_sha256: str  # the root it speaks for: its seals and QR keys are attributed by it
    trust_list: TrustList
    fetched_at: datetime
    stale: bool  # past the list's next_update and no fresh list could be fetched
    refresh_error: str | None = None  # for the log; never shown in a public report


@dataclass(frozen=True)
class Outcome:
    name: str
    result: str  # added | updated | unchanged | refreshed | refused | unreachable
    sequence: int | None
    message: str = ""


class StoredLists:
    """Fetch, check, store and parse the lists of recognised domains (see the module)."""

    def __init__(
        self,
        *,
        engine: Engine,
        clock: Clock,
        audit: AuditLog,
        trust: TrustDomain,
        local_types: LocalTypes,
        own_list: OwnList | None = None,
        refresh_seconds: int = 300,
        allow_private_addresses: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._audit = audit
        self._trust = trust
        self._local_types = local_types
        self._own_list = own_list
        self.refresh_interval = timedelta(seconds=refresh_seconds)
        self.allow_private_addresses = allow_private_addresses
        self.resolve: Resolver = system_resolve
        self.transport = transport  # tests stand a transport in for the network
        self._parsed: dict[tuple[str, str], TrustList] = {}
        self._roots: dict[tuple[str, str, str, str | None], str | None] = {}  # None: unusable
        self._attempted: dict[str, tuple[float, str]] = {}  # name -> (monotonic, error)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @property
    def peers(self) -> Peers:
        """How requests to other domains are made (the address rule, resolver, transport)."""
        return Peers(self.allow_private_addresses, self.resolve, self.transport)

    def fetch(self, url: str) -> Any:
        return federation_http.fetch_json(
            url, peers=self.peers, max_bytes=MAX_LIST_BYTES, what="信任列表", field="trust-list"
        )

    def _refresh(self, row: RecognisedDomain, actor: str) -> Outcome:
        try:
            document = self.fetch(row.url)
            parsed, _ = accept(document, row.fingerprint, self._clock.now(), stored_state(row))
            if parsed.name != row.name:
                raise InvalidInput(
                    f"列表属于另一信任域 {parsed.name} / the list at this URL is of another domain",
                    field="trust-list",
                )
            root = self._in_scope(parsed, row.url, row.root_sha256)
            with transaction(self._engine) as session:
                current = session.get(RecognisedDomain, row.name, with_for_update=True)
                if current is None:
                    raise NotFound(f"未承认该信任域 / {row.name} is not a recognised domain")
                # Compare again with the row as it is now: another process may have stored a
                # newer list meanwhile, which must not be replaced by this one.
                _, new = accept(document, row.fingerprint, self._clock.now(), stored_state(current))
                before = current.sequence
                if current.url != row.url:  # re-added from another URL meanwhile
                    raise Conflict(f"信任域 {row.name} 已被另行更新 / {row.name} changed; retry")
                self._store(current, parsed, current.url, root)
                session.add(current)
                if new or actor != AUTO:  # the server finding the same list is not news
                    self._audit.append(
                        session,
                        actor=actor,
                        action="federation.refresh",
                        object_type="trust-domain",
                        object_id=row.name,
                        detail={"from": before, "sequence": parsed.sequence, "changed": new},
                    )
        except ElicenceError as exc:
            self._refused("federation.refresh", row.name, actor, exc, {"url": row.url})
            raise
        self._attempted.pop(row.name, None)
        return Outcome(row.name, "refreshed" if new else "unchanged", parsed.sequence)

    def _parse(self, row: RecognisedDomain) -> TrustList:
        document = json.loads(row.document)
        key = (row.name, document_digest(document))
        parsed = self._parsed.get(key)
        if parsed is None:
            # Stored only after its signature and pin held; parsed again for the certificates.
            parsed = parse(document)
            for old in [k for k in self._parsed if k[0] == row.name]:
                self._parsed.pop(old, None)
            self._parsed[key] = parsed
        return parsed

    def _new_row(self, parsed: TrustList, url: str, pinned: str) -> RecognisedDomain:
        now = self._clock.now()
        return RecognisedDomain(
            name=parsed.name,
            url=url,
            fingerprint=pinned,
            document="",
            sequence=parsed.sequence,
            fetched_at=now,
            next_update=parsed.next_update,
            added_at=now,
        )

    def _store(self, row: RecognisedDomain, parsed: TrustList, url: str, root: str) -> None:
        row.url = url
        row.root_sha256 = root
        row.fingerprint = parsed.fingerprint
        row.document = json.dumps(parsed.document, ensure_ascii=False)
        row.sequence = parsed.sequence
        row.next_update = parsed.next_update
        row.fetched_at = self._clock.now()

    def _in_scope(self, parsed: TrustList, url: str, pinned_root: str | None) -> str:
        """The scope rules (``trust.federation_scope``) against this domain's keys and those of
        every other recognised domain; the root the list chains to."""
        with reading(self._engine) as session:
            own = (
                material(self._own_list(session))
                if self._own_list
                else Material(frozenset(), frozenset())
            )
            others = [row for row in all_domains(session) if row.name != parsed.name]
        theirs = {row.name: material(self._parse(row).document) for row in others}
        return check_list(parsed, url, pinned_root, own, theirs)

    def _root(self, row: RecognisedDomain, parsed: TrustList) -> str | None:
        """The root a stored list speaks for, or None when the list may not be used now (it was
        stored before the scope rules, or its URLs are off the origin of the row's URL)."""
        key = (row.name, parsed.digest, row.url, row.root_sha256)
        if key not in self._roots:
            for old in [k for k in self._roots if k[0] == row.name]:
                self._roots.pop(old, None)
            try:
                check_origins(parsed, row.url)
                self._roots[key] = own_root(parsed, row.root_sha256)
            except InvalidInput as exc:
                log.warning("stored trust list of %s is not used: %s", row.name, exc.message)
                self._roots[key] = None
        return self._roots[key]

    def _row(self, name: str, session: Session | None = None) -> RecognisedDomain:
        if session is None:
            with reading(self._engine) as own:
                return self._row(name, own)
        row = session.get(RecognisedDomain, name)
        if row is None:
            raise NotFound(f"未承认该信任域 / {name} is not a recognised domain", field="domain")
        return row

    def _not_ourselves(self, parsed: TrustList) -> None:
        with reading(self._engine) as session:
            own, _ = self._trust.service_certificate(session, Role.TRUST_LIST, TRUST_LIST_NAME)
        if parsed.name == self._trust.identity.name or parsed.fingerprint == fingerprint(own):
            raise InvalidInput(
                "这是本信任域自己的信任列表 / this is this domain's own trust list",
                field="trust-list",
            )

    def _refused(
        self, action: str, subject: str, actor: str, exc: ElicenceError, detail: dict[str, Any]
    ) -> None:
        record_refusal(self._engine, self._audit, action, subject, actor, exc, detail)
