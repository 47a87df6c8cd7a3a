"""The decision on an uploaded licence PDF (verify/pdf.py, with verify/ltv.py's verdicts), over
synthesised examination facts: no PDF is parsed. Every check in order — format, one seal,
certification P=1, intact and valid, coverage and modifications, the archive timestamps, the
seal's timestamp, the chain at the proven time, revocation at the proven time, the repository's
record, the licence status — with the exact indication, sub-indication, message and the check
rows written out here. The first failing check ends the decision: the rows after it are absent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from tests.security.support import NOW
from tests.security.verify_support import (
    IDENTIFIER,
    SEAL_SERIAL,
    SEALED,
    TSA_SERIAL,
    certificate,
    decide,
    engine,
    facts,
    rows,
    token,
)
from verify.report import Indication, SubIndication
from verify.signature import ArchiveFacts, Revocation

SEALED_ISO = "2025-06-01T04:00:00+00:00"
FORMAT = ("format", "passed", "PDF parsed")
COUNT = ("seal_count", "passed", "exactly one seal")
CERTIFIED = ("certification", "passed", "certification seal, DocMDP P=1 (no changes allowed)")
INTEGRITY = ("integrity", "passed", "seal signature intact and valid")
WHOLE = ("modifications", "passed", "the seal covers the whole file")
LTV_ONLY = ("modifications", "passed", "only long-term validation data was added after sealing")
TIMESTAMP = ("timestamp", "passed",
             f"sealed at {SEALED_ISO} (RFC 3161 timestamp, Common Name: 测试时间戳 Test TSA)")
NO_TIMESTAMP = ("timestamp", "skipped", "no timestamp: the sealing time is only self-reported")
CHAIN = ("chain", "passed", f"chains to this domain's root, valid when sealed ({SEALED_ISO})")
CHAIN_UNPROVEN = ("chain", "passed", "chains to this domain's root")
UNKNOWN = ("revocation", "skipped", "certificate not in this domain's records")
NOT_REVOKED = ("revocation", "passed", "seal certificate and its CA are not revoked")
REPOSITORY = ("repository", "passed", f"SHA-256 matches licence {IDENTIFIER}")
VALID = ("status", "passed", "有效 / valid")
UP_TO_INTEGRITY = [FORMAT, COUNT, CERTIFIED]
UP_TO_TIMESTAMPS = [FORMAT, COUNT, CERTIFIED, INTEGRITY, WHOLE]
ALL_PASSED = [*UP_TO_TIMESTAMPS, TIMESTAMP, CHAIN, UNKNOWN, REPOSITORY, VALID]

GENUINE = "证照真实有效 / the licence is genuine and valid"


def test_every_check_passes_in_order() -> None:
    report = decide(engine(), facts())
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.PASSED, None, GENUINE)
    assert rows(report) == ALL_PASSED
    assert (report.validated_at, report.channel) == (NOW, "upload")
    assert report.licence is not None and report.seal is not None
    assert (report.licence.identifier, report.licence.status, report.licence.status_label) == (
        IDENTIFIER, "valid", "有效 / valid")
    assert (report.licence.valid_until, report.licence.holder_name) == ("2028-05-31", "测试公司")
    assert (report.seal.seal_code, report.seal.certificate_serial) == ("S1", "4abc")
    assert (report.seal.signing_time, report.seal.timestamp) == (
        "2025-06-01T03:59:00+00:00", SEALED_ISO)


FAILURES: list[tuple[str, dict[str, Any], list[tuple[str, str, str]], Indication, SubIndication,
                     str]] = [
    ("unreadable", {"unreadable": "PdfReadError"},
     [("format", "failed", "unreadable: PdfReadError")],
     Indication.INDETERMINATE, SubIndication.MALFORMED,
     "无法读取该文件 / the file cannot be read as a PDF"),
    ("no seal", {"signatures": 0},
     [FORMAT, ("seal_count", "failed", "no seal")],
     Indication.FAILED, SubIndication.NO_SIGNATURE, "文件没有电子印章 / the file carries no electronic seal"),
    ("two signatures", {"signatures": 2},
     [FORMAT, ("seal_count", "failed", "2 signatures; a licence has one seal")],
     Indication.FAILED, SubIndication.MODIFIED_AFTER_SEALING,
     "盖章后文件被追加修改 / content was added after sealing"),
    ("not certified", {"docmdp": 2},
     [FORMAT, COUNT, ("certification", "failed", "DocMDP MDPPerm.FILL_FORMS; P=1 required")],
     Indication.FAILED, SubIndication.NOT_CERTIFIED,
     "印章不是禁止修改的证照专用签章 / the seal does not lock the document"),
    ("validation raised", {"error": "ValueError", "intact": False, "valid": False},
     [*UP_TO_INTEGRITY, ("integrity", "failed", "validation error: ValueError")],
     Indication.INDETERMINATE, SubIndication.MALFORMED,
     "无法读取该文件 / the file cannot be read as a PDF"),
    ("digest mismatch", {"intact": False},
     [*UP_TO_INTEGRITY, ("integrity", "failed", "signed bytes do not match the seal's digest")],
     Indication.FAILED, SubIndication.HASH_FAILURE,
     "文件在盖章后被改动 / the file was changed after it was sealed"),
    ("bad signature", {"valid": False},
     [*UP_TO_INTEGRITY, ("integrity", "failed", "the seal's signature does not verify")],
     Indication.FAILED, SubIndication.SIG_CRYPTO_FAILURE,
     "印章签名无效 / the seal's signature is invalid"),
    ("broken archive", {"archive": ArchiveFacts(2, "document timestamp DocTS1", None, "")},
     [*UP_TO_TIMESTAMPS, ("archive", "failed", "document timestamp DocTS1 does not verify")],
     Indication.FAILED, SubIndication.HASH_FAILURE,
     "文件在盖章后被改动 / the file was changed after it was sealed"),
    ("broken token", {"timestamp": token(intact=False)},
     [*UP_TO_TIMESTAMPS, ("timestamp", "failed", "the seal's timestamp token is broken")],
     Indication.FAILED, SubIndication.HASH_FAILURE,
     "文件在盖章后被改动 / the file was changed after it was sealed"),
    ("invalid token", {"timestamp": token(valid=False)},
     [*UP_TO_TIMESTAMPS, ("timestamp", "failed", "the seal's timestamp token is broken")],
     Indication.FAILED, SubIndication.HASH_FAILURE,
     "文件在盖章后被改动 / the file was changed after it was sealed"),
    ("untrusted token", {"timestamp": token(trusted=False)},
     [*UP_TO_TIMESTAMPS, ("timestamp", "failed",
                          "the seal's timestamp is not from this domain's TSA, or cannot be proven now")],
     Indication.INDETERMINATE, SubIndication.NO_POE,
     "无法证明盖章时间 / the time of sealing cannot be proven"),
    ("untrusted chain", {"trusted": False},
     [*UP_TO_TIMESTAMPS, TIMESTAMP,
      ("chain", "failed", "the seal certificate does not chain to a trusted root")],
     Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND,
     "印章证书不属于本信任域 / the seal is not from a recognised trust domain"),
    ("another seal", {"signer_serial": 0x4ABD},
     [*UP_TO_TIMESTAMPS, TIMESTAMP, CHAIN, UNKNOWN,
      ("repository", "failed", "sealed by another seal than the repository recorded")],
     Indication.FAILED, SubIndication.NOT_IN_REPOSITORY,
     "证照库中没有这份文件 / this file is not in the licence repository"),
]


@pytest.mark.parametrize(("changes", "expected", "indication", "sub", "message"),
                         [case[1:] for case in FAILURES], ids=[case[0] for case in FAILURES])
def test_the_first_failing_check_decides(
    changes: dict[str, Any], expected: list[tuple[str, str, str]], indication: Indication,
    sub: SubIndication, message: str,
) -> None:
    report = decide(engine(), facts(**changes))
    assert (report.indication, report.sub_indication, report.message) == (indication, sub, message)
    assert rows(report) == expected
    assert report.licence is None and report.seal is None
    assert (report.validated_at, report.channel) == (NOW, "upload")


@pytest.mark.parametrize(("coverage", "modification", "docmdp_ok", "expected"), [
    ("ENTIRE_FILE", None, None, WHOLE),
    ("ENTIRE_FILE", "FORM_FILLING", False, WHOLE),
    ("ENTIRE_REVISION", "NONE", True, LTV_ONLY),
    ("ENTIRE_REVISION", "LTA_UPDATES", True, LTV_ONLY),
])
def test_coverage_that_passes(
    coverage: str, modification: str | None, docmdp_ok: bool | None, expected: tuple[str, ...]
) -> None:
    found = facts(coverage=coverage, modification=modification, docmdp_ok=docmdp_ok)
    report = decide(engine(), found)
    assert report.indication is Indication.PASSED
    assert rows(report)[4] == expected


@pytest.mark.parametrize(("coverage", "modification", "docmdp_ok", "detail"), [
    ("ENTIRE_REVISION", "NONE", False,
     "coverage SignatureCoverageLevel.ENTIRE_REVISION, changes ModificationLevel.NONE"),
    ("ENTIRE_REVISION", "LTA_UPDATES", None,
     "coverage SignatureCoverageLevel.ENTIRE_REVISION, changes ModificationLevel.LTA_UPDATES"),
    ("ENTIRE_REVISION", "FORM_FILLING", True,
     "coverage SignatureCoverageLevel.ENTIRE_REVISION, changes ModificationLevel.FORM_FILLING"),
    ("ENTIRE_REVISION", "ANNOTATIONS", True,
     "coverage SignatureCoverageLevel.ENTIRE_REVISION, changes ModificationLevel.ANNOTATIONS"),
    ("ENTIRE_REVISION", None, True, "coverage SignatureCoverageLevel.ENTIRE_REVISION, changes None"),
    ("CONTIGUOUS_BLOCK_FROM_START", "NONE", True,
     "coverage SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START, changes ModificationLevel.NONE"),
    (None, "NONE", True, "coverage None, changes ModificationLevel.NONE"),
    (None, None, None, "coverage None, changes None"),
])
def test_coverage_that_fails(
    coverage: str | None, modification: str | None, docmdp_ok: bool | None, detail: str
) -> None:
    found = facts(coverage=coverage, modification=modification, docmdp_ok=docmdp_ok)
    report = decide(engine(), found)
    assert (report.indication, report.sub_indication) == (
        Indication.FAILED, SubIndication.MODIFIED_AFTER_SEALING)
    assert rows(report) == [*UP_TO_INTEGRITY, INTEGRITY, ("modifications", "failed", detail)]


def test_an_archive_chain_that_holds_passes_before_the_timestamp() -> None:
    archive = ArchiveFacts(2, None, SEALED, "2 document timestamp(s); proof")
    report = decide(engine(), facts(archive=archive))
    assert report.indication is Indication.PASSED
    assert rows(report) == [*UP_TO_TIMESTAMPS, ("archive", "passed", "2 document timestamp(s); proof"),
                            TIMESTAMP, CHAIN, UNKNOWN, REPOSITORY, VALID]


def test_a_cut_archive_chain_is_skipped_not_failed() -> None:
    archive = ArchiveFacts(1, None, None, "document timestamp cut")
    report = decide(engine(), facts(archive=archive))
    assert report.indication is Indication.PASSED
    assert rows(report)[5] == ("archive", "skipped", "document timestamp cut")


def test_no_timestamp_leaves_the_sealing_time_unproven() -> None:
    report = decide(engine(), facts(timestamp=None))
    assert report.indication is Indication.PASSED
    assert rows(report) == [*UP_TO_TIMESTAMPS, NO_TIMESTAMP, CHAIN_UNPROVEN, UNKNOWN, REPOSITORY,
                            VALID]
    assert report.seal is not None and report.seal.timestamp is None


def test_no_signing_time_is_reported_as_none() -> None:
    report = decide(engine(), facts(signing_time=None))
    assert report.seal is not None and report.seal.signing_time is None


def tsa_revoked(since: datetime) -> tuple[Revocation, ...]:
    return (Revocation(TSA_SERIAL, since, "keyCompromise"), Revocation(1, SEALED - timedelta(days=9)))


@pytest.mark.parametrize(("since", "proven"), [
    (SEALED - timedelta(days=1), False),
    (SEALED, False),
    (SEALED + timedelta(seconds=1), False),  # within the token's accuracy
    (SEALED + timedelta(seconds=1, microseconds=1), True),
    (SEALED + timedelta(days=1), True),
], ids=["before", "at", "within-accuracy", "just-after", "after"])
def test_a_tsa_revoked_by_the_sealing_time_proves_nothing(since: datetime, proven: bool) -> None:
    report = decide(engine(), facts(), revoked=tsa_revoked(since))
    assert report.indication is Indication.PASSED
    assert rows(report)[6] == (CHAIN if proven else CHAIN_UNPROVEN)
    assert report.seal is not None
    assert report.seal.timestamp == (SEALED_ISO if proven else None)


@pytest.mark.parametrize("changes", [{"intact": False}, {"valid": False}, {"trusted": False}])
def test_only_a_good_token_proves_the_time(changes: dict[str, bool]) -> None:
    from verify.ltv import proven_time

    assert proven_time(facts(timestamp=token(**changes)), ()) is None
    assert proven_time(facts(), ()) == SEALED
    assert proven_time(facts(timestamp=None), ()) is None


# ----- this domain's certificate records: revocation at the proven sealing time -----

CA_SERIAL, ROOT_SERIAL = 0xCA01, 0x0001


def records(
    *, seal: dict[str, Any] | None = None, ca: dict[str, Any] | None = None,
    root: dict[str, Any] | None = None, **licence: Any,
) -> Any:
    db = engine(**licence)
    with Session(db) as session:
        certificate(session, ROOT_SERIAL, issuer=None, subject="根CA Root", **(root or {}))
        certificate(session, CA_SERIAL, issuer=ROOT_SERIAL, subject="印章CA Seal CA", **(ca or {}))
        certificate(session, SEAL_SERIAL, issuer=CA_SERIAL, subject="印章 Seal", **(seal or {}))
    return db


def revoked(at: datetime, status: str = "revoked") -> dict[str, Any]:
    return {"status": status, "revoked_at": at, "reason": "keyCompromise"}


def test_good_records_pass_revocation() -> None:
    report = decide(records(), facts())
    assert report.indication is Indication.PASSED
    assert rows(report) == [*UP_TO_TIMESTAMPS, TIMESTAMP, CHAIN, NOT_REVOKED, REPOSITORY, VALID]


def test_a_revoked_root_is_not_this_checks_concern() -> None:
    report = decide(records(root=revoked(SEALED - timedelta(days=1))), facts())
    assert rows(report)[7] == NOT_REVOKED


@pytest.mark.parametrize(("status", "what", "message"), [
    ("revoked", "revoked", "印章证书已吊销 / the seal's certificate was revoked"),
    ("hold", "on hold", "印章证书已暂停使用 / the seal's certificate is on hold (suspended)"),
])
@pytest.mark.parametrize("since", [SEALED - timedelta(days=1), SEALED + timedelta(seconds=1)],
                         ids=["before", "within-accuracy"])
def test_a_seal_revoked_by_the_proven_time_fails(
    status: str, what: str, message: str, since: datetime
) -> None:
    report = decide(records(seal=revoked(since, status)), facts())
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, SubIndication.REVOKED, message)
    assert rows(report) == [*UP_TO_TIMESTAMPS, TIMESTAMP, CHAIN, (
        "revocation", "failed",
        f"印章 Seal {what} since {since.isoformat()} (keyCompromise); sealed at {SEALED_ISO}")]


def test_a_seal_revoked_with_no_proof_of_time_fails() -> None:
    since = SEALED + timedelta(days=100)
    report = decide(records(seal=revoked(since)), facts(timestamp=None))
    assert (report.indication, report.sub_indication) == (Indication.FAILED, SubIndication.REVOKED)
    assert rows(report)[-1] == (
        "revocation", "failed",
        f"印章 Seal revoked since {since.isoformat()} (keyCompromise); no proof of when it was sealed")


def test_a_seal_revoked_after_the_proven_time_passes_with_a_note() -> None:
    since = SEALED + timedelta(seconds=1, microseconds=1)
    report = decide(records(seal=revoked(since)), facts())
    assert report.indication is Indication.PASSED
    assert rows(report)[7] == (
        "revocation", "passed",
        f"印章 Seal revoked since {since.isoformat()} (keyCompromise); sealed at {SEALED_ISO}, "
        "before that, as timestamped")


def test_both_revoked_after_the_proven_time_are_noted() -> None:
    seal_since, ca_since = SEALED + timedelta(days=2), SEALED + timedelta(days=3)
    report = decide(records(seal=revoked(seal_since), ca=revoked(ca_since, "hold")), facts())
    assert report.indication is Indication.PASSED
    assert rows(report)[7] == (
        "revocation", "passed",
        f"印章 Seal revoked since {seal_since.isoformat()} (keyCompromise); sealed at {SEALED_ISO}, "
        "before that, as timestamped; "
        f"印章CA Seal CA on hold since {ca_since.isoformat()} (keyCompromise); sealed at "
        f"{SEALED_ISO}, before that, as timestamped")


def test_a_ca_revoked_before_the_proven_time_fails() -> None:
    since = SEALED - timedelta(hours=1)
    report = decide(records(ca=revoked(since)), facts())
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, SubIndication.REVOKED,
        "印章证书已吊销 / the seal's certificate was revoked")
    assert rows(report)[-1] == (
        "revocation", "failed",
        f"印章CA Seal CA revoked since {since.isoformat()} (keyCompromise); sealed at {SEALED_ISO}")


@pytest.mark.parametrize("seal", [
    {"status": "good", "revoked_at": SEALED - timedelta(days=1)},
    {"status": "revoked", "revoked_at": None},
], ids=["good-with-date", "revoked-without-date"])
def test_a_record_needs_both_a_status_and_a_date_to_count(seal: dict[str, Any]) -> None:
    report = decide(records(seal=seal), facts())
    assert report.indication is Indication.PASSED
    assert rows(report)[7] == NOT_REVOKED


def test_a_seal_record_with_an_unknown_issuer_is_checked_alone() -> None:
    db = engine()
    since = SEALED - timedelta(days=1)
    with Session(db) as session:
        certificate(session, SEAL_SERIAL, issuer=None, subject="印章 Seal", **revoked(since))
    report = decide(db, facts())
    assert rows(report)[-1][0:2] == ("revocation", "failed")


# ----- the repository's record and the licence status -----

def test_bytes_not_in_the_repository() -> None:
    report = decide(engine(licence=False), facts())
    assert (report.indication, report.sub_indication) == (
        Indication.FAILED, SubIndication.NOT_IN_REPOSITORY)
    assert rows(report) == [*UP_TO_TIMESTAMPS, TIMESTAMP, CHAIN, UNKNOWN,
                            ("repository", "failed", "no licence in the repository has these bytes")]
    assert report.licence is None


def test_another_digest_is_not_found() -> None:
    report = decide(engine(), facts(), digest="cd" * 32)
    assert rows(report)[-1] == ("repository", "failed", "no licence in the repository has these bytes")


def test_without_a_recorded_certificate_the_seals_current_one_counts() -> None:
    report = decide(engine(seal_certificate_serial=None), facts(signer_serial=0x9999))
    assert report.indication is Indication.PASSED
    assert report.seal is not None and report.seal.certificate_serial == "9999"
    refused = decide(engine(seal_certificate_serial=None), facts())
    assert rows(refused)[-1] == (
        "repository", "failed", "sealed by another seal than the repository recorded")


@pytest.mark.parametrize(("status", "label", "sub", "message"), [
    ("revoked", "已吊销 / revoked", SubIndication.REVOKED, "证照已被吊销或注销 / the licence has been revoked"),
    ("cancelled", "已注销 / cancelled", SubIndication.REVOKED,
     "证照已被吊销或注销 / the licence has been revoked"),
    ("suspended", "暂停 / suspended", SubIndication.SUSPENDED, "证照已暂停使用 / the licence is suspended"),
    ("superseded", "已变更 / superseded by a newer version", SubIndication.SUPERSEDED,
     "证照已变更，有更新版本 / the licence was superseded by a newer version"),
    ("void", "已作废 / void (reported lost, reissued)", SubIndication.SUPERSEDED,
     "证照已变更，有更新版本 / the licence was superseded by a newer version"),
])
def test_a_licence_no_longer_valid_fails_with_its_status(
    status: str, label: str, sub: SubIndication, message: str
) -> None:
    report = decide(engine(status=status), facts())
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, sub, message)
    assert rows(report) == [*ALL_PASSED[:-1], ("status", "failed", label)]
    assert report.licence is not None and report.licence.status == status
    assert report.seal is not None and report.seal.timestamp == SEALED_ISO


@pytest.mark.parametrize(("now", "expired"), [
    (datetime(2028, 5, 31, 15, 59, tzinfo=UTC), False),  # 23:59 on 31 May in Beijing
    (datetime(2028, 5, 31, 16, 0, tzinfo=UTC), True),  # 00:00 on 1 June in Beijing
])
def test_a_licence_expires_after_its_last_day_in_china(now: datetime, expired: bool) -> None:
    report = decide(engine(), facts(), now=now)
    if expired:
        assert (report.indication, report.sub_indication, report.message) == (
            Indication.FAILED, SubIndication.EXPIRED, "证照已过期 / the licence has expired")
        assert rows(report)[-1] == ("status", "failed", "已过期 / expired")
    else:
        assert report.indication is Indication.PASSED
        assert rows(report)[-1] == VALID


def test_a_licence_without_an_end_date_stays_valid() -> None:
    report = decide(engine(valid_until=None), facts(), now=datetime(2060, 1, 1, tzinfo=UTC))
    assert report.indication is Indication.PASSED
    assert report.licence is not None and report.licence.valid_until is None


def test_the_report_is_dated_by_the_clock() -> None:
    later = datetime(2026, 7, 1, tzinfo=UTC)
    assert decide(engine(), facts(), now=later).validated_at == later
    assert date(2026, 7, 1) == later.date()
