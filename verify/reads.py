"""Where a verification reads: a PostgreSQL streaming replica when one is configured, the primary
for whatever the replica may not have replayed yet.

A replica answers a moment behind the primary (the replication lag), and a stale read can turn a
verdict either way: a licence issued a moment ago is not there yet (a false NOT_IN_REPOSITORY), a
licence revoked a moment ago is still valid there (a false PASSED — the one answer a verifier
must never give). The rule, checked on every answer the replica gives:

- the report names no licence and failed for want of one (NOT_IN_REPOSITORY, UNKNOWN_CODE,
  HASH_FAILURE): the check runs again on the primary;
- the report names a licence: its status is read again **on the primary, by key** (one
  primary-key lookup of ``status`` and ``valid_until``); unless the primary gives the same
  status now, the check runs again on the primary;
- a PDF check also depends on this domain's certificate revocations (seal and TSA
  certificates): the replica's set, read *before* the check, must equal the primary's *after*
  it, or the check runs again on the primary. Replay only moves forward, so equal ends mean the
  check saw the set the primary holds now.

Why not "use the primary when the replica lags more than N ms": a replica cannot know what it
has not yet received, its last replay time says nothing about a revocation committed a
millisecond ago, and comparing write positions with the primary costs the same round trip as the
status read while failing almost always (every verification writes its log row on the primary,
so the replica is always a few commits behind). The by-key status read makes the answer as fresh
as the primary whatever the lag, for one index lookup; everything heavier — the licence by
SHA-256 or code, its type, holder, issuer and seal, the photo digest, the trust anchors, earlier
copies — is read on the replica.

A replica that fails (down, a recovery conflict) is left alone for a few seconds and the primary
answers: verification never stops because the replica did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine

from core.clock import china_today
from core.db import reading
from core.errors import Unavailable
from licences.models import Licence
from licences.repository import effective_status
from verify.ltv import known_revocations
from verify.report import Report, SubIndication
from verify.signature import Revocation

# Failures a replica that has not replayed a write yet can give for a licence the primary holds.
NOT_YET_REPLAYED = frozenset(
    {SubIndication.NOT_IN_REPOSITORY, SubIndication.UNKNOWN_CODE, SubIndication.HASH_FAILURE}
)
RETRY_SECONDS = 5.0  # a failed replica is tried again after this long

_licence = Licence.__table__  # type: ignore[attr-defined]
_STATUS = sa_select(_licence.c.status, _licence.c.valid_until).where(
    _licence.c.identifier == bindparam("identifier")
)

Check = Callable[[Engine], Report]


def _autocommit(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        return engine  # SQLite: one file, no replica, nothing to spare
    return engine.execution_options(isolation_level="AUTOCOMMIT")


class ReadRoute:
    """Runs a verification's reads on the replica and confirms or redoes them on the primary."""

    def __init__(self, primary: Engine, replica: Engine | None = None) -> None:
        self._primary = primary
        # Reads on the replica, and the confirming read on the primary, run in autocommit: no
        # BEGIN and ROLLBACK round trips around them, and READ COMMITTED gives each statement
        # its own snapshot either way. The same pools; only the checkout's mode differs.
        self._replica = None if replica is None else _autocommit(replica)
        self._confirm = _autocommit(primary)
        self._resting_until = 0.0  # monotonic time before which the replica is not asked
        self._lock = threading.Lock()

    @property
    def replicated(self) -> bool:
        """Whether reads go to a replica (then each check is confirmed on the primary)."""
        return self._replica is not None

    def answer(self, check: Check, *, revocations: bool = False) -> Report:
        """``check`` run with the engine it should read from. ``revocations``: the check
        depends on this domain's certificate revocations (a PDF's seal and timestamp)."""
        replica = self._replica
        if replica is None or time.monotonic() < self._resting_until:
            return check(self._primary)
        try:
            before = self._revoked(replica) if revocations else None
            report = check(replica)
        except Unavailable:
            with self._lock:
                self._resting_until = time.monotonic() + RETRY_SECONDS
            return check(self._primary)
        if self._current(report, before):
            return report
        return check(self._primary)

    @staticmethod
    def _revoked(engine: Engine) -> frozenset[Revocation]:
        with reading(engine) as session:
            return frozenset(known_revocations(session))

    def _current(self, report: Report, revoked: frozenset[Revocation] | None) -> bool:
        """Whether the replica's report is the one the primary would give now."""
        named = report.licence
        if named is None and report.sub_indication in NOT_YET_REPLAYED:
            return False
        if named is None and revoked is None:
            return True  # decided before any licence was read (format, signature, key)
        with reading(self._confirm) as session:
            if named is not None:
                row = session.connection().execute(_STATUS, {"identifier": named.identifier})
                found = row.first()
                if found is None:
                    return False
                live = Licence.model_construct(status=found[0], valid_until=found[1])
                status = effective_status(live, china_today(report.validated_at))
                if status.value != named.status:
                    return False
            if revoked is not None and frozenset(known_revocations(session)) != revoked:
                return False
        return True
