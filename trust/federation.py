"""Recognised trust domains: other provinces whose licences this domain verifies.

The operator recognises a domain by the URL of its trust list and the SHA-256 fingerprint of
its trust-list signer, obtained out of band (``elicence federation add URL --fingerprint``).
From then on only lists signed by that very certificate are accepted, each newer than the last
(``trust.federation_list``). A list is fetched and checked before any transaction opens; the
store is then updated in one transaction that compares the sequence again, so two refreshes
racing cannot put an older list back, and a refused list leaves the stored one as it was.

A domain speaks only for what chains to its own root (``trust.federation_scope``): a list that
names a key of this domain or of another recognised domain, a CA, seal or TSA outside its root,
or an OCSP, CRL or status URL off the origin of its trust-list URL, is refused whole. Every
request to another domain obeys the address rule of ``trust.federation_http``.

The server refreshes a list before use once it is older than the refresh interval
(``ELICENCE_FEDERATION_REFRESH_SECONDS``); a failed refresh keeps the stored list, which stays
usable until its own ``next_update``. Every add, refresh (or refusal), removal and mapping is
an audit entry.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock
from core.db import as_utc, reading, transaction
from core.errors import Conflict, ElicenceError, ErrorKind, InvalidInput, NotFound
from trust import federation_http
from trust.authority import TrustDomain
from trust.federation_http import Peers, Resolver, system_resolve
from trust.federation_list import TrustList, accept, check_successor, parse
from trust.federation_scope import Material, check_list, check_origins, material, own_root
from trust.federation_store import (
    LocalTypes,
    RecognisedDomain,
    TypeMapping,
    all_domains,
    document_digest,
    mapped_type,
    mappings,
    record_refusal,
    remove_domain,
    set_mapping,
    stored_state,
    view,
)
from trust.profiles import Role
from trust.services import TRUST_LIST_NAME
from trust.trustlist import fingerprint, pin_from_text

MAX_LIST_BYTES = 4 * 1024 * 1024
AUTO = "system:federation"  # the actor of refreshes the server makes itself
RETRY_SECONDS = 30.0  # after a failed automatic refresh, the stored list is used this long
OwnList = Callable[[Session], dict[str, Any]]  # this domain's trust-list content, unsigned
log = logging.getLogger(__name__)


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


class Federation:
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

    # -- operator actions --------------------------------------------------------------------

    def add(self, url: str, pinned: str, *, actor: str) -> Outcome:
        """Recognise the domain whose list is at ``url``. A domain already recognised with the
        same pin takes the list as a refresh from that URL (same sequence rules) and keeps it."""
        federation_http.check_url(url)
        pinned = pin_from_text(pinned)
        try:
            document = self.fetch(url)
            parsed, _ = accept(document, pinned, self._clock.now())
            self._not_ourselves(parsed)
            with reading(self._engine) as session:
                known = session.get(RecognisedDomain, parsed.name)
            same = known if known is not None and known.fingerprint == pinned else None
            if same is not None:
                check_successor(parsed, *stored_state(same))  # a replay is named as such
            root = self._in_scope(parsed, url, same.root_sha256 if same else None)
            with transaction(self._engine) as session:
                row = session.get(RecognisedDomain, parsed.name, with_for_update=True)
                if row is not None and row.fingerprint != pinned:
                    raise Conflict(
                        f"信任域 {parsed.name} 已按另一指纹承认，请先移除 / {parsed.name} is "
                        "already recognised with another pinned fingerprint; remove it first",
                        field="fingerprint",
                    )
                if row is None:
                    result = "added"
                    row = self._new_row(parsed, url, pinned)
                else:
                    _, new = accept(document, pinned, self._clock.now(), stored_state(row))
                    result = "updated" if new else "unchanged"
                self._store(row, parsed, url, root)
                session.add(row)
                self._audit.append(
                    session,
                    actor=actor,
                    action="federation.add",
                    object_type="trust-domain",
                    object_id=parsed.name,
                    detail={
                        "url": url,
                        "fingerprint": pinned,
                        "root_sha256": root,
                        "sequence": parsed.sequence,
                        "result": result,
                    },
                )
        except ElicenceError as exc:
            self._refused("federation.add", url, actor, exc, {"url": url, "fingerprint": pinned})
            raise
        return Outcome(parsed.name, result, parsed.sequence)

    def refresh(self, name: str | None = None, *, actor: str) -> list[Outcome]:
        """Fetch again the list of one domain (refusals raise) or of all (refusals reported)."""
        if name is not None:
            return [self._refresh(self._row(name), actor)]
        outcomes = []
        with reading(self._engine) as session:
            rows = all_domains(session)
        for row in rows:
            try:
                outcomes.append(self._refresh(row, actor))
            except ElicenceError as exc:
                result = "unreachable" if exc.kind is ErrorKind.UNAVAILABLE else "refused"
                outcomes.append(Outcome(row.name, result, row.sequence, exc.message))
        return outcomes

    def remove(self, name: str, *, actor: str) -> None:
        """Stop recognising ``name``; its mappings go with it, in one transaction."""
        with transaction(self._engine) as session:
            remove_domain(session, self._audit, name, actor)

    def map(
        self, name: str, foreign_type: str, local_type: str | None, *, actor: str
    ) -> TypeMapping | None:
        """Map a foreign licence type to a local one (``local_type`` None removes the mapping)."""
        with transaction(self._engine) as session:
            row = set_mapping(
                session, name, foreign_type, local_type, self._local_types, self._clock.now()
            )
            self._audit.append(
                session,
                actor=actor,
                action="federation.map" if local_type else "federation.unmap",
                object_type="trust-domain",
                object_id=name,
                detail={"foreign_type": foreign_type, "local_type": local_type},
            )
        return row

    def describe(self, name: str | None = None) -> list[dict[str, Any]]:
        with reading(self._engine) as session:
            rows = [self._row(name, session)] if name else all_domains(session)
            return [view(row, mappings(session, row.name)) for row in rows]

    # -- for the verifier --------------------------------------------------------------------

    def recognised(self) -> list[Recognised]:
        """Every recognised domain with a usable view of its list, refreshing lists older than
        the refresh interval first (a failure keeps the stored list and is retried later)."""
        with reading(self._engine) as session:
            rows = all_domains(session)
        found = []
        for row in rows:
            error = None
            if self._clock.now() - as_utc(row.fetched_at) >= self.refresh_interval:
                row, error = self._auto_refresh(row)
            parsed = self._parse(row)
            root = self._root(row, parsed)
            if root is None:
                continue  # a stored list that breaks the scope rules is not used at all
            found.append(
                Recognised(
                    name=row.name,
                    url=row.url,
                    fingerprint=row.fingerprint,
                    root_sha256=root,
                    trust_list=parsed,
                    fetched_at=as_utc(row.fetched_at),
                    stale=parsed.next_update <= self._clock.now(),
                    refresh_error=error,
                )
            )
        return found

    def local_type(self, session: Session, name: str, foreign_type: str) -> tuple[str, str] | None:
        """The local type (code, name) a foreign type is recognised as, if mapped."""
        code = mapped_type(session, name, foreign_type)
        if code is None:
            return None
        local_name = self._local_types(session, code)
        return (code, local_name) if local_name is not None else None

    # -- internals ---------------------------------------------------------------------------

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

    def _auto_refresh(self, row: RecognisedDomain) -> tuple[RecognisedDomain, str | None]:
        with self._guard:
            lock = self._locks.setdefault(row.name, threading.Lock())
        with lock:
            attempted = self._attempted.get(row.name)
            if attempted is not None and time.monotonic() - attempted[0] < RETRY_SECONDS:
                return self._reload(row), attempted[1]
            try:
                self._refresh(row, AUTO)
            except ElicenceError as exc:
                self._attempted[row.name] = (time.monotonic(), exc.message)
                return self._reload(row), exc.message
            return self._reload(row), None

    def _reload(self, row: RecognisedDomain) -> RecognisedDomain:
        with reading(self._engine) as session:
            return session.get(RecognisedDomain, row.name) or row

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
