"""The verification report (``verify/report.py``) and its repository sections
(``verify/summary.py``): the JSON a verifier receives, the plain-words reason of each result, and
the masking of personal data, checked field by field against values written out here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session

from licences.models import Holder, Licence, LicenceType
from licences.repository import LicenceRecord
from seals.models import Department, Seal
from tests.security.licences import (
    HOLDER_ID,
    ISSUER,
    ISSUER_NAME,
    SEAL_CODE,
    SEAL_NAME,
    SEAL_SERIAL,
    TYPE_CODE,
    TYPE_NAME,
    identifier,
    repository,
)
from verify.report import (
    Check,
    CheckResult,
    DomainSummary,
    Indication,
    LicenceSummary,
    Recognition,
    Report,
    SealSummary,
    SubIndication,
    reason,
)
from verify.summary import licence_summary, seal_summary

AT = datetime(2026, 3, 14, 2, 0, 5, 250000, tzinfo=UTC)


@dataclass(frozen=True)
class Point:
    x: int
    y: tuple[int, ...]


class Opaque:
    pass


def test_a_bare_report_in_json() -> None:
    report = Report(Indication.FAILED, SubIndication.NO_SIGNATURE, "m",
                    (Check("signature", CheckResult.SKIPPED, "none"),), AT, "cli")
    assert report.to_json() == {
        "indication": "FAILED", "sub_indication": "NO_SIGNATURE", "message": "m",
        "checks": [{"name": "signature", "result": "skipped", "detail": "none"}],
        "validated_at": "2026-03-14T02:00:05.250000+00:00", "channel": "cli",
        "licence": None, "seal": None, "extra": {}, "domain": None, "recognised_as": None,
    }
    assert list(report.to_json()) == [
        "indication", "sub_indication", "message", "checks", "validated_at", "channel",
        "licence", "seal", "extra", "domain", "recognised_as",
    ]


def test_a_full_report_in_json() -> None:
    licence = LicenceSummary("L", "T", "类型", "I", "部门", "张*", "110***1234", "2024-01-01",
                             None, "valid", "有效 / valid", 2, "加注件")
    seal = SealSummary("S", "章", "部门", "01AB", "2024-01-01T00:00:00+00:00",
                       "2024-01-01T00:00:01+00:00", "02", "电子证照专用章", "I")
    opaque = Opaque()
    extra = {
        "method": "pdf",
        "nested": {"list": [1, "二", None], "tuple": (1, 2), "point": Point(1, (2, 3))},
        "when": AT,
        "day": date(2026, 3, 14),
        "enum": Indication.PASSED,
        "flag": True,
        "ratio": 0.5,
        "opaque": opaque,
        7: "int key",
    }
    report = Report(Indication.PASSED, None, "ok",
                    (Check("a", CheckResult.PASSED, "1"), Check("b", CheckResult.FAILED, "2")),
                    AT, "api-upload", licence, seal, extra,
                    DomainSummary("闽", "福建省", "ab" * 32, 7), Recognition("X001", "类型"))
    data = report.to_json()
    assert data == {
        "indication": "PASSED", "sub_indication": None, "message": "ok",
        "checks": [{"name": "a", "result": "passed", "detail": "1"},
                   {"name": "b", "result": "failed", "detail": "2"}],
        "validated_at": "2026-03-14T02:00:05.250000+00:00", "channel": "api-upload",
        "licence": {
            "identifier": "L", "type_code": "T", "type_name": "类型", "issuer_code": "I",
            "issuer_name": "部门", "holder_name": "张*", "holder_id": "110***1234",
            "valid_from": "2024-01-01", "valid_until": None, "status": "valid",
            "status_label": "有效 / valid", "version": 2, "purpose": "加注件",
        },
        "seal": {
            "seal_code": "S", "seal_name": "章", "department": "部门",
            "certificate_serial": "01AB", "signing_time": "2024-01-01T00:00:00+00:00",
            "timestamp": "2024-01-01T00:00:01+00:00", "seal_type": "02",
            "seal_type_label": "电子证照专用章", "department_code": "I",
        },
        "extra": {
            "method": "pdf",
            "nested": {"list": [1, "二", None], "tuple": (1, 2),
                       "point": {"x": 1, "y": (2, 3)}},
            "when": AT, "day": date(2026, 3, 14), "enum": Indication.PASSED, "flag": True,
            "ratio": 0.5, "opaque": opaque, 7: "int key",
        },
        "domain": {"name": "闽", "organisation": "福建省", "fingerprint": "ab" * 32,
                   "sequence": 7},
        "recognised_as": {"type_code": "X001", "type_name": "类型"},
    }
    # Containers are rebuilt, not shared with the report, and keep their kind.
    assert type(data["extra"]["nested"]["tuple"]) is tuple
    assert type(data["extra"]["nested"]["list"]) is list
    assert data["extra"]["nested"]["point"]["y"].__class__ is tuple
    assert data["extra"]["nested"] is not extra["nested"]
    assert data["extra"]["nested"]["list"] is not extra["nested"]["list"]  # type: ignore[index]
    assert data["extra"]["opaque"] is opaque
    assert data["extra"]["when"] is AT


def test_json_is_what_asdict_gives() -> None:
    from dataclasses import asdict

    extra = {"a": [{"b": (1, Point(2, ()))}], "c": {"d": None}}
    report = Report(Indication.INDETERMINATE, SubIndication.TRY_LATER, "later", (), AT, "qr",
                    extra=extra, recognised_as=Recognition("X", "Y"))
    expected = asdict(report)
    expected.update(indication="INDETERMINATE", sub_indication="TRY_LATER", checks=[],
                    validated_at=AT.isoformat())
    assert report.to_json() == expected


QR = ("qr-payload", "presentation")
PRESENTATION_EXPIRED = (
    "出示码已过期，请持证人刷新后重新出示 / this presentation code has expired; ask the holder "
    "to show a fresh one"
)
SIGNATURE_FORGED = "二维码签名无效，内容可能被伪造 / the QR code's signature is invalid; it may be forged"
RECORD_DIFFERS = "二维码内容与证照库记录不一致 / the QR content does not match the repository's record"
SEAL_INVALID = "印章签名无效 / the seal's signature is invalid"
FILE_CHANGED = "文件在盖章后被改动 / the file was changed after it was sealed"
EXPIRED = "证照已过期 / the licence has expired"
GENUINE = "证照真实有效 / the licence is genuine and valid"


@pytest.mark.parametrize(("method", "sub", "expected"), [
    ("presentation", SubIndication.EXPIRED, PRESENTATION_EXPIRED),
    ("qr-payload", SubIndication.EXPIRED, EXPIRED),
    ("pdf", SubIndication.EXPIRED, EXPIRED),
    (None, SubIndication.EXPIRED, EXPIRED),
    ("presentation", SubIndication.SIG_CRYPTO_FAILURE, SIGNATURE_FORGED),
    ("qr-payload", SubIndication.SIG_CRYPTO_FAILURE, SIGNATURE_FORGED),
    ("qr-payload", SubIndication.HASH_FAILURE, RECORD_DIFFERS),
    ("presentation", SubIndication.HASH_FAILURE, RECORD_DIFFERS),
    ("pdf", SubIndication.SIG_CRYPTO_FAILURE, SEAL_INVALID),
    ("qr-code", SubIndication.HASH_FAILURE, FILE_CHANGED),
    (None, SubIndication.HASH_FAILURE, FILE_CHANGED),
    ("qr-payload", SubIndication.REVOKED, "证照已被吊销或注销 / the licence has been revoked"),
    ("presentation", None, GENUINE),
    ("pdf", None, GENUINE),
])
def test_the_reason_is_worded_for_what_was_verified(
    method: str | None, sub: SubIndication | None, expected: str
) -> None:
    assert reason(method, sub) == expected


# ---- verify/summary.py ---------------------------------------------------------------------


def record(*, category: str = "natural_person", holder: str = "欧阳小明",
           id_number: str = HOLDER_ID, valid_until: date | None = date(2029, 5, 19),
           status: str = "valid", purpose: str | None = None,
           serial: str | None = None, seal_type: str = "02") -> LicenceRecord:
    licence = Licence(
        identifier=identifier("SUM1"), type_code=TYPE_CODE, issuer_code=ISSUER, serial="SUM1",
        version=3, holder_id=1, fields={}, valid_from=date(2024, 5, 20), valid_until=valid_until,
        status=status, issued_at=datetime(2024, 5, 20, 1, 30, tzinfo=UTC), verify_code="C",
        sha256="0" * 64, seal_code=SEAL_CODE, seal_certificate_serial=serial,
    )
    kind = LicenceType(code=TYPE_CODE, name=TYPE_NAME, authority_code=ISSUER,
                       authority_name=ISSUER_NAME, authority_level="municipal",
                       holder_category=category, holder_id_type="111", field_schema={})
    seal = Seal(code=SEAL_CODE, department_code=ISSUER, seal_type=seal_type, name=SEAL_NAME,
                certificate_serial=SEAL_SERIAL, key_ref="k", valid_from=AT, valid_until=AT,
                image_png=b"")
    department = Department(code=ISSUER, name=ISSUER_NAME, division_code="350100",
                            level="municipal")
    return LicenceRecord(licence, kind, Holder(id=1, id_type="111", id_number=id_number,
                                               name=holder), department, seal, purpose)


def test_a_persons_licence_summary_is_masked() -> None:
    summary = licence_summary(record(), date(2026, 3, 14))
    assert summary == LicenceSummary(
        identifier=identifier("SUM1"), type_code=TYPE_CODE, type_name=TYPE_NAME,
        issuer_code=ISSUER, issuer_name=ISSUER_NAME, holder_name="欧**明",
        holder_id="350***********1234", valid_from="2024-05-20", valid_until="2029-05-19",
        status="valid", status_label="有效 / valid", version=3, purpose=None,
    )


@pytest.mark.parametrize("category", ["legal_person", "other_organisation"])
def test_an_organisations_summary_is_shown_whole(category: str) -> None:
    summary = licence_summary(record(category=category, holder="福州闽味餐饮有限公司",
                                     id_number="91350100MA2XXXXX0Y"), date(2026, 3, 14))
    assert (summary.holder_name, summary.holder_id) == (
        "福州闽味餐饮有限公司", "91350100MA2XXXXX0Y")


def test_the_summary_status_is_the_status_on_the_day_given() -> None:
    last = record(valid_until=date(2026, 3, 14))
    assert licence_summary(last, date(2026, 3, 14)).status == "valid"
    after = licence_summary(last, date(2026, 3, 15))
    assert (after.status, after.status_label) == ("expired", "已过期 / expired")
    revoked = licence_summary(record(status="revoked"), date(2026, 3, 14))
    assert (revoked.status, revoked.status_label) == ("revoked", "已吊销 / revoked")


def test_an_indefinite_licence_and_a_stamped_copy() -> None:
    summary = licence_summary(record(valid_until=None, purpose="仅供办理银行开户使用"),
                              date(2090, 1, 1))
    assert summary.valid_until is None
    assert summary.status == "valid"
    assert summary.purpose == "加注件：仅供办理银行开户使用 / purpose-stamped copy, for this use only"


def test_the_seal_summary() -> None:
    assert seal_summary(record(), "2024-05-20T01:30:00+00:00") == SealSummary(
        seal_code=SEAL_CODE, seal_name=SEAL_NAME, department=ISSUER_NAME,
        certificate_serial=SEAL_SERIAL, signing_time="2024-05-20T01:30:00+00:00",
        timestamp=None, seal_type="02", seal_type_label="电子证照专用章", department_code=ISSUER,
    )
    official = seal_summary(record(serial="7F01", seal_type="01"), None, "2024-05-20T01:30:02Z")
    assert (official.certificate_serial, official.signing_time, official.timestamp) == (
        "7F01", None, "2024-05-20T01:30:02Z")
    assert (official.seal_type, official.seal_type_label) == ("01", "公章")


def test_summaries_of_a_stored_licence() -> None:
    repo = repository()
    ident = repo.add("SUM2", holder_name="张晓明")
    from licences.repository import full_record

    with Session(repo.engine) as session:
        licence = session.get(Licence, ident)
        assert licence is not None
        stored = full_record(session, licence)
        assert licence_summary(stored, date(2026, 3, 14)).holder_name == "张*明"
