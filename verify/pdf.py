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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation.status import SignatureCoverageLevel
from sqlmodel import Session, select

from core.clock import Clock, china_today
from licences.models import LicenceStatus
from licences.repository import LicenceRecord, effective_status, full_record, licence_by_sha256
from trust.models import AuthorityRecord
from verify import ltv
from verify.report import MESSAGES, Check, CheckResult, Indication, Report, SubIndication
from verify.signature import Revocation, SignatureFacts, TrustAnchors, examine
from verify.summary import licence_summary, seal_summary

__all__ = ["CachedAnchors", "PdfVerifier", "Prepared", "TrustAnchors", "anchors_from"]

STATUS_FAILURES = {
    LicenceStatus.REVOKED: SubIndication.REVOKED,
    LicenceStatus.SUSPENDED: SubIndication.SUSPENDED,
    LicenceStatus.SUPERSEDED: SubIndication.SUPERSEDED,
    LicenceStatus.EXPIRED: SubIndication.EXPIRED,
    # 注销 reads as 吊销 to a verifier (the check's detail names which); 作废 after a reissue
    # means a newer version exists, as for an amendment.
    LicenceStatus.CANCELLED: SubIndication.REVOKED,
    LicenceStatus.VOID: SubIndication.SUPERSEDED,
}

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


@dataclass
class _Found:
    record: LicenceRecord | None = None
    signing_time: str | None = None
    timestamp: str | None = None  # the sealing time a trusted timestamp proves
    checks: list[Check] = field(default_factory=list)

    def ok(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, CheckResult.PASSED, detail))

    def fail(self, name: str, detail: str, indication: Indication, sub: SubIndication) -> _Outcome:
        self.checks.append(Check(name, CheckResult.FAILED, detail))
        return _Outcome(indication, sub)


