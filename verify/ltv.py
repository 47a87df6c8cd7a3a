"""Long-term validation of a seal, decided against this domain's records.

A licence outlives its seal certificate (3 years), the issuing CA and even the TSA certificate.
What keeps it verifiable is a chain of proofs of existence (ETSI EN 319 102-1 § 5.6), which
``verify.signature`` checks in the worker: the newest document timestamp *now*, each older one
at the time of the next, the seal's own timestamp at the time of the oldest, and the seal
certificate chain *at the proven sealing time* with the revocation data embedded in the
document (DSS), so no network is needed.

This module supplies what that examination needs from the database (this domain's revoked and
held certificates) and decides from its facts: revocation is decided from this domain's own
certificate records, which are fresher than any embedded or published response. A seal
certificate revoked (or held) *after* the proven sealing time leaves the licence valid, with a
note; one revoked before, or with no proof of when the seal was made, fails with REVOKED.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core.db import as_utc
from licences.digests import SupersededDigest
from licences.models import LicenceDocument
from trust.models import CertificateRecord
from trust.tsa import ACCURACY
from verify.report import Check, CheckResult, Indication, SubIndication
from verify.signature import Revocation, SignatureFacts, revoked_before

_HOLD = "印章证书已暂停使用 / the seal's certificate is on hold (suspended)"
_REVOKED = "印章证书已吊销 / the seal's certificate was revoked"

# A timestamp token's accuracy (trust.tsa): a revocation within it of the token's time counts
# as before it.
TOLERANCE = ACCURACY


@dataclass(frozen=True)
class Verdict:
    check: Check
    failure: tuple[Indication, SubIndication, str | None] | None = None


def current_copy(session: Session, data: bytes, digest: str | None = None) -> bytes | None:
    """The repository's current PDF when ``data`` is an earlier download of it (its digest
    was superseded by an archive timestamp, and it is a prefix of the current bytes)."""
    earlier = session.get(SupersededDigest, digest or hashlib.sha256(data).hexdigest())
    if earlier is None:
        return None
    document = session.get(LicenceDocument, earlier.identifier)
    if document is None or not document.pdf.startswith(data):
        return None
    return document.pdf


def known_revocations(session: Session) -> tuple[Revocation, ...]:
    """Every certificate this domain has revoked or holds, as plain values for the worker: a
    document timestamp made with one of them at or after its revocation proves nothing. Read
    per upload (a few rows), so a revocation counts from the next verification on."""
    rows = session.exec(
        select(
            CertificateRecord.serial,
            CertificateRecord.revoked_at,
            CertificateRecord.revocation_reason,
        ).where(CertificateRecord.status != "good", col(CertificateRecord.revoked_at).is_not(None))
    )
    return tuple(
        Revocation(int(serial, 16), as_utc(at), reason) for serial, at, reason in rows if at
    )


def timestamp_verdicts(facts: SignatureFacts) -> list[Verdict]:
    """The ``archive`` and ``timestamp`` checks, in that order."""
    verdicts = []
    archive = facts.archive
    if archive.broken:
        return [
            Verdict(
                Check("archive", CheckResult.FAILED, f"{archive.broken} does not verify"),
                (Indication.FAILED, SubIndication.HASH_FAILURE, None),
            )
        ]
    if archive.count:
        result = CheckResult.PASSED if archive.proof_time else CheckResult.SKIPPED
        verdicts.append(Verdict(Check("archive", result, archive.detail)))
    token = facts.timestamp
    if token is None:
        verdicts.append(
            Verdict(
                Check(
                    "timestamp",
                    CheckResult.SKIPPED,
                    "no timestamp: the sealing time is only self-reported",
                )
            )
        )
        return verdicts
    if not (token.intact and token.valid):
        verdicts.append(
            Verdict(
                Check("timestamp", CheckResult.FAILED, "the seal's timestamp token is broken"),
                (Indication.FAILED, SubIndication.HASH_FAILURE, None),
            )
        )
    elif not token.trusted:
        verdicts.append(
            Verdict(
                Check(
                    "timestamp",
                    CheckResult.FAILED,
                    "the seal's timestamp is not from this domain's TSA, or cannot be proven now",
                ),
                (Indication.INDETERMINATE, SubIndication.NO_POE, None),
            )
        )
    else:
        verdicts.append(
            Verdict(
                Check(
                    "timestamp",
                    CheckResult.PASSED,
                    f"sealed at {token.time.isoformat()} (RFC 3161 timestamp, "
                    f"{token.signer_subject})",
                )
            )
        )
    return verdicts


def proven_time(facts: SignatureFacts, revoked: tuple[Revocation, ...]) -> datetime | None:
    """The sealing time a trusted timestamp proves, unless its TSA certificate was revoked
    by then (``revoked``: the same records the worker was given); None without one."""
    token = facts.timestamp
    if token is None or not (token.intact and token.valid and token.trusted):
        return None
    revocation = next((r for r in revoked if r.serial == token.signer_serial), None)
    if revoked_before(revocation, token.time, TOLERANCE):
        return None
    return token.time


def revocation_verdict(session: Session, signer_serial: int, proven: datetime | None) -> Verdict:
    """The seal certificate's and its CA's status in this domain's records, against the proven
    sealing time."""
    seal_record = session.get(CertificateRecord, format(signer_serial, "x"))
    if seal_record is None:
        return Verdict(
            Check("revocation", CheckResult.SKIPPED, "certificate not in this domain's records")
        )
    chain = [seal_record]
    issuer = session.get(CertificateRecord, seal_record.issuer_serial or "")
    if issuer is not None and issuer.issuer_serial is not None:
        chain.append(issuer)
    notes = []
    for record in chain:
        if record.status == "good" or record.revoked_at is None:
            continue
        revoked_at = as_utc(record.revoked_at)
        what = "on hold" if record.status == "hold" else "revoked"
        line = (
            f"{record.subject} {what} since {revoked_at.isoformat()} ({record.revocation_reason})"
        )
        if proven is not None and proven + ACCURACY < revoked_at:
            notes.append(f"{line}; sealed at {proven.isoformat()}, before that, as timestamped")
            continue
        when = f"sealed at {proven.isoformat()}" if proven else "no proof of when it was sealed"
        message = _HOLD if record.status == "hold" else _REVOKED
        return Verdict(
            Check("revocation", CheckResult.FAILED, f"{line}; {when}"),
            (Indication.FAILED, SubIndication.REVOKED, message),
        )
    if notes:
        return Verdict(Check("revocation", CheckResult.PASSED, "; ".join(notes)))
    return Verdict(
        Check("revocation", CheckResult.PASSED, "seal certificate and its CA are not revoked")
    )
