"""What long-term validation reads from this domain's records (verify/ltv.py): an earlier
download's current copy, the revoked and held certificates handed to the worker, and the
archive and timestamp verdicts on their own. The decision over them is in
test_verify_decision.py."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from licences.digests import SupersededDigest
from licences.models import LicenceDocument
from tests.security.support import NOW
from tests.security.verify_support import IDENTIFIER, SEALED, certificate, engine, facts, token
from verify import ltv
from verify.report import Check, CheckResult, Indication, SubIndication
from verify.signature import ArchiveFacts, Revocation

EARLIER = b"%PDF-1.7 sealed"
CURRENT = EARLIER + b" + document timestamp"


def copies(document: bytes | None, superseded: bytes = EARLIER) -> Session:
    session = Session(engine())
    if document is not None:
        session.add(LicenceDocument(identifier=IDENTIFIER, pdf=document))
    session.add(SupersededDigest(sha256=hashlib.sha256(superseded).hexdigest(),
                                 identifier=IDENTIFIER, superseded_at=NOW))
    session.commit()
    return session


def test_an_earlier_download_maps_to_the_current_copy() -> None:
    with copies(CURRENT) as session:
        assert ltv.current_copy(session, EARLIER) == CURRENT
        assert ltv.current_copy(session, EARLIER, hashlib.sha256(EARLIER).hexdigest()) == CURRENT
        assert ltv.current_copy(session, EARLIER, "00" * 32) is None
        assert ltv.current_copy(session, CURRENT) is None


def test_a_superseded_digest_whose_bytes_are_not_a_prefix_is_not_a_copy() -> None:
    with copies(b"%PDF-1.7 another document") as session:
        assert ltv.current_copy(session, EARLIER) is None


def test_a_superseded_digest_without_a_document_is_not_a_copy() -> None:
    with copies(None) as session:
        assert ltv.current_copy(session, EARLIER) is None


def test_known_revocations_are_the_revoked_and_held_certificates() -> None:
    db = engine(licence=False)
    at = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    with Session(db) as session:
        certificate(session, 0xA1, issuer=None, subject="a", status="revoked", revoked_at=at,
                    reason="keyCompromise")
        certificate(session, 0xB2, issuer=None, subject="b", status="hold",
                    revoked_at=at + timedelta(days=1), reason="certificateHold")
        certificate(session, 0xC3, issuer=None, subject="c")
        certificate(session, 0xD4, issuer=None, subject="d", status="good", revoked_at=at)
        certificate(session, 0xE5, issuer=None, subject="e", status="revoked")
        found = ltv.known_revocations(session)
    assert sorted(found, key=lambda r: r.serial) == [
        Revocation(0xA1, at, "keyCompromise"),
        Revocation(0xB2, at + timedelta(days=1), "certificateHold"),
    ]
    assert all(r.since.tzinfo is UTC for r in found)


def test_no_archive_and_a_good_token() -> None:
    verdicts = ltv.timestamp_verdicts(facts())
    assert verdicts == [ltv.Verdict(Check(
        "timestamp", CheckResult.PASSED,
        "sealed at 2025-06-01T04:00:00+00:00 (RFC 3161 timestamp, Common Name: 测试时间戳 Test TSA)"))]


def test_a_broken_archive_is_the_only_verdict() -> None:
    verdicts = ltv.timestamp_verdicts(facts(archive=ArchiveFacts(3, "document timestamp X", None, "")))
    assert verdicts == [ltv.Verdict(
        Check("archive", CheckResult.FAILED, "document timestamp X does not verify"),
        (Indication.FAILED, SubIndication.HASH_FAILURE, None))]


@pytest.mark.parametrize(("archive", "expected"), [
    (ArchiveFacts(1, None, SEALED, "held"), [Check("archive", CheckResult.PASSED, "held")]),
    (ArchiveFacts(1, None, None, "cut"), [Check("archive", CheckResult.SKIPPED, "cut")]),
    (ArchiveFacts(0, None, None, "none"), []),
])
def test_the_archive_verdict_comes_first(archive: ArchiveFacts, expected: list[Check]) -> None:
    verdicts = ltv.timestamp_verdicts(facts(archive=archive, timestamp=None))
    assert [v.check for v in verdicts] == [*expected, Check(
        "timestamp", CheckResult.SKIPPED, "no timestamp: the sealing time is only self-reported")]
    assert [v.failure for v in verdicts] == [None] * (len(expected) + 1)


def test_token_failures() -> None:
    broken = ltv.timestamp_verdicts(facts(timestamp=token(intact=False, trusted=False)))
    assert broken == [ltv.Verdict(
        Check("timestamp", CheckResult.FAILED, "the seal's timestamp token is broken"),
        (Indication.FAILED, SubIndication.HASH_FAILURE, None))]
    untrusted = ltv.timestamp_verdicts(facts(timestamp=token(trusted=False)))
    assert untrusted == [ltv.Verdict(
        Check("timestamp", CheckResult.FAILED,
              "the seal's timestamp is not from this domain's TSA, or cannot be proven now"),
        (Indication.INDETERMINATE, SubIndication.NO_POE, None))]


def test_proven_time_ignores_other_certificates_revocations() -> None:
    other = (Revocation(0x1, SEALED - timedelta(days=1)),)
    assert ltv.proven_time(facts(), other) == SEALED
    assert ltv.TOLERANCE == timedelta(seconds=1)


def test_the_revocation_verdict_without_records() -> None:
    with Session(engine(licence=False)) as session:
        assert ltv.revocation_verdict(session, 0x4242, SEALED) == ltv.Verdict(
            Check("revocation", CheckResult.SKIPPED, "certificate not in this domain's records"))
