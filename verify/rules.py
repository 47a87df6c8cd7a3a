"""The rules of seal verification, written once, as pure functions of the examination's facts.

Both the local verifier (``verify.pdf`` with ``verify.ltv``) and the verifier of recognised
domains (``verify.foreign``) decide integrity, modifications after sealing, the sealing
timestamp, revocation against the proven sealing time and the licence status with these
functions; they differ only in the evidence they feed in (this domain's certificate records or
the issuing domain's OCSP answers, this domain's TSA or the issuing domain's) and the words
that name it. Each rule returns a :class:`~verify.steps.Verdict`: one named check and, when
the rule fails, the ETSI indication and sub-indication that end the verification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pyhanko.sign.fields import MDPPerm

from licences.models import LicenceStatus
from trust.tsa import ACCURACY
from verify.report import MESSAGES, Check, CheckResult, Indication, SubIndication
from verify.steps import Verdict

if TYPE_CHECKING:
    from verify.signature import ArchiveFacts, SignatureFacts, TimestampFacts

# The sub-indication of a licence that is not valid now.
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

# Changes after the certification seal that leave it standing: none, or only long-term
# validation data (DSS and document timestamps, pyHanko's LTA_UPDATES with DocMDP intact).
_LTA_ONLY = ("NONE", "LTA_UPDATES")


def _passed(name: str, detail: str) -> Verdict:
    return Verdict(Check(name, CheckResult.PASSED, detail))


def _failed(
    name: str, detail: str, indication: Indication, sub: SubIndication, message: str | None = None
) -> Verdict:
    return Verdict(Check(name, CheckResult.FAILED, detail), (indication, sub, message))


def seal_form(facts: SignatureFacts) -> list[Verdict]:
    """The ``format``, ``seal_count`` and ``certification`` checks, up to the first failure: a
    readable PDF with exactly one seal, a certification seal that forbids changes (DocMDP
    P=1). A second signature is MODIFIED_AFTER_SEALING: a licence has one seal."""
    if facts.unreadable is not None:
        return [
            _failed(
                "format",
                f"unreadable: {facts.unreadable}",
                Indication.INDETERMINATE,
                SubIndication.MALFORMED,
            )
        ]
    verdicts = [_passed("format", "PDF parsed")]
    if facts.signatures != 1:
        none = not facts.signatures
        verdicts.append(
            _failed(
                "seal_count",
                "no seal" if none else f"{facts.signatures} signatures; a licence has one seal",
                Indication.FAILED,
                SubIndication.NO_SIGNATURE if none else SubIndication.MODIFIED_AFTER_SEALING,
            )
        )
        return verdicts
    verdicts.append(_passed("seal_count", "exactly one seal"))
    docmdp = MDPPerm(facts.docmdp) if facts.docmdp is not None else None
    if docmdp is not MDPPerm.NO_CHANGES:
        verdicts.append(
            _failed(
                "certification",
                f"DocMDP {docmdp}; P=1 required",
                Indication.FAILED,
                SubIndication.NOT_CERTIFIED,
            )
        )
        return verdicts
    verdicts.append(_passed("certification", "certification seal, DocMDP P=1 (no changes allowed)"))
    return verdicts


def integrity(facts: SignatureFacts) -> Verdict:
    """The seal's signature over the bytes it covers: validation that raised is MALFORMED,
    altered bytes HASH_FAILURE, a signature that does not verify SIG_CRYPTO_FAILURE."""
    if facts.error is not None:
        return _failed(
            "integrity",
            f"validation error: {facts.error}",
            Indication.INDETERMINATE,
            SubIndication.MALFORMED,
        )
    if not facts.intact:
        return _failed(
            "integrity",
            "signed bytes do not match the seal's digest",
            Indication.FAILED,
            SubIndication.HASH_FAILURE,
        )
    if not facts.valid:
        return _failed(
            "integrity",
            "the seal's signature does not verify",
            Indication.FAILED,
            SubIndication.SIG_CRYPTO_FAILURE,
        )
    return _passed("integrity", "seal signature intact and valid")


def modifications(facts: SignatureFacts, *, qualified: bool = False) -> Verdict:
    """What was added after the seal: nothing (it covers the whole file), or only long-term
    validation data with DocMDP intact; anything else is MODIFIED_AFTER_SEALING.

    ``qualified`` names the levels in the failure's detail as pyHanko's enums
    ("SignatureCoverageLevel.ENTIRE_REVISION"), as the local report always has; the foreign
    report names them bare."""
    coverage, level = facts.coverage, facts.modification
    if coverage == "ENTIRE_FILE":
        return _passed("modifications", "the seal covers the whole file")
    if coverage == "ENTIRE_REVISION" and facts.docmdp_ok and level in _LTA_ONLY:
        return _passed("modifications", "only long-term validation data was added after sealing")
    if qualified:
        coverage = f"SignatureCoverageLevel.{coverage}" if coverage else None
        level = f"ModificationLevel.{level}" if level else None
    return _failed(
        "modifications",
        f"coverage {coverage}, changes {level}",
        Indication.FAILED,
        SubIndication.MODIFIED_AFTER_SEALING,
    )


def broken_archive(archive: ArchiveFacts) -> Verdict | None:
    """A document timestamp whose digest or signature fails: the file was altered."""
    if not archive.broken:
        return None
    return _failed(
        "archive",
        f"{archive.broken} does not verify",
        Indication.FAILED,
        SubIndication.HASH_FAILURE,
    )


def sealing_timestamp(
    token: TimestampFacts | None, *, trusted: bool, whose: str, proof: str
) -> Verdict:
    """The seal's own timestamp: none is a skipped check (the time is only self-reported), a
    broken one HASH_FAILURE, one not made by the deciding domain's TSA (``trusted``, ``whose``
    TSA) NO_POE. ``proof`` names the evidence in the passed check."""
    if token is None:
        return Verdict(
            Check(
                "timestamp",
                CheckResult.SKIPPED,
                "no timestamp: the sealing time is only self-reported",
            )
        )
    if not (token.intact and token.valid):
        return _failed(
            "timestamp",
            "the seal's timestamp token is broken",
            Indication.FAILED,
            SubIndication.HASH_FAILURE,
        )
    if not trusted:
        return _failed(
            "timestamp",
            f"the seal's timestamp is not from {whose} TSA, or cannot be proven now",
            Indication.INDETERMINATE,
            SubIndication.NO_POE,
        )
    return _passed(
        "timestamp", f"sealed at {token.time.isoformat()} ({proof}, {token.signer_subject})"
    )


def revoked_after_sealing(revoked_at: datetime, proven: datetime | None) -> bool:
    """Whether a revocation (or hold) came after the proven sealing time, beyond the
    timestamp's accuracy: then the seal stands. Without a proven time it never did."""
    return proven is not None and proven + ACCURACY < revoked_at