class _Outcome(Exception):
    """Raised inside the pipeline to stop at the first decisive check."""

    def __init__(
        self, indication: Indication, sub: SubIndication, message: str | None = None
    ) -> None:
        self.indication = indication
        self.sub = sub
        self.message = message


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
        found = _Found()
        try:
            if len(data) > self.max_bytes:
                raise found.fail(
                    "format",
                    f"{len(data)} bytes > {self.max_bytes}",
                    Indication.INDETERMINATE,
                    SubIndication.LIMIT_EXCEEDED,
                )
            if b"%PDF-" not in data[:1024]:
                raise found.fail(
                    "format", "no PDF header", Indication.INDETERMINATE, SubIndication.MALFORMED
                )
        except _Outcome as outcome:
            return self._report(found, outcome, channel)
        digest = hashlib.sha256(data).hexdigest()
        stored = ltv.current_copy(session, data, digest)
        if stored is not None:
            # A copy downloaded before `elicence archive refresh` re-timestamped the licence:
            # its bytes are the start of the repository's copy, which is checked instead (the
            # same seal, with later proofs of existence appended).
            found.ok("copy", "an earlier download; checked with the repository's current copy")
            data, digest = stored, hashlib.sha256(stored).hexdigest()
        return Prepared(
            data=data,
            digest=digest,
            anchors=self._anchors(session),
            revoked=ltv.known_revocations(session),
            moment=self._clock.now(),
            checks=tuple(found.checks),
        )

    def decide(
        self, session: Session, prepared: Prepared, facts: SignatureFacts, channel: str
    ) -> Report:
        """The examination's facts against this domain's records: the first failing check
        sets the indication."""
        found = _Found(checks=list(prepared.checks))
        try:
            self._decide(session, prepared, facts, found)
            outcome = None
        except _Outcome as failed:
            outcome = failed
        return self._report(found, outcome, channel)

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
        return Report(
            indication=indication,
            sub_indication=sub,
            message=message or MESSAGES[sub],
            checks=(check,),
            validated_at=self._clock.now(),
            channel=channel,
        )

    def _report(self, found: _Found, outcome: _Outcome | None, channel: str) -> Report:
        if outcome is None:
            indication, sub, message = Indication.PASSED, None, None
        else:
            indication, sub, message = outcome.indication, outcome.sub, outcome.message
        record = found.record
        now = self._clock.now()
        return Report(
            indication=indication,
            sub_indication=sub,
            message=message or MESSAGES[sub],
            checks=tuple(found.checks),
            validated_at=now,
            channel=channel,
            licence=licence_summary(record, china_today(now)) if record else None,
            seal=seal_summary(record, found.signing_time, found.timestamp) if record else None,
        )

    def _decide(
        self, session: Session, prepared: Prepared, facts: SignatureFacts, found: _Found
    ) -> None:
        ok, fail = found.ok, found.fail
        if facts.unreadable is not None:
            raise fail(
                "format",
                f"unreadable: {facts.unreadable}",
                Indication.INDETERMINATE,
                SubIndication.MALFORMED,
            )
        ok("format", "PDF parsed")
        if facts.signatures != 1:
            detail = (
                "no seal"
                if not facts.signatures
                else f"{facts.signatures} signatures; a licence has one seal"
            )
            raise fail(
                "seal_count",
                detail,
                Indication.FAILED,
                SubIndication.NO_SIGNATURE
                if not facts.signatures
                else SubIndication.MODIFIED_AFTER_SEALING,
            )
        ok("seal_count", "exactly one seal")
        docmdp = MDPPerm(facts.docmdp) if facts.docmdp is not None else None
        if docmdp is not MDPPerm.NO_CHANGES:
            raise fail(
                "certification",
                f"DocMDP {docmdp}; P=1 required",
                Indication.FAILED,
                SubIndication.NOT_CERTIFIED,
            )
        ok("certification", "certification seal, DocMDP P=1 (no changes allowed)")
        _integrity(facts, found)
        _modifications(facts, found)
        for verdict in ltv.timestamp_verdicts(facts):
            found.checks.append(verdict.check)
            if verdict.failure is not None:
                raise _Outcome(*verdict.failure)
        proven = ltv.proven_time(facts, prepared.revoked)
        if not facts.trusted:
            raise fail(
                "chain",
                "the seal certificate does not chain to a trusted root",
                Indication.INDETERMINATE,
                SubIndication.NO_CHAIN_FOUND,
            )
        ok(
            "chain",
            "chains to this domain's root"
            + (f", valid when sealed ({proven.isoformat()})" if proven else ""),
        )
        assert facts.signer_serial is not None  # set whenever validation ran
        revocation = ltv.revocation_verdict(session, facts.signer_serial, proven)
        found.checks.append(revocation.check)
        if revocation.failure is not None:
            raise _Outcome(*revocation.failure)
        licence = licence_by_sha256(session, prepared.digest)
        if licence is None:
            raise fail(
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
            raise fail(
                "repository",
                "sealed by another seal than the repository recorded",
                Indication.FAILED,
                SubIndication.NOT_IN_REPOSITORY,
            )
        ok("repository", f"SHA-256 matches licence {licence.identifier}")
        found.record = record
        found.timestamp = proven.isoformat() if proven else None
        found.signing_time = facts.signing_time.isoformat() if facts.signing_time else None
        current = effective_status(licence, china_today(self._clock.now()))
        if current is not LicenceStatus.VALID:
            found.checks.append(Check("status", CheckResult.FAILED, current.label))
            raise _Outcome(Indication.FAILED, STATUS_FAILURES[current])
        ok("status", current.label)


def _integrity(facts: SignatureFacts, found: _Found) -> None:
    if facts.error is not None:
        raise found.fail(
            "integrity",
            f"validation error: {facts.error}",
            Indication.INDETERMINATE,
            SubIndication.MALFORMED,
        )
    if not facts.intact:
        raise found.fail(
            "integrity",
            "signed bytes do not match the seal's digest",
            Indication.FAILED,
            SubIndication.HASH_FAILURE,
        )
    if not facts.valid:
        raise found.fail(
            "integrity",
            "the seal's signature does not verify",
            Indication.FAILED,
            SubIndication.SIG_CRYPTO_FAILURE,
        )
    found.ok("integrity", "seal signature intact and valid")


def _modifications(facts: SignatureFacts, found: _Found) -> None:
    coverage = SignatureCoverageLevel[facts.coverage] if facts.coverage else None
    level = ModificationLevel[facts.modification] if facts.modification else None
    if coverage is SignatureCoverageLevel.ENTIRE_FILE:
        found.ok("modifications", "the seal covers the whole file")
    elif (
        coverage is SignatureCoverageLevel.ENTIRE_REVISION
        and facts.docmdp_ok
        and level in (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES)
    ):
        found.ok("modifications", "only long-term validation data was added after sealing")
    else:
        raise found.fail(
            "modifications",
            f"coverage {coverage}, changes {level}",
            Indication.FAILED,
            SubIndication.MODIFIED_AFTER_SEALING,
        )


def anchors_from(roots: list[object], intermediates: list[object]) -> TrustAnchors:
    def der(cert: object) -> bytes:
        return cert.public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined,no-any-return]

    return TrustAnchors(tuple(der(c) for c in roots), tuple(der(c) for c in intermediates))
