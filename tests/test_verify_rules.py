"""The rules of seal verification (``verify/rules.py``), one pure function each, shared by the
local and the foreign verifier: each case names the check, its result and the ETSI indication
and sub-indication it ends the verification with (None: it lets the verification go on)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from licences.models import LicenceStatus
from verify import rules
from verify.report import MESSAGES, Check, CheckResult, Indication, SubIndication
from verify.signature import ArchiveFacts, SignatureFacts, TimestampFacts
from verify.steps import Steps, Stop, Verdict, qr_wording, seal_wording

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SEALED = NOW - timedelta(days=30)
FAILED, INDETERMINATE = Indication.FAILED, Indication.INDETERMINATE


def token(**changes: Any) -> TimestampFacts:
    good = TimestampFacts(intact=True, valid=True, trusted=True, time=SEALED, signer_serial=7,
                          signer_subject="CN=TSA", signer_der=b"")
    return replace(good, **changes)


def facts(**changes: Any) -> SignatureFacts:
    good = SignatureFacts(moment=NOW, signatures=1, docmdp=1, intact=True, valid=True,
                          trusted=True, coverage="ENTIRE_FILE", modification="NONE",
                          docmdp_ok=True, timestamp=token())
    return replace(good, **changes)


def outcome(verdict: Verdict) -> tuple[str, str, Indication | None, SubIndication | None]:
    check, failure = verdict.check, verdict.failure
    return (check.name, check.result.value, failure[0] if failure else None,
            failure[1] if failure else None)


# -- the seal's form ----------------------------------------------------------------------------

CERTIFIED = ("certification", "passed", None, None)


@pytest.mark.parametrize(("changes", "expected", "detail"), [
    ({}, [("format", "passed", None, None), ("seal_count", "passed", None, None), CERTIFIED],
     "certification seal, DocMDP P=1 (no changes allowed)"),
    ({"unreadable": "PdfReadError"},
     [("format", "failed", INDETERMINATE, SubIndication.MALFORMED)], "unreadable: PdfReadError"),
    ({"signatures": 0}, [("format", "passed", None, None),
                         ("seal_count", "failed", FAILED, SubIndication.NO_SIGNATURE)], "no seal"),
    ({"signatures": 2},
     [("format", "passed", None, None),
      ("seal_count", "failed", FAILED, SubIndication.MODIFIED_AFTER_SEALING)],
     "2 signatures; a licence has one seal"),
    ({"docmdp": 2}, [("format", "passed", None, None), ("seal_count", "passed", None, None),
                     ("certification", "failed", FAILED, SubIndication.NOT_CERTIFIED)],
     "DocMDP MDPPerm.FILL_FORMS; P=1 required"),
    ({"docmdp": None}, [("format", "passed", None, None), ("seal_count", "passed", None, None),
                        ("certification", "failed", FAILED, SubIndication.NOT_CERTIFIED)],
     "DocMDP None; P=1 required"),
])
def test_seal_form(changes: dict[str, Any], expected: list[tuple[Any, ...]], detail: str) -> None:
    verdicts = rules.seal_form(facts(**changes))
    assert [outcome(v) for v in verdicts] == expected
    assert verdicts[-1].check.detail == detail


# -- integrity ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("changes", "detail", "expected"), [
    ({}, "seal signature intact and valid", ("passed", None, None)),
    ({"error": "ValueError"}, "validation error: ValueError",
     ("failed", INDETERMINATE, SubIndication.MALFORMED)),
    ({"intact": False, "valid": False}, "signed bytes do not match the seal's digest",
     ("failed", FAILED, SubIndication.HASH_FAILURE)),
    ({"valid": False}, "the seal's signature does not verify",
     ("failed", FAILED, SubIndication.SIG_CRYPTO_FAILURE)),
])
def test_integrity(changes: dict[str, Any], detail: str, expected: tuple[Any, ...]) -> None:
    verdict = rules.integrity(facts(**changes))
    assert outcome(verdict) == ("integrity", *expected)
    assert verdict.check.detail == detail
    assert verdict.failure is None or verdict.failure[2] is None  # the seal's usual wording


# -- modifications -----------------------------------------------------------------------------

@pytest.mark.parametrize(("coverage", "modification", "docmdp_ok", "detail"), [
    ("ENTIRE_FILE", None, None, "the seal covers the whole file"),
    ("ENTIRE_REVISION", "NONE", True, "only long-term validation data was added after sealing"),
    ("ENTIRE_REVISION", "LTA_UPDATES", True,
     "only long-term validation data was added after sealing"),
])
def test_nothing_but_validation_data_after_the_seal_passes(
    coverage: str, modification: str | None, docmdp_ok: bool | None, detail: str
) -> None:
    for qualified in (False, True):
        verdict = rules.modifications(
            facts(coverage=coverage, modification=modification, docmdp_ok=docmdp_ok),
            qualified=qualified)
        assert outcome(verdict) == ("modifications", "passed", None, None)
        assert verdict.check.detail == detail


@pytest.mark.parametrize(("coverage", "modification", "docmdp_ok", "bare", "qualified"), [
    ("ENTIRE_REVISION", "FORM_FILLING", True, "coverage ENTIRE_REVISION, changes FORM_FILLING",
     "coverage SignatureCoverageLevel.ENTIRE_REVISION, changes ModificationLevel.FORM_FILLING"),
    ("ENTIRE_REVISION", "LTA_UPDATES", False, "coverage ENTIRE_REVISION, changes LTA_UPDATES",
     "coverage SignatureCoverageLevel.ENTIRE_REVISION, changes ModificationLevel.LTA_UPDATES"),
    ("ENTIRE_REVISION", "NONE", None, "coverage ENTIRE_REVISION, changes NONE",
     "coverage SignatureCoverageLevel.ENTIRE_REVISION, changes ModificationLevel.NONE"),
    ("ENTIRE_REVISION", None, True, "coverage ENTIRE_REVISION, changes None",
     "coverage SignatureCoverageLevel.ENTIRE_REVISION, changes None"),
    ("CONTIGUOUS_BLOCK_FROM_START", "NONE", True,
     "coverage CONTIGUOUS_BLOCK_FROM_START, changes NONE",
     "coverage SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START, changes ModificationLevel.NONE"),
    (None, None, None, "coverage None, changes None", "coverage None, changes None"),
])
def test_anything_else_after_the_seal_is_modified_after_sealing(
    coverage: str | None, modification: str | None, docmdp_ok: bool | None, bare: str,
    qualified: str,
) -> None:
    found = facts(coverage=coverage, modification=modification, docmdp_ok=docmdp_ok)
    for verdict, detail in ((rules.modifications(found), bare),
                            (rules.modifications(found, qualified=True), qualified)):
        assert outcome(verdict) == (
            "modifications", "failed", FAILED, SubIndication.MODIFIED_AFTER_SEALING)
        assert verdict.check.detail == detail


# -- timestamps --------------------------------------------------------------------------------

def test_a_broken_document_timestamp_is_hash_failure() -> None:
    assert rules.broken_archive(ArchiveFacts(2, None, SEALED, "ok")) is None
    verdict = rules.broken_archive(ArchiveFacts(2, "document timestamp 1"))
    assert verdict is not None
    assert outcome(verdict) == ("archive", "failed", FAILED, SubIndication.HASH_FAILURE)
    assert verdict.check.detail == "document timestamp 1 does not verify"


@pytest.mark.parametrize(("stamp", "trusted", "detail", "expected"), [
    (None, False, "no timestamp: the sealing time is only self-reported", ("skipped", None, None)),
    (token(intact=False), True, "the seal's timestamp token is broken",
     ("failed", FAILED, SubIndication.HASH_FAILURE)),
    (token(valid=False), True, "the seal's timestamp token is broken",
     ("failed", FAILED, SubIndication.HASH_FAILURE)),
    (token(), False, "the seal's timestamp is not from b's TSA, or cannot be proven now",
     ("failed", INDETERMINATE, SubIndication.NO_POE)),
    (token(), True, f"sealed at {SEALED.isoformat()} (RFC 3161, CN=TSA)", ("passed", None, None)),
])
def test_the_seals_timestamp(
    stamp: TimestampFacts | None, trusted: bool, detail: str, expected: tuple[Any, ...]
) -> None:
    verdict = rules.sealing_timestamp(stamp, trusted=trusted, whose="b's", proof="RFC 3161")
    assert outcome(verdict) == ("timestamp", *expected)
    assert verdict.check.detail == detail


# -- revocation against the proven sealing time ------------------------------------------------

def revoked(at: datetime, line: str = "CN=Seal revoked") -> rules.Revoked:
    return rules.Revoked(line, at, "voided")


@pytest.mark.parametrize(("at", "proven", "after"), [
    (SEALED + timedelta(seconds=1, microseconds=1), SEALED, True),
    (SEALED + timedelta(seconds=1), SEALED, False),  # within the TSA's accuracy: not after
    (SEALED, SEALED, False),
    (SEALED - timedelta(days=1), SEALED, False),
    (NOW, None, False),  # no proof of when it was sealed
])
def test_revoked_after_sealing_beyond_the_accuracy(
    at: datetime, proven: datetime | None, after: bool
) -> None:
    assert rules.revoked_after_sealing(at, proven) is after


def test_nothing_revoked_passes_with_its_detail() -> None:
    verdict = rules.revocation("ocsp", [], SEALED, note="", passed="2 good")
    assert outcome(verdict) == ("ocsp", "passed", None, None)
    assert verdict.check.detail == "2 good"


def test_a_revocation_after_the_sealing_time_is_a_note() -> None:
    later = SEALED + timedelta(days=1)
    verdict = rules.revocation("revocation", [revoked(later), revoked(later, "CN=CA held")],
                               SEALED, note=", as timestamped", passed="unused")
    assert outcome(verdict) == ("revocation", "passed", None, None)
    assert verdict.check.detail == (
        f"CN=Seal revoked; sealed at {SEALED.isoformat()}, before that, as timestamped; "
        f"CN=CA held; sealed at {SEALED.isoformat()}, before that, as timestamped")


@pytest.mark.parametrize(("proven", "when"), [
    (SEALED, f"sealed at {SEALED.isoformat()}"),
    (None, "no proof of when it was sealed"),
])
def test_a_revocation_before_the_sealing_time_or_without_one_is_revoked(
    proven: datetime | None, when: str
) -> None:
    verdict = rules.revocation("ocsp", [revoked(SEALED - timedelta(days=1))], proven, note="",
                               passed="unused")
    assert outcome(verdict) == ("ocsp", "failed", FAILED, SubIndication.REVOKED)
    assert verdict.check.detail == f"CN=Seal revoked; {when}"
    assert verdict.failure is not None and verdict.failure[2] == "voided"


def test_evidence_is_judged_in_chain_order() -> None:
    unknown = Verdict(Check("ocsp", CheckResult.FAILED, "CN=CA unknown"),
                      (FAILED, SubIndication.NOT_IN_REPOSITORY, None))
    early = revoked(SEALED - timedelta(days=1))
    assert rules.revocation("ocsp", [unknown, early], SEALED, note="", passed="") is unknown
    first = rules.revocation("ocsp", [early, unknown], SEALED, note="", passed="")
    assert outcome(first) == ("ocsp", "failed", FAILED, SubIndication.REVOKED)
    later = revoked(SEALED + timedelta(days=1))
    assert rules.revocation("ocsp", [later, unknown], SEALED, note="", passed="") is unknown


# -- the licence's status ----------------------------------------------------------------------

@pytest.mark.parametrize(("status", "sub"), [
    (LicenceStatus.VALID, None),
    (LicenceStatus.REVOKED, SubIndication.REVOKED),
    (LicenceStatus.CANCELLED, SubIndication.REVOKED),
    (LicenceStatus.SUSPENDED, SubIndication.SUSPENDED),
    (LicenceStatus.SUPERSEDED, SubIndication.SUPERSEDED),
    (LicenceStatus.VOID, SubIndication.SUPERSEDED),
    (LicenceStatus.EXPIRED, SubIndication.EXPIRED),
])
def test_the_licence_status_now(status: LicenceStatus, sub: SubIndication | None) -> None:
    verdict = rules.licence_status(status, "label")
    if sub is None:
        assert outcome(verdict) == ("status", "passed", None, None)
        return
    assert outcome(verdict) == ("status", "failed", FAILED, sub)
    # worded as the licence's, whatever was verified (an expired licence, not an expired code)
    assert verdict.failure is not None and verdict.failure[2] == MESSAGES[sub]


# -- the pipeline records a verdict and words its failure for what was verified ----------------

def test_steps_apply_a_verdict_with_the_wording_of_what_is_verified() -> None:
    steps = Steps()
    steps.apply(rules.integrity(facts()))
    assert steps.checks == [Check("integrity", CheckResult.PASSED,
                                  "seal signature intact and valid")]
    for wording in (seal_wording, qr_wording):
        steps = Steps(wording=wording)
        with pytest.raises(Stop) as stopped:
            steps.apply(rules.integrity(facts(valid=False)))
        assert (stopped.value.indication, stopped.value.sub, stopped.value.message) == (
            FAILED, SubIndication.SIG_CRYPTO_FAILURE, wording(SubIndication.SIG_CRYPTO_FAILURE))
    assert seal_wording(SubIndication.SIG_CRYPTO_FAILURE) != qr_wording(
        SubIndication.SIG_CRYPTO_FAILURE)