@dataclass(frozen=True)
class Revoked:
    """A certificate of the seal's chain that the evidence says is revoked or on hold."""

    line: str  # who, what since when, and why, as the check names it
    at: datetime
    message: str  # the report's message when it voids the seal


def revocation(
    name: str,
    evidence: Sequence[Revoked | Verdict],
    proven: datetime | None,
    *,
    note: str,
    passed: str,
) -> Verdict:
    """The seal certificate and its CAs against the proven sealing time, in chain order.

    A ``Revoked`` entry after that time adds a note (``note`` ends it) and the seal stands;
    before it, or with no proof of when the seal was made, it fails with REVOKED. A ``Verdict``
    entry is a failure the evidence itself gave (a certificate unknown to its responder).
    ``passed`` is the detail when nothing was revoked."""
    notes = []
    for entry in evidence:
        if isinstance(entry, Verdict):
            return entry
        if revoked_after_sealing(entry.at, proven):
            assert proven is not None
            notes.append(f"{entry.line}; sealed at {proven.isoformat()}, before that{note}")
            continue
        when = f"sealed at {proven.isoformat()}" if proven else "no proof of when it was sealed"
        return _failed(
            name,
            f"{entry.line}; {when}",
            Indication.FAILED,
            SubIndication.REVOKED,
            entry.message,
        )
    return _passed(name, "; ".join(notes) or passed)


def licence_status(status: LicenceStatus, detail: str) -> Verdict:
    """The licence's status now: anything but valid fails with its sub-indication, worded as
    the licence's (an expired licence, not an expired code)."""
    if status is LicenceStatus.VALID:
        return _passed("status", detail)
    sub = STATUS_FAILURES[status]
    return _failed("status", detail, Indication.FAILED, sub, MESSAGES[sub])
