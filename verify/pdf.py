"""Strict validation of an uploaded licence PDF.

pyHanko reports on the signature; this module decides. A document is PASSED only when every
check holds: one certification seal that forbids changes, intact and covering the file, chained
to this domain's root, made by the seal the repository recorded, bytes identical to the
repository's copy, and the licence valid now. pyHanko's ``bottom_line`` alone is never trusted,
since it accepts some shadow-attack files.

A verification is three steps so that the parsing and the cryptography can run in a limited
worker process while the repository stays here: ``prepare`` (size and header, an earlier
download swapped for the current copy, the trust anchors and this domain's revocations, read
from the database), ``verify.signature.examine`` (pure; in the worker for uploads, see
``verify.service``) and ``decide`` (the facts against the repository). ``verify`` runs all three
in this process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from sqlmodel import Session, select

from core.clock import Clock, china_today
from licences.repository import effective_status, full_record, licence_by_sha256
from trust.models import AuthorityRecord
from verify import ltv, rules
from verify.report import MESSAGES, Check, CheckResult, Indication, Report, SubIndication
from verify.signature import Revocation, SignatureFacts, TrustAnchors, examine
from verify.steps import Sections, Steps, Stop, build_report
from verify.summary import licence_summary, seal_summary

__all__ = ["CachedAnchors", "PdfVerifier", "Prepared", "TrustAnchors", "anchors_from"]

_LIMITS = {
    MemoryError: "内存超限 / memory limit exceeded",
    RecursionError: "嵌套过深 / nesting too deep",
}


@dataclass(frozen=True)
class Prepared:
    """What ``prepare`` found before any parsing: the bytes to examine (the upload, or the
    repository's current copy of an earlier download) and the plain values ``examine`` needs."""

    data: bytes
    digest: str  # SHA-256 of ``data``
    anchors: TrustAnchors
    revoked: tuple[Revocation, ...]
    moment: datetime
    tolerance: timedelta = ltv.TOLERANCE
    checks: tuple[Check, ...] = ()  # passed before the examination ("copy")


class CachedAnchors:
    """This domain's trust anchors, loaded again only when its CA rows change.

    The version is the (name, certificate serial) pairs of ``certificate_authority``, one small
    query; a new CA, or a CA given a new certificate, changes it, and the next upload sees the
    new anchors. A stale read can only cause an extra reload, never keep old anchors: the
    version is read before the anchors it labels."""

    def __init__(self, load: Callable[[Session], TrustAnchors]) -> None:
        self._load = load
        self._cached: tuple[tuple[tuple[str, str], ...], TrustAnchors] | None = None

    def __call__(self, session: Session) -> TrustAnchors:
        rows = session.exec(
            select(AuthorityRecord.name, AuthorityRecord.certificate_serial).order_by(
                AuthorityRecord.name
            )
        )
        version = tuple((name, serial) for name, serial in rows)
        cached = self._cached
        if cached is not None and cached[0] == version:
            return cached[1]
        anchors = self._load(session)
        self._cached = (version, anchors)
        return anchors


class PdfVerifier:
    def __init__(
        self, *, clock: Clock, anchors: Callable[[Session], TrustAnchors], max_bytes: int
    ) -> None:
        self._clock = clock
        self._anchors = anchors
        self.max_bytes = max_bytes

    def now(self) -> datetime:
        return self._clock.now()

    def verify(self, session: Session, data: bytes, channel: str = "upload") -> Report:
        """All three steps in this process (the CLI, tests, and servers run without
        isolation)."""
        prepared = self.prepare(session, data, channel)
        if isinstance(prepared, Report):
            return prepared
        try:
            facts = examine(
                prepared.data,
                prepared.anchors,
                moment=prepared.moment,
                revoked=prepared.revoked,
                tolerance=prepared.tolerance,
            )
        except (MemoryError, RecursionError) as exc:
            detail = _LIMITS[type(exc)]
            check = Check("limits", CheckResult.FAILED, detail)
            return self.refusal(
                check, Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED, detail, channel
            )
        return self.decide(session, prepared, facts, channel)

    def prepare(self, session: Session, data: bytes, channel: str) -> Prepared | Report:
        """Checks that need no parser, and what ``examine`` needs from the database. A Report
        when the upload is refused already."""
        steps = Steps()
        try:
            if len(data) > self.max_bytes:
                raise steps.fail(
                    "format",
                    f"{len(data)} bytes > {self.max_bytes}",
                    Indication.INDETERMINATE,
                    SubIndication.LIMIT_EXCEEDED,
                )
            if b"%PDF-" not in data[:1024]:
                raise steps.fail(
                    "format", "no PDF header", Indication.INDETERMINATE, SubIndication.MALFORMED
                )
        except Stop as stop:
            return self._report(steps, stop, channel)
        digest = hashlib.sha256(data).hexdigest()
        stored = ltv.current_copy(session, data, digest)
        if stored is not None:
            # A copy downloaded before `elicence archive refresh` re-timestamped the licence:
            # its bytes are the start of the repository's copy, which is checked instead (the
            # same seal, with later proofs of existence appended).
            steps.ok("copy", "an earlier download; checked with the repository's current copy")
            data, digest = stored, hashlib.sha256(stored).hexdigest()
        return Prepared(
            data=data,
            digest=digest,
            anchors=self._anchors(session),
            revoked=ltv.known_revocations(session),
            moment=self._clock.now(),
            checks=tuple(steps.checks),
        )

    def decide(
        self, session: Session, prepared: Prepared, facts: SignatureFacts, channel: str
    ) -> Report:
        """The examination's facts against this domain's records: the first failing check
        sets the indication."""
        steps = Steps(checks=list(prepared.checks))
        try:
            _seal_form(facts, steps)
            proven = _seal_evidence(facts, prepared, steps)
            assert facts.signer_serial is not None  # set whenever validation ran
            steps.apply(ltv.revocation_verdict(session, facts.signer_serial, proven))
            self._repository(session, prepared, facts, proven, steps)
            stop = None
        except Stop as failed:
            stop = failed
        return self._report(steps, stop, channel)

    def refusal(
        self,
        check: Check,
        indication: Indication,
        sub: SubIndication | None,
        message: str | None,
        channel: str,
    ) -> Report:
        """A report of one failed check, for a file refused before any decision (by the
        worker's limits or inspection)."""
        stop = Stop(indication, sub, message or MESSAGES[sub])
        return build_report(Steps(checks=[check]), stop, at=self._clock.now(), channel=channel)

    def _report(self, steps: Steps, stop: Stop | None, channel: str) -> Report:
        record = steps.record
        now = self._clock.now()
        sections = Sections(
            licence=licence_summary(record, china_today(now)) if record else None,
            seal=seal_summary(record, steps.signing_time, steps.timestamp) if record else None,
        )
        return build_report(steps, stop, at=now, channel=channel, sections=sections)

    def _repository(
        self,
        session: Session,
        prepared: Prepared,
        facts: SignatureFacts,
        proven: datetime | None,
        steps: Steps,
    ) -> None:
        """The bytes against the repository: a licence with this SHA-256, sealed with the
        certificate recorded at issuance, valid now."""
        assert facts.signer_serial is not None
        licence = licence_by_sha256(session, prepared.digest)
        if licence is None:
            raise steps.fail(
                "repository",
                "no licence in the repository has these bytes",
                Indication.FAILED,
                SubIndication.NOT_IN_REPOSITORY,
            )
        record = full_record(session, licence)
        # Compare with the certificate recorded at issuance, not the seal's current one: a
        # rotated seal has a new certificate, and licences sealed before still verify.
        sealed_with = record.licence.seal_certificate_serial or record.seal.certificate_serial
        if sealed_with != format(facts.signer_serial, "x"):
            raise steps.fail(
                "repository",
                "sealed by another seal than the repository recorded",
                Indication.FAILED,
                SubIndication.NOT_IN_REPOSITORY,
            )
        steps.ok("repository", f"SHA-256 matches licence {licence.identifier}")
        steps.record = record
        steps.timestamp = proven.isoformat() if proven else None
        steps.signing_time = facts.signing_time.isoformat() if facts.signing_time else None
        current = effective_status(licence, china_today(self._clock.now()))
        steps.apply(rules.licence_status(current, current.label))


def _seal_form(facts: SignatureFacts, steps: Steps) -> None:
    """A readable PDF with exactly one seal, a certification seal that forbids changes,
    intact, and nothing but long-term validation data added after it."""
    for verdict in rules.seal_form(facts):
        steps.apply(verdict)
    steps.apply(rules.integrity(facts))
    steps.apply(rules.modifications(facts, qualified=True))


def _seal_evidence(facts: SignatureFacts, prepared: Prepared, steps: Steps) -> datetime | None:
    """The timestamps, the chain to this domain's root and revocation against the proven
    sealing time (from this domain's certificate records); the proven time, if any."""
    for verdict in ltv.timestamp_verdicts(facts):
        steps.apply(verdict)
    proven = ltv.proven_time(facts, prepared.revoked)
    if not facts.trusted:
        raise steps.fail(
            "chain",
            "the seal certificate does not chain to a trusted root",
            Indication.INDETERMINATE,
            SubIndication.NO_CHAIN_FOUND,
        )
    steps.ok(
        "chain",
        "chains to this domain's root"
        + (f", valid when sealed ({proven.isoformat()})" if proven else ""),
    )
    return proven


def anchors_from(roots: list[object], intermediates: list[object]) -> TrustAnchors:
    def der(cert: object) -> bytes:
        return cert.public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined,no-any-return]

    return TrustAnchors(tuple(der(c) for c in roots), tuple(der(c) for c in intermediates))
