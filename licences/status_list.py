"""The published status list (``GET /pki/status-list``): signed anew when a status changes, and
at least daily, so an offline verifier holding a list at most a day old knows every licence's
status as of that list's ``validFrom``.

The format is ``docs/status-list.md`` (a compact JWS ``vc+jwt`` over a W3C
BitstringStatusListCredential, the bits in ``licences.bitstring``). The list holds only the
licences whose status is not ``valid``: those rows are read through a partial index
(:data:`LISTED`), so building the list reads ~1% of the licence table, not all of it.

When a new list is due (:meth:`StatusListDesk.current`):

* the raw list's SHA-256 differs from the newest stored list's (a licence revoked, cancelled,
  suspended, resumed, superseded by a new version or voided): a status change is published
  within ``check_every`` (60 s) of being made, since each process looks again no sooner;
* the newest list is ``refresh`` (24 h) old or older, or there is none.

A list is valid for ``lifetime`` (48 h) from its ``validFrom``, which is the instant its rows
were read: the list states the status as of then. Signing happens outside any transaction
(the key store may be a remote Vault); the list is then stored with the next sequence in one
short write transaction that also writes the audit entries of the key use. Two processes
signing at once both try the same sequence: the primary key refuses one, whose key use is
still audited, and it serves the list that won. While the key store is unreachable the
newest stored list is served until its ``validUntil``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock
from typing import Any

from sqlalchemy import Index, literal_column
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import as_utc, reading, transaction
from core.errors import Unavailable
from keys.audit import AuditedKeyUse, KeyUseRecorder
from licences.bitstring import ENTRY_OF_STATUS, EntryStatus, build, encode, list_length
from licences.models import Licence, LicenceStatus
from licences.status_index import highest_index
from licences.status_list_records import StatusListRecord
from trust.jose import CredentialKeys
from trust.profiles import Endpoints

_log = logging.getLogger(__name__)

LIFETIME = timedelta(hours=48)
REFRESH = timedelta(hours=24)  # "at least daily"
CHECK_EVERY = timedelta(seconds=60)  # a status change is published within this
TTL_MS = 60_000  # how long a verifier may keep a list before asking again (Cache-Control too)
MEDIA_TYPE = "application/vc+jwt"
TYP = "vc+jwt"
CONTEXT = "https://www.w3.org/ns/credentials/v2"
ACTOR = "public:status-list"
PURPOSE = "status-list"

# The licences a list names, read through the partial index declared on the licence table.
LISTED: Index = next(
    index
    for index in Licence.__table__.indexes  # type: ignore[attr-defined]
    if index.name == "ix_licence_status_listed"
)


@dataclass(frozen=True)
class PublishedList:
    """A signed status list as served: the compact JWS and what a cache needs to know of it."""

    sequence: int
    token: str
    valid_from: datetime
    valid_until: datetime
    entries: int

    @property
    def etag(self) -> str:
        return f'"{self.sequence}"'


def listed_entries(session: Session) -> list[tuple[int, EntryStatus]]:
    """(index, entry) of every licence with an index whose status is not ``valid``."""
    rows = session.exec(
        select(col(Licence.status_index), col(Licence.status)).where(
            col(Licence.status) != literal_column("'valid'"),
            col(Licence.status_index).is_not(None),
        )
    ).all()
    return [
        (index, ENTRY_OF_STATUS[LicenceStatus(status)])
        for index, status in rows
        if index is not None
    ]


def raw_list(session: Session) -> bytes:
    """The raw list as of now: :func:`licences.bitstring.list_length` entries for the highest
    index ever given, every one valid but the listed licences'."""
    return build(listed_entries(session), list_length(highest_index(session)))


def credential(
    *, endpoints: Endpoints, issuer_name: str, raw: bytes, valid_from: datetime, lifetime: timedelta
) -> dict[str, Any]:
    """The BitstringStatusListCredential of ``docs/status-list.md`` over ``raw``."""
    url = endpoints.status_list
    return {
        "@context": [CONTEXT],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": {"id": endpoints.base_url, "name": issuer_name},
        "validFrom": _iso(valid_from),
        "validUntil": _iso(valid_from + lifetime),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "message",
            "encodedList": encode(raw),
            "ttl": TTL_MS,
        },
    }


