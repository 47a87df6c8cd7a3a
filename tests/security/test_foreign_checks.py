"""The checks of a foreign verification that need no network (``verify/foreign_checks.py``):
integrity and modifications, the sealing time from the issuing domain's own TSA, OCSP answers
against the proven sealing time, the signed licence status, and the report's sections built from
the signed answer only."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from licences.payload import key_id
from tests.security.federation_support import (
    certificate,
    der,
    domain,
    licence_member,
)
from tests.security.support import NOW
from trust.federation import Recognised
from trust.federation_ocsp import OcspAnswer
from trust.federation_status import StatusAnswer
from trust.tsa import ACCURACY
from verify import foreign_checks as rules
from verify.report import CheckResult, Indication, LicenceSummary, SealSummary, SubIndication
from verify.signature import ArchiveFacts, SignatureFacts, TimestampFacts
from verify.steps import Steps, Stop

SEALED = NOW - timedelta(days=30)
TRY_LATER = "暂时无法向签发信任域确认，请稍后再试 / the issuing domain cannot be asked just now; " \
    "try later"
HASH = "文件在盖章后被改动 / the file was changed after it was sealed"
SIG = "印章签名无效 / the seal's signature is invalid"
MODIFIED = "盖章后文件被追加修改 / content was added after sealing"
NO_POE = "无法证明盖章时间 / the time of sealing cannot be proven"
SEAL_REVOKED = "印章证书已被签发信任域吊销 / the issuing domain revoked the seal's certificate"


def recognised(name: str = "b", **changes: Any) -> Recognised:
    pki = domain(name)
    good = Recognised(name=name, url=pki.url, fingerprint=pki.pin, root_sha256="r" * 64,
                      trust_list=pki.parsed(), fetched_at=NOW, stale=False)
    return replace(good, **changes)


def token(**changes: Any) -> TimestampFacts:
    b = domain("b")
    good = TimestampFacts(intact=True, valid=True, trusted=True, time=SEALED,
                          signer_serial=b.tsa.serial_number, signer_subject="CN=b TSA",
                          signer_der=der(b.tsa))
    return replace(good, **changes)


def facts(**changes: Any) -> SignatureFacts:
    good = SignatureFacts(moment=NOW, signatures=1, docmdp=1, intact=True, valid=True,
                          trusted=True, coverage="ENTIRE_FILE", modification="NONE",
                          docmdp_ok=True, timestamp=token())
    return replace(good, **changes)


def rows(steps: Steps) -> list[tuple[str, str, str]]:
    return [(c.name, c.result.value, c.detail) for c in steps.checks]


def stop(call: Any, *args: Any) -> tuple[Stop, Steps]:
    steps = Steps()
    with pytest.raises(Stop) as caught:
        call(*args, steps)
    return caught.value, steps


def outcome(failed: Stop) -> tuple[Indication, SubIndication, str]:
    return failed.indication, failed.sub, failed.message


def test_stale_message_names_the_domain() -> None:
    assert rules.stale_message("b") == (
        "信任域 b 的信任列表已过期且无法更新 / the trust list of b is past its next_update and "
        "could not be refreshed; try later"
    )
    assert ACCURACY.total_seconds() == 1.0  # the TSA's accuracy the revocation rule allows for


# -- integrity and modifications -----------------------------------------------------------


def test_an_intact_seal_over_the_whole_file_passes() -> None:
    steps = Steps()
    rules.signature_checks(facts(), steps)
    assert rows(steps) == [
        ("integrity", "passed", "seal signature intact and valid"),
        ("modifications", "passed", "the seal covers the whole file"),
    ]
    for modification in ("NONE", "LTA_UPDATES"):
        steps = Steps()
        rules.signature_checks(facts(coverage="ENTIRE_REVISION", modification=modification),
                               steps)
        assert rows(steps)[1] == (
            "modifications", "passed", "only long-term validation data was added after sealing")


def test_altered_bytes_and_a_broken_signature_fail_with_the_pdf_messages() -> None:
    failed, steps = stop(rules.signature_checks, facts(intact=False))
    assert outcome(failed) == (Indication.FAILED, SubIndication.HASH_FAILURE, HASH)
    assert rows(steps) == [("integrity", "failed", "signed bytes do not match the seal's digest")]
    failed, steps = stop(rules.signature_checks, facts(valid=False))
    assert outcome(failed) == (Indication.FAILED, SubIndication.SIG_CRYPTO_FAILURE, SIG)
    assert rows(steps) == [("integrity", "failed", "the seal's signature does not verify")]


@pytest.mark.parametrize(
    ("coverage", "docmdp_ok", "modification"),
    [
        ("ENTIRE_REVISION", True, "FORM_FILLING"),
        ("ENTIRE_REVISION", False, "NONE"),
        ("ENTIRE_REVISION", None, "LTA_UPDATES"),
        ("CONTIGUOUS_BLOCKS", True, "NONE"),
        (None, True, "NONE"),
    ],
)
def test_anything_added_after_sealing_but_validation_data_fails(
    coverage: str | None, docmdp_ok: bool | None, modification: str
) -> None:
    failed, steps = stop(rules.signature_checks, facts(
        coverage=coverage, docmdp_ok=docmdp_ok, modification=modification))
    assert outcome(failed) == (Indication.FAILED, SubIndication.MODIFIED_AFTER_SEALING, MODIFIED)
    assert rows(steps)[-1] == (
        "modifications", "failed", f"coverage {coverage}, changes {modification}")


# -- the sealing time ------------------------------------------------------------------------


def test_the_domains_own_tsa_proves_the_sealing_time() -> None:
    steps = Steps()
    assert rules.sealing_time(facts(), recognised(), steps) == SEALED
    assert rows(steps) == [
        ("timestamp", "passed", f"sealed at {SEALED.isoformat()} (RFC 3161, CN=b TSA)")]


def test_no_timestamp_is_a_skipped_check_and_no_proof() -> None:
    steps = Steps()
    assert rules.sealing_time(facts(timestamp=None), recognised(), steps) is None
    assert rows(steps) == [
        ("timestamp", "skipped", "no timestamp: the sealing time is only self-reported")]


def test_a_broken_archive_or_timestamp_fails() -> None:
    broken = facts(archive=ArchiveFacts(count=1, broken="document timestamp 1"))
    failed, steps = stop(rules.sealing_time, broken, recognised())
    assert outcome(failed) == (Indication.FAILED, SubIndication.HASH_FAILURE, HASH)
    assert rows(steps) == [("archive", "failed", "document timestamp 1 does not verify")]
    for change in ({"intact": False}, {"valid": False}):
        failed, steps = stop(rules.sealing_time, facts(timestamp=token(**change)), recognised())
        assert outcome(failed) == (Indication.FAILED, SubIndication.HASH_FAILURE, HASH)
        assert rows(steps) == [("timestamp", "failed", "the seal's timestamp token is broken")]


def test_a_timestamp_not_from_the_domains_tsa_proves_nothing() -> None:
    a = domain("a")
    expected = "the seal's timestamp is not from b's TSA, or cannot be proven now"
    for bad in (token(trusted=False), token(signer_der=der(a.tsa))):
        failed, steps = stop(rules.sealing_time, facts(timestamp=bad), recognised())
        assert outcome(failed) == (Indication.INDETERMINATE, SubIndication.NO_POE, NO_POE)
        assert rows(steps) == [("timestamp", "failed", expected)]


# -- the licence status ----------------------------------------------------------------------


def answer(**licence: Any) -> StatusAnswer:
    member = licence_member(domain("b"), **licence)
    return StatusAnswer({}, True, member, {"seal_code": "S1"}, NOW)


def test_a_valid_licence_passes_with_its_label() -> None:
    steps = Steps()
    rules.licence_status(answer(), steps)
    assert rows(steps) == [
        ("status", "passed", f"有效 / valid (signed answer of {NOW.isoformat()})")]
    steps = Steps()
    rules.licence_status(answer(status_label=None), steps)
    assert rows(steps)[0][2] == f"有效 / valid (signed answer of {NOW.isoformat()})"


@pytest.mark.parametrize(
    ("status", "sub", "message"),
    [
        ("revoked", SubIndication.REVOKED, "证照已被吊销或注销 / the licence has been revoked"),
        ("cancelled", SubIndication.REVOKED, "证照已被吊销或注销 / the licence has been revoked"),
        ("suspended", SubIndication.SUSPENDED, "证照已暂停使用 / the licence is suspended"),
        ("superseded", SubIndication.SUPERSEDED,
         "证照已变更，有更新版本 / the licence was superseded by a newer version"),
        ("void", SubIndication.SUPERSEDED,
         "证照已变更，有更新版本 / the licence was superseded by a newer version"),
        ("expired", SubIndication.EXPIRED, "证照已过期 / the licence has expired"),
    ],
)
def test_a_licence_not_valid_at_its_domain_fails(
    status: str, sub: SubIndication, message: str
) -> None:
    failed, steps = stop(rules.licence_status, answer(status=status, status_label="L"))
    assert outcome(failed) == (Indication.FAILED, sub, message)
    assert rows(steps) == [("status", "failed", f"L (signed answer of {NOW.isoformat()})")]


def test_an_unknown_status_is_try_later() -> None:
    for status in ("lost", None):
        failed, steps = stop(rules.licence_status, answer(status=status))
        assert outcome(failed) == (Indication.INDETERMINATE, SubIndication.TRY_LATER, TRY_LATER)
        assert rows(steps) == [
            ("status", "failed", "the signed answer names a status this domain does not know")]
    failed, _ = stop(rules.licence_status, replace(answer(), licence=None))
    assert failed.sub is SubIndication.TRY_LATER


# -- OCSP -----------------------------------------------------------------------------------


def ocsp(status: str, revoked_at: Any = None, reason: str | None = "keyCompromise") -> OcspAnswer:
    return OcspAnswer(status, NOW, None, revoked_at, reason if status == "revoked" else None)


def test_good_answers_pass_and_count() -> None:
    b = domain("b")
    steps = Steps()
    rules.revocation([(b.seal, ocsp("good")), (b.ca, ocsp("good"))], SEALED, steps, "b")
    assert rows(steps) == [("ocsp", "passed", "2 certificate(s) good at b's OCSP responder")]


def test_unknown_to_the_responder_is_not_in_repository() -> None:
    b = domain("b")
    steps = Steps()
    with pytest.raises(Stop) as caught:
        rules.revocation([(b.seal, ocsp("good")), (b.ca, ocsp("unknown"))], SEALED, steps, "b")
    failed = caught.value
    assert (failed.indication, failed.sub) == (Indication.FAILED, SubIndication.NOT_IN_REPOSITORY)
    assert failed.message == "证照库中没有这份文件 / this file is not in the licence repository"
    assert rows(steps) == [("ocsp", "failed", "CN=b CA: unknown to its issuer's responder")]


def revoked_stop(revoked_at: Any, proven: Any) -> tuple[Stop, Steps]:
    b = domain("b")
    steps = Steps()
    with pytest.raises(Stop) as caught:
        rules.revocation([(b.seal, ocsp("revoked", revoked_at))], proven, steps, "b")
    return caught.value, steps


def test_revoked_before_the_proven_sealing_time_or_without_proof_fails() -> None:
    line = f"CN=b Seal revoked at {SEALED.isoformat()} (keyCompromise)"
    failed, steps = revoked_stop(SEALED, None)
    assert outcome(failed) == (Indication.FAILED, SubIndication.REVOKED, SEAL_REVOKED)
    assert rows(steps) == [("ocsp", "failed", f"{line}; no proof of when it was sealed")]
    for proven in (SEALED, SEALED + timedelta(days=1), SEALED - timedelta(seconds=1)):
        failed, steps = revoked_stop(SEALED, proven)
        assert outcome(failed) == (Indication.FAILED, SubIndication.REVOKED, SEAL_REVOKED)
        assert rows(steps) == [("ocsp", "failed", f"{line}; sealed at {proven.isoformat()}")]


def test_revoked_more_than_a_second_after_the_proven_sealing_time_passes_with_a_note() -> None:
    b = domain("b")
    later = SEALED + timedelta(seconds=1, microseconds=1)
    steps = Steps()
    rules.revocation([(b.seal, ocsp("revoked", later, None)), (b.ca, ocsp("good"))], SEALED,
                     steps, "b")
    assert rows(steps) == [("ocsp", "passed",
                            f"CN=b Seal revoked at {later.isoformat()} (None); sealed at "
                            f"{SEALED.isoformat()}, before that")]
    steps = Steps()
    rules.revocation([(b.seal, ocsp("revoked", later)), (b.ca, ocsp("revoked", later))],
                     SEALED, steps, "b")
    assert rows(steps)[0][2].count("before that") == 2
    assert "before that; CN=b CA revoked" in rows(steps)[0][2]


# -- the report's sections from the signed answer --------------------------------------------


def test_licence_and_seal_sections_come_from_the_signed_answer() -> None:
    b = domain("b")
    signed = StatusAnswer({}, True, licence_member(b, extra="ignored"),
                          {"seal_code": "S1", "seal_name": "章", "department": "测试局",
                           "certificate_serial": "ab", "unknown": 1}, NOW)
    summary = rules.licence(signed)
    assert isinstance(summary, LicenceSummary)
    assert (summary.identifier, summary.status, summary.holder_name, summary.version) == (
        licence_member(b)["identifier"], "valid", "张*", 1)
    seal = rules.seal(signed, "t1", "t2")
    assert seal == SealSummary(seal_code="S1", seal_name="章", department="测试局",
                               certificate_serial="ab", signing_time="t1", timestamp="t2")
    assert rules.licence(None) is None and rules.seal(None, None, None) is None
    empty = replace(signed, licence=None, seal=None)
    assert rules.licence(empty) is None and rules.seal(empty, "t", "t") is None
    lacking = replace(signed, licence={"identifier": "x"}, seal={"seal_code": "S1"})
    assert rules.licence(lacking) is None and rules.seal(lacking, "t", "t") is None


def test_ders_split_roots_and_intermediates() -> None:
    b = domain("b")
    assert rules.ders(recognised(), roots=True) == [der(b.root)]
    assert rules.ders(recognised(), roots=False) == [der(b.ca)]


def test_issued_by_needs_the_name_and_the_key() -> None:
    a, b = domain("a"), domain("b")
    assert rules.issued_by(b.seal, der(b.ca)) is True
    assert rules.issued_by(b.seal, der(a.ca)) is False
    assert rules.issued_by(b.seal, der(b.root)) is False
    same_name = certificate("b CA", a.ca_key.public_key(), None, a.ca_key, ca=True)
    assert rules.issued_by(b.seal, der(same_name)) is False


def test_qr_keys_are_the_lists_es256_keys_by_their_own_id() -> None:
    b = domain("b")
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key() \
        .public_bytes(serialization.Encoding.PEM,
                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    other = domain("a").qr_entry()
    entries = [
        {**other, "alg": "ES384"},
        {**other, "alg": None},
        {"kid": "11", "alg": "ES256", "public_key_pem": rsa_pem},
        {"kid": "22", "alg": "ES256", "public_key_pem": "junk"},
        {"kid": "33", "alg": "ES256"},
        {"kid": "44", "alg": "ES256", "public_key_pem": 5},
        {**b.qr_entry(), "kid": "00" * 8},  # the id is recomputed, never read
    ]
    listed = replace(b.parsed(), document={**b.body(), "qr_keys": entries})
    keys = rules.qr_keys(recognised(trust_list=listed))
    assert list(keys) == [key_id(b.qr_key.public_key())]
    assert keys[b.kid].public_numbers() == b.qr_key.public_key().public_numbers()
    bare = replace(b.parsed(), document={**b.body(), "qr_keys": None})
    assert rules.qr_keys(recognised(trust_list=bare)) == {}


def test_check_results() -> None:
    assert rules.check("x", None, "d").result is CheckResult.SKIPPED
    assert rules.check("x", True, "d").result is CheckResult.PASSED
    assert rules.check("x", False, "d").result is CheckResult.FAILED
    assert (rules.check("n", True, "d").name, rules.check("n", True, "d").detail) == ("n", "d")
    assert isinstance(x509.load_der_x509_certificate(der(domain("b").seal)), x509.Certificate)
