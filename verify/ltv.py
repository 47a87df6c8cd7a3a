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
from datetime import datetime

from sqlmodel import Session, col, select

from core.db import as_utc
from licences.digests import SupersededDigest
from licences.models import LicenceDocument
from trust.models import CertificateRecord
from trust.tsa import ACCURACY
from verify import rules
from verify.report import Check, CheckResult
from verify.signature import Revocation, SignatureFacts, revoked_before
from verify.steps import Verdict

_HOLD = "印章证书已暂停使用 / the seal's certificate is on hold (suspended)"
_REVOKED = "印章证书已吊销 / the seal's certificate was revoked"

# A timestamp token's accuracy (trust.tsa): a revocation within it of the token's time counts
# as before it.
TOLERANCE = ACCURACY


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
    broken = rules.broken_archive(facts.archive)
    if broken is not None:
        return [broken]
    verdicts = []
    archive = facts.archive
    if archive.count:
        result = CheckResult.PASSED if archive.proof_time else CheckResult.SKIPPED
        verdicts.append(Verdict(Check("archive", result, archive.detail)))
    token = facts.timestamp
    verdicts.append(
        rules.sealing_timestamp(
            token,
            trusted=token is not None and token.trusted,
            whose="this domain's",
            proof="RFC 3161 timestamp",
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
    evidence = []
    for record in chain:
        if record.status == "good" or record.revoked_at is None:
            continue
        revoked_at = as_utc(record.revoked_at)
        held = record.status == "hold"
        line = (
            f"{record.subject} {'on hold' if held else 'revoked'} since {revoked_at.isoformat()} "
            f"({record.revocation_reason})"
        )
        evidence.append(rules.Revoked(line, revoked_at, _HOLD if held else _REVOKED))
    return rules.revocation(
        "revocation",
        evidence,
        proven,
        note=", as timestamped",
        passed="seal certificate and its CA are not revoked",
    )