class StatusListDesk:
    """What ``/pki/status-list`` serves: the newest signed list, signing the next when due."""

    def __init__(
        self,
        *,
        engine: Engine,
        keys: CredentialKeys,
        clock: Clock,
        audit: AuditLog,
        endpoints: Endpoints,
        issuer_name: str,
        lifetime: timedelta = LIFETIME,
        refresh: timedelta = REFRESH,
        check_every: timedelta = CHECK_EVERY,
    ) -> None:
        if refresh >= lifetime:
            raise ValueError("a list must be refreshed before it expires")
        self._engine = engine
        self._keys = keys
        self._clock = clock
        self._audit = audit
        self._endpoints = endpoints
        self._issuer_name = issuer_name
        self._lifetime = lifetime
        self._refresh = refresh
        self._check_every = check_every
        # One check at a time per process: threads arriving together wait for its answer
        # instead of each reading the table and signing the same list.
        self._lock = Lock()
        self._served: PublishedList | None = None
        self._checked_at: datetime | None = None

    def current(self, request_id: str | None = None) -> PublishedList:
        """The list to serve now; signs and stores the next one when it is due."""
        with self._lock:
            now = self._clock.now()
            if self._served is not None and self._checked_at is not None:
                since = now - self._checked_at
                if timedelta(0) <= since < self._check_every and now < self._served.valid_until:
                    return self._served
            served = self._check(now, request_id)
            self._served, self._checked_at = served, now
            return served

    def _check(self, now: datetime, request_id: str | None) -> PublishedList:
        with reading(self._engine) as session:
            raw = raw_list(session)
            latest = _newest(session)
        digest = hashlib.sha256(raw).hexdigest()
        if (
            latest is not None
            and latest.content_sha256 == digest
            and as_utc(latest.issued_at) + self._refresh > now
        ):
            return _published(latest)
        sequence = (latest.sequence if latest else 0) + 1
        try:
            return self._publish(raw, digest, now, sequence, request_id)
        except Unavailable as exc:
            # The key store (or the database) is down: the newest list still says, truly, what
            # the status was as of its validFrom, so it is served until it expires.
            if latest is None or as_utc(latest.valid_until) <= now:
                raise
            _log.warning(
                "status list %s not signed, serving %s: %s", sequence, latest.sequence, exc
            )
            return _published(latest)

    def _publish(
        self, raw: bytes, digest: str, now: datetime, sequence: int, request_id: str | None
    ) -> PublishedList:
        """Sign ``raw`` as of ``now`` (no transaction open), then store it as ``sequence``."""
        body = credential(
            endpoints=self._endpoints,
            issuer_name=self._issuer_name,
            raw=raw,
            valid_from=now,
            lifetime=self._lifetime,
        )
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        recorder = KeyUseRecorder()
        token = self._keys.sign(
            {"typ": TYP, "cty": "vc"}, payload, purpose=PURPOSE, listener=recorder
        )
        uses = list(recorder.uses)
        record = StatusListRecord(
            sequence=sequence,
            issued_at=now.replace(microsecond=0),
            valid_until=now.replace(microsecond=0) + self._lifetime,
            entries=len(raw) * 4,
            content_sha256=digest,
            document=token,
        )
        try:
            with transaction(self._engine) as session:
                session.add(record)
                session.flush()  # a list stored by another process first fails here
                recorder.flush(self._audit, session, ACTOR, request_id)
                self._audit.append(
                    session,
                    actor=ACTOR,
                    action="status_list.publish",
                    object_type="status_list",
                    object_id=str(sequence),
                    request_id=request_id,
                    detail={"sha256": digest, "entries": record.entries},
                )
        except IntegrityError:
            # Another process stored this sequence first: serve its list, but the key was
            # used for ours all the same, and every key use is audited.
            with transaction(self._engine) as session:
                _audit_uses(self._audit, session, uses, request_id)
                winner = _newest(session)
            assert winner is not None  # the row that refused ours
            return _published(winner)
        return _published(record)


def _audit_uses(
    audit: AuditLog, session: Session, uses: Iterable[tuple[Any, str]], request_id: str | None
) -> None:
    sink = AuditedKeyUse(audit, session, ACTOR, request_id)
    for ref, purpose in uses:
        sink.key_used(ref, purpose)


def _newest(session: Session) -> StatusListRecord | None:
    return session.exec(
        select(StatusListRecord).order_by(col(StatusListRecord.sequence).desc()).limit(1)
    ).first()


def _published(record: StatusListRecord) -> PublishedList:
    return PublishedList(
        sequence=record.sequence,
        token=record.document,
        valid_from=as_utc(record.issued_at),
        valid_until=as_utc(record.valid_until),
        entries=record.entries,
    )


def _iso(moment: datetime) -> str:
    return as_utc(moment).replace(microsecond=0).isoformat().replace("+00:00", "Z")
