"""Recognised trust domains: other provinces whose licences this domain verifies.

The operator recognises a domain by the URL of its trust list and the SHA-256 fingerprint of
its trust-list signer, obtained out of band (``elicence federation add URL --fingerprint``).
From then on only lists signed by that very certificate are accepted, each newer than the last
(``trust.federation_list``). A list is fetched and checked before any transaction opens; the
store is then updated in one transaction that compares the sequence again, so two refreshes
racing cannot put an older list back, and a refused list leaves the stored one as it was
(``trust.federation_stored``, which ``Federation`` builds on).

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

import threading
import time
from typing import Any

from sqlmodel import Session

from core.db import as_utc, reading, transaction
from core.errors import Conflict, ElicenceError, ErrorKind
from trust import federation_http
from trust.federation_list import accept, check_successor
from trust.federation_store import (
    RecognisedDomain,
    TypeMapping,
    all_domains,
    mapped_type,
    mappings,
    remove_domain,
    set_mapping,
    stored_state,
    view,
)
from trust.federation_stored import AUTO, Outcome, Recognised, StoredLists
from trust.trustlist import pin_from_text

__all__ = ["AUTO", "Federation", "Outcome", "Recognised"]

RETRY_SECONDS = 30.0  # after a failed automatic refresh, the stored list is used this long


class Federation(StoredLists):
    """The recognised domains: what the operator does with them and what the verifier sees."""

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
