"""Online QR verification (``verify/code.py``) against a repository in memory.

Genuine codes are made with the product's payload builder under the domain's QR key; forged ones
with another key, a wrong signature under the right key id, or a record digest that does not
match the stored record. Every outcome is checked to the indication, sub-indication, message,
each check's name, result and detail, and the report's JSON.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session

from core.clock import FixedClock
from core.errors import NotFound
from licences.models import Holder, Licence
from licences.payload import PayloadType
from tests.security.licences import (
    FIELDS,
    HOLDER_NAME,
    ISSUER,
    ISSUER_NAME,
    SEAL_CODE,
    SEAL_NAME,
    SEAL_SERIAL,
    TYPE_CODE,
    TYPE_NAME,
    Repository,
    forged,
    repository,
)
from tests.security.support import NOW
from verify.code import CodeVerifier
from verify.report import Indication, Report, SubIndication

GENUINE = "证照真实有效 / the licence is genuine and valid"
SIGNATURE_FORGED = "二维码签名无效，内容可能被伪造 / the QR code's signature is invalid; it may be forged"
RECORD_DIFFERS = "二维码内容与证照库记录不一致 / the QR content does not match the repository's record"
UNKNOWN = "无法识别该二维码 / the code is not known to this service"
MALFORMED = "二维码内容格式错误或已被改动 / the QR content is malformed or was altered"
UNTRUSTED_KEY = (
    "二维码的签名密钥不在信任列表中 / the QR was signed with a key not in the trust list"
)
NOT_STORED = "证照库中没有这份文件 / this file is not in the licence repository"
PRESENTATION_EXPIRED = (
    "出示码已过期，请持证人刷新后重新出示 / this presentation code has expired; ask the holder "
    "to show a fresh one"
)
FUTURE = "出示码的时间晚于现在，请核对设备时间 / the presentation code is dated in the future; check the clock"


def verify(repo: Repository, text: str, now: datetime = NOW, channel: str = "api-qr",
           keys: bool = True) -> Report:
    verifier = CodeVerifier(FixedClock(now), repo.keys if keys else None)
    with Session(repo.engine) as session:
        return verifier.verify(session, text, channel)


def checks(report: Report) -> list[tuple[str, str, str]]:
    return [(c.name, c.result.value, c.detail) for c in report.checks]


def signed_checks(repo: Repository, code: str, kind: str = "证照码 / licence") -> list[tuple[str, str, str]]:
    return [
        ("format", "passed", f"COSE_Sign1 ES256, {kind}, {len(code)} characters"),
        ("key", "passed", f"QR signing key {repo.kid.hex()}"),
        ("signature", "passed", "ES256 signature valid"),
    ]


def licence_json(ident: str, status: str = "valid", status_label: str = "有效 / valid",
                 holder_name: str = "张*明") -> dict[str, object]:
    return {
        "identifier": ident, "type_code": TYPE_CODE, "type_name": TYPE_NAME,
        "issuer_code": ISSUER, "issuer_name": ISSUER_NAME, "holder_name": holder_name,
        "holder_id": "350***********1234", "valid_from": "2024-05-20",
        "valid_until": "2029-05-19", "status": status, "status_label": status_label,
        "version": 1, "purpose": None,
    }


SEAL_JSON = {
    "seal_code": SEAL_CODE, "seal_name": SEAL_NAME, "department": ISSUER_NAME,
    "certificate_serial": SEAL_SERIAL, "signing_time": "2024-05-20T01:30:00+00:00",
    "timestamp": None, "seal_type": "02", "seal_type_label": "电子证照专用章",
    "department_code": ISSUER,
}


@pytest.fixture(scope="module")
def repo() -> Repository:
    return repository()


def test_a_genuine_licence_code_passes_with_every_check_and_the_repository_data(
    repo: Repository,
) -> None:
    ident = repo.add("P1")
    code = repo.code(repo.claims(ident))
    report = verify(repo, f"https://verify.example.gov.cn/V/{code}", channel="qr-page")
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.PASSED, None, GENUINE)
    assert checks(report) == [
        *signed_checks(repo, code),
        ("repository", "passed", f"matches licence {ident}"),
        ("status", "passed", "有效 / valid"),
    ]
    assert report.to_json() == {
        "indication": "PASSED", "sub_indication": None, "message": GENUINE,
        "checks": [{"name": n, "result": r, "detail": d} for n, r, d in checks(report)],
        "validated_at": "2026-03-14T02:00:00+00:00", "channel": "qr-page",
        "licence": licence_json(ident), "seal": SEAL_JSON,
        "extra": {"method": "qr-payload", "identifier": ident},
        "domain": None, "recognised_as": None,
    }


def test_a_lower_case_bare_code_is_the_same_code(repo: Repository) -> None:
    ident = repo.add("P2")
    code = repo.code(repo.claims(ident))
    report = verify(repo, "  " + code.lower() + "\n")
    assert report.indication is Indication.PASSED
    assert report.channel == "api-qr"
    assert report.validated_at == NOW


def test_the_licence_names_the_holder_as_issued_and_the_sealing_certificate(
    repo: Repository,
) -> None:
    ident = repo.add("P3", holder_name="张小明明", seal_certificate_serial="5A3F0002")
    report = verify(repo, repo.code(repo.claims(ident)))
    assert report.indication is Indication.PASSED
    assert report.licence is not None and report.seal is not None
    assert report.licence.holder_name == "张**明"
    assert report.seal.certificate_serial == "5A3F0002"


def test_a_licence_without_an_end_date_passes(repo: Repository) -> None:
    ident = repo.add("P4", valid_until=None)
    report = verify(repo, repo.code(repo.claims(ident, valid_until=None)), now=datetime(2090, 1, 1, tzinfo=UTC))
    assert report.indication is Indication.PASSED
    assert report.licence is not None and report.licence.valid_until is None


def test_text_that_is_no_code_of_this_service_is_unknown(repo: Repository) -> None:
    for text in ("https://evil.example/pay/ABCDEFGHIJKLMNOPQRSTUVWXYZ", "hello", ""):
        report = verify(repo, text)
        assert (report.indication, report.sub_indication, report.message) == (
            Indication.FAILED, SubIndication.UNKNOWN_CODE, UNKNOWN)
        assert checks(report) == [
            ("code", "failed", "not a verification URL or code of this service")]
        assert report.licence is None and report.seal is None and report.extra == {}


def test_a_signed_code_without_qr_keys_is_unknown(repo: Repository) -> None:
    ident = repo.add("K1")
    report = verify(repo, repo.code(repo.claims(ident)), keys=False)
    assert (report.indication, report.sub_indication) == (
        Indication.FAILED, SubIndication.UNKNOWN_CODE)
    assert checks(report) == [
        ("code", "failed", "not a verification URL or code of this service")]


def test_a_malformed_payload_fails_its_format(repo: Repository) -> None:
    report = verify(repo, "A" * 40)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, SubIndication.FORMAT_FAILURE, MALFORMED)
    assert checks(report) == [("format", "failed", "trailing bytes after the CBOR item")]
    assert report.extra == {}


def test_a_code_signed_by_another_key_names_no_trusted_key(repo: Repository) -> None:
    ident = repo.add("F1")
    code, kid = forged(repo.claims(ident))
    report = verify(repo, code)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.INDETERMINATE, SubIndication.NO_SIGNING_CERTIFICATE_FOUND, UNTRUSTED_KEY)
    assert checks(report) == [
        ("format", "passed", f"COSE_Sign1 ES256, 证照码 / licence, {len(code)} characters"),
        ("key", "failed", f"key id {kid.hex()} is not a QR key of this trust domain"),
    ]
    # Nothing the payload says is believed: no identifier, no licence.
    assert report.extra == {"method": "qr-payload"}
    assert report.licence is None and report.seal is None


def test_a_forged_signature_under_the_domains_key_id_fails_its_signature(
    repo: Repository,
) -> None:
    ident = repo.add("F2", status="revoked")
    code, _ = forged(repo.claims(ident), kid=repo.kid)
    report = verify(repo, code)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, SubIndication.SIG_CRYPTO_FAILURE, SIGNATURE_FORGED)
    assert checks(report) == [
        *signed_checks(repo, code)[:2],
        ("signature", "failed", "ES256 signature does not verify"),
    ]
    assert report.extra == {"method": "qr-payload"}
    assert report.licence is None


def test_a_forged_expired_presentation_fails_for_its_signature_not_its_age(
    repo: Repository,
) -> None:
    ident = repo.add("F3")
    code, _ = forged(repo.presentation(ident, NOW - timedelta(hours=1)), kid=repo.kid)
    report = verify(repo, code)
    assert (report.sub_indication, report.message) == (
        SubIndication.SIG_CRYPTO_FAILURE, SIGNATURE_FORGED)
    assert report.extra == {"method": "presentation"}


def test_a_genuine_code_of_a_licence_not_in_the_repository_fails(repo: Repository) -> None:
    from tests.security.licences import identifier

    ident = identifier("NOTSTORED")
    code = repo.code(repo.claims(ident))
    report = verify(repo, code)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, SubIndication.NOT_IN_REPOSITORY, NOT_STORED)
    assert checks(report) == [
        *signed_checks(repo, code),
        ("repository", "failed", f"no licence {ident} in the repository"),
    ]
    assert report.extra == {"method": "qr-payload", "identifier": ident}
    assert report.licence is None and report.seal is None


def test_a_signed_code_with_a_forged_record_digest_fails_the_hash(repo: Repository) -> None:
    ident = repo.add("D1")
    code = repo.code(repo.claims(ident, record_digest=bytes(16)))
    report = verify(repo, code)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, SubIndication.HASH_FAILURE, RECORD_DIFFERS)
    assert checks(report) == [
        *signed_checks(repo, code),
        ("repository", "failed", "record digest differs from the repository's record"),
    ]
    assert report.licence is None and report.seal is None


def test_a_record_edited_after_issuance_fails_the_hash(repo: Repository) -> None:
    ident = repo.add("D2")
    code = repo.code(repo.claims(ident))
    with Session(repo.engine) as session:
        licence = session.get(Licence, ident)
        assert licence is not None
        licence.fields = {**FIELDS, "经营项目": "热食类食品制售、冷食类食品制售"}
        session.add(licence)
        session.commit()
    report = verify(repo, code)
    assert report.sub_indication is SubIndication.HASH_FAILURE
    assert report.checks[-1].detail == "record digest differs from the repository's record"


def test_a_changed_holder_id_number_fails_the_hash() -> None:
    repo = repository()
    ident = repo.add("D3")
    code = repo.code(repo.claims(ident))
    with Session(repo.engine) as session:
        holder = session.get(Holder, 1)
        assert holder is not None
        holder.id_number = "350102199001014321"
        session.add(holder)
        session.commit()
    assert verify(repo, code).sub_indication is SubIndication.HASH_FAILURE


def test_a_corrected_holder_name_does_not_change_the_record() -> None:
    repo = repository(holder_name="张晓明")
    ident = repo.add("D4", holder_name=HOLDER_NAME)
    report = verify(repo, repo.code(repo.claims(ident)))
    assert report.indication is Indication.PASSED
    assert report.licence is not None and report.licence.holder_name == "张*明"


def test_an_organisation_is_named_in_full() -> None:
    repo = repository(holder_name="福州闽味餐饮有限公司", category="legal_person")
    ident = repo.add("O1")
    report = verify(repo, repo.code(repo.claims(ident)))
    assert report.licence is not None
    assert (report.licence.holder_name, report.licence.holder_id) == (
        "福州闽味餐饮有限公司", "350102199001011234")


STATUSES = [
    ("revoked", SubIndication.REVOKED, "已吊销 / revoked", "证照已被吊销或注销 / the licence has been revoked"),
    ("cancelled", SubIndication.REVOKED, "已注销 / cancelled", "证照已被吊销或注销 / the licence has been revoked"),
    ("suspended", SubIndication.SUSPENDED, "暂停 / suspended", "证照已暂停使用 / the licence is suspended"),
    ("superseded", SubIndication.SUPERSEDED, "已变更 / superseded by a newer version",
     "证照已变更，有更新版本 / the licence was superseded by a newer version"),
    ("void", SubIndication.SUPERSEDED, "已作废 / void (reported lost, reissued)",
     "证照已变更，有更新版本 / the licence was superseded by a newer version"),
]


@pytest.mark.parametrize(("status", "sub", "label", "message"), STATUSES,
                         ids=[s[0] for s in STATUSES])
def test_a_genuine_code_of_a_licence_no_longer_valid_fails_with_its_status(
    repo: Repository, status: str, sub: SubIndication, label: str, message: str
) -> None:
    ident = repo.add("S" + status.upper()[:6], status=status)
    code = repo.code(repo.claims(ident))
    report = verify(repo, code)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, sub, message)
    assert checks(report) == [
        *signed_checks(repo, code),
        ("repository", "passed", f"matches licence {ident}"),
        ("status", "failed", label),
    ]
    # The licence is real: the report names it, with its status, so the clerk sees why.
    assert report.to_json()["licence"] == licence_json(ident, status, label)
    assert report.to_json()["seal"] == SEAL_JSON


EXPIRED = "证照已过期 / the licence has expired"


def test_expiry_is_decided_by_the_date_in_china() -> None:
    repo = repository()
    last_day = date(2026, 3, 13)
    ident = repo.add("E1", valid_until=last_day)
    code = repo.code(repo.claims(ident, valid_until=last_day))
    # 23:59:59 on the last day in Beijing: still valid.
    still = verify(repo, code, now=datetime(2026, 3, 13, 15, 59, 59, tzinfo=UTC))
    assert still.indication is Indication.PASSED
    assert still.licence is not None and still.licence.status == "valid"
    # 00:30 the next day in Beijing, still 2026-03-13 in UTC: expired.
    after = verify(repo, code, now=datetime(2026, 3, 13, 16, 30, tzinfo=UTC))
    assert (after.indication, after.sub_indication, after.message) == (
        Indication.FAILED, SubIndication.EXPIRED, EXPIRED)
    assert after.checks[-1] == replace(after.checks[-1], name="status", detail="已过期 / expired")
    assert after.checks[-1].result.value == "failed"
    assert after.licence is not None
    assert (after.licence.status, after.licence.status_label) == ("expired", "已过期 / expired")


def test_expiry_uses_the_verifiers_clock_not_the_payloads_dates() -> None:
    repo = repository()
    last_day = date(2026, 3, 13)
    ident = repo.add("E2", valid_until=last_day)
    code = repo.code(repo.claims(ident, valid_until=last_day))
    report = verify(repo, code, now=datetime(2026, 3, 14, 15, 0, tzinfo=UTC))
    assert report.sub_indication is SubIndication.EXPIRED


def presentation_checks(repo: Repository, code: str, ident: str,
                        expires: str) -> list[tuple[str, str, str]]:
    return [
        *signed_checks(repo, code, "出示码 / presentation"),
        ("presentation", "passed", f"valid until {expires}"),
        ("repository", "passed", f"matches licence {ident}"),
        ("status", "passed", "有效 / valid"),
    ]


def test_a_presentation_within_its_window_passes(repo: Repository) -> None:
    ident = repo.add("R1")
    presented = NOW - timedelta(minutes=5)
    code = repo.code(repo.presentation(ident, presented))
    # The last second of its window.
    report = verify(repo, code, now=NOW)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.PASSED, None, GENUINE)
    assert checks(report) == presentation_checks(repo, code, ident, "2026-03-14T02:00:00+00:00")
    assert report.extra == {
        "method": "presentation", "identifier": ident,
        "presentation": {"presented_at": "2026-03-14T01:55:00+00:00",
                         "expires_at": "2026-03-14T02:00:00+00:00"},
    }


def test_an_expired_presentation_fails_as_expired_and_names_its_licence(repo: Repository) -> None:
    ident = repo.add("R2")
    code = repo.code(repo.presentation(ident, NOW - timedelta(minutes=5)))
    report = verify(repo, code, now=NOW + timedelta(seconds=1))
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, SubIndication.EXPIRED, PRESENTATION_EXPIRED)
    assert checks(report) == [
        *signed_checks(repo, code, "出示码 / presentation"),
        ("presentation", "failed", "expired at 2026-03-14T02:00:00+00:00"),
    ]
    assert report.extra["identifier"] == ident
    assert report.extra["presentation"]["expires_at"] == "2026-03-14T02:00:00+00:00"
    assert report.licence is None


def test_a_screenshot_shown_again_later_is_refused(repo: Repository) -> None:
    ident = repo.add("R3")
    code = repo.code(repo.presentation(ident, NOW))
    assert verify(repo, code, now=NOW + timedelta(minutes=1)).indication is Indication.PASSED
    again = verify(repo, code, now=NOW + timedelta(hours=2))
    assert again.sub_indication is SubIndication.EXPIRED


def test_a_presentation_dated_in_the_future_beyond_the_clock_skew_is_indeterminate(
    repo: Repository,
) -> None:
    ident = repo.add("R4")
    ahead = repo.code(repo.presentation(ident, NOW + timedelta(seconds=61)))
    report = verify(repo, ahead)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.INDETERMINATE, SubIndication.NOT_YET_VALID, FUTURE)
    assert checks(report)[-1] == (
        "presentation", "failed", "presented at 2026-03-14T02:01:01+00:00, later than now")
    # A phone up to a minute ahead is accepted.
    within = repo.code(repo.presentation(ident, NOW + timedelta(seconds=60)))
    assert verify(repo, within).indication is Indication.PASSED


def test_a_presentation_of_a_suspended_licence_fails_with_its_status(repo: Repository) -> None:
    ident = repo.add("R5", status="suspended")
    report = verify(repo, repo.code(repo.presentation(ident)))
    assert report.sub_indication is SubIndication.SUSPENDED
    assert report.extra["method"] == "presentation"


def test_the_licence_type_is_what_the_payload_says(repo: Repository) -> None:
    ident = repo.add("T1")
    code = repo.code(repo.claims(ident))
    assert verify(repo, code).extra["method"] == "qr-payload"
    code = repo.code(repo.claims(ident, type=PayloadType.PRESENTATION,
                                 expires_at=NOW + timedelta(minutes=1), nonce=b"n" * 8))
    assert verify(repo, code).extra["method"] == "presentation"


LEGACY = "ABCDEFGHIJKLMNOPQRSTUVWX"


def test_an_earlier_random_code_names_its_licence(repo: Repository) -> None:
    ident = repo.add("L1", verify_code=LEGACY)
    report = verify(repo, f"https://verify.example.gov.cn/v/{LEGACY.lower()}")
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.PASSED, None, GENUINE)
    assert checks(report) == [
        ("code", "passed", f"code names licence {ident}"),
        ("status", "passed", "有效 / valid"),
    ]
    assert report.extra == {"method": "qr-code"}
    assert report.to_json()["licence"] == licence_json(ident)
    assert report.to_json()["seal"] == SEAL_JSON


def test_an_earlier_random_code_of_a_revoked_licence_fails(repo: Repository) -> None:
    ident = repo.add("L2", status="revoked", verify_code="BCDEFGHIJKLMNOPQRSTUVWXY")
    report = verify(repo, "BCDEFGHIJKLMNOPQRSTUVWXY")
    assert (report.sub_indication, checks(report)[-1]) == (
        SubIndication.REVOKED, ("status", "failed", "已吊销 / revoked"))
    assert report.licence is not None and report.licence.identifier == ident


def test_an_unknown_random_code_fails(repo: Repository) -> None:
    report = verify(repo, "ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, SubIndication.UNKNOWN_CODE, UNKNOWN)
    assert checks(report) == [("code", "failed", "no licence has this verification code")]
    assert report.extra == {"method": "qr-code"}


def test_a_licence_whose_related_rows_are_missing_is_incomplete(repo: Repository) -> None:
    ident = repo.add("M1", seal_code="NO-SUCH-SEAL")
    with pytest.raises(NotFound) as missing:
        verify(repo, repo.code(repo.claims(ident)))
    assert missing.value.message == f"证照记录不完整 / licence {ident} is incomplete"


def test_the_channel_is_qr_unless_named(repo: Repository) -> None:
    with Session(repo.engine) as session:
        report = CodeVerifier(FixedClock(NOW), repo.keys).verify(session, "hello")
    assert report.channel == "qr"
    assert report.to_json()["channel"] == "qr"
