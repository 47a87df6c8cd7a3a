"""Offline QR verification (``verify/offline.py``) against trust-list files written here.

The trust lists are signed with the product's own JWS code by a small PKI made once per process
(``tests.security.federation_support``); QR payloads with the product's payload builder under that
domain's QR key. Nothing is PASSED unless the file is anchored to the pinned signer and current;
a printed licence is at best INDETERMINATE offline; expiry is measured by the date in China.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from core.errors import InvalidInput
from licences.payload import Claims, PayloadType, key_id, sign
from tests.security.federation_support import END, START, Pki, domain
from tests.security.support import NOW
from trust.trustlist import pin_from_text
from verify.offline import (
    NO_NEXT_UPDATE,
    NO_PIN,
    STALE,
    UNSIGNED,
    TrustedKeys,
    load_qr_keys,
    verify_offline,
)
from verify.offline_status import StatusSource
from verify.report import Indication, Report, SubIndication

IDENT = "1.2.156.3005.2.1135010000360001XN001.1135010000360001XN.A1.001.L"
ISSUER = "1135010000360001XN"
GENUINE = "证照真实有效 / the licence is genuine and valid"
TRY_LATER = (
    "签名真实，但离线无法确认证照当前状态，请联网核验 / genuine signature, but the current status "
    "cannot be confirmed offline; verify online"
)
NO_STATUS_LIST = (
    "未提供状态列表，离线无法确认证照当前状态，请下载状态列表（--status-list）或联网核验 / no "
    "status list: the current status cannot be confirmed offline; pass --status-list or verify "
    "online"
)
PRINTED_BEFORE_LISTS = (
    "此二维码印制于状态列表启用之前，离线无法确认当前状态，请联网核验 / this code was printed "
    "before status lists; verify online"
)
EXPIRED = "证照已过期 / the licence has expired"
UNKNOWN = "无法识别该二维码 / the code is not known to this service"
SIGNATURE_FORGED = "二维码签名无效，内容可能被伪造 / the QR code's signature is invalid; it may be forged"
UNTRUSTED_KEY = "二维码的签名密钥不在信任列表中 / the QR was signed with a key not in the trust list"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return domain("offline")


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def trusted(pki: Pki, tmp_path: Path) -> TrustedKeys:
    return load_qr_keys(write(tmp_path / "list.json", pki.document()), pki.pin)


def qr_sign(key: ec.EllipticCurvePrivateKey, claims: Claims, kid: bytes | None = None) -> str:
    return sign(claims, kid or key_id(key.public_key()),
                lambda digest: key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))))


def licence_claims(valid_until: date | None = date(2029, 5, 19)) -> Claims:
    return Claims(PayloadType.LICENCE, IDENT, bytes(range(16)), valid_until,
                  datetime(2024, 5, 20, 1, 30, tzinfo=UTC))


def presentation_claims(at: datetime = NOW - timedelta(minutes=1)) -> Claims:
    return Claims(PayloadType.PRESENTATION, IDENT, bytes(range(16)), date(2029, 5, 19), at,
                  at + timedelta(minutes=5), b"12345678")


def checks(report: Report) -> list[tuple[str, str, str]]:
    return [(c.name, c.result.value, c.detail) for c in report.checks]


def anchored(pki: Pki) -> tuple[str, str, str]:
    return ("trust_list", "passed", f"signed trust list, signer {pki.pin} as pinned")


def signed(pki: Pki, code: str, kind: str) -> list[tuple[str, str, str]]:
    return [
        anchored(pki),
        ("format", "passed", f"COSE_Sign1 ES256, {kind}, {len(code)} characters"),
        ("key", "passed", f"QR signing key {pki.kid.hex()}"),
        ("signature", "passed", "ES256 signature valid"),
    ]


# ---- the trust-list file -----------------------------------------------------------------


def test_a_signed_list_anchored_to_the_pin_gives_its_keys(pki: Pki, tmp_path: Path) -> None:
    keys = load_qr_keys(write(tmp_path / "l.json", pki.document()), pki.pin.upper())
    assert keys == TrustedKeys(
        {pki.kid: keys.keys[pki.kid]}, NOW + timedelta(days=7), signed=True, refusal=None,
        signer=pki.pin, signer_valid=(START, END),
        status=StatusSource({}, None, "https://offline.example"),  # names no status list
    )
    assert keys.keys[pki.kid].public_numbers() == pki.qr_key.public_key().public_numbers()


def test_an_unsigned_key_file_is_refused(pki: Pki, tmp_path: Path) -> None:
    keys = load_qr_keys(write(tmp_path / "k.json", {"qr_keys": [pki.qr_entry()]}), pki.pin)
    assert (keys.signed, keys.refusal, keys.signer, keys.next_update) == (
        False, (SubIndication.NO_CHAIN_FOUND, UNSIGNED), None, None)
    assert list(keys.keys) == [pki.kid]


def test_a_signed_list_without_a_pin_is_refused(pki: Pki, tmp_path: Path) -> None:
    keys = load_qr_keys(write(tmp_path / "l.json", pki.document()))
    assert (keys.signed, keys.refusal, keys.signer) == (
        True, (SubIndication.NO_CHAIN_FOUND, NO_PIN), None)
    assert list(keys.keys) == [pki.kid]


def test_a_list_of_another_signer_is_refused(pki: Pki, tmp_path: Path) -> None:
    other = domain("offline-other")
    keys = load_qr_keys(write(tmp_path / "l.json", other.document()), pki.pin)
    assert keys.refusal == (
        SubIndication.NO_CHAIN_FOUND,
        f"签名者证书指纹不符 / the signer's SHA-256 fingerprint {other.pin} is not the pinned "
        f"{pki.pin}",
    )
    assert (keys.signed, keys.signer, keys.next_update) == (True, None, None)
    assert list(keys.keys) == [other.kid]


def test_an_altered_list_is_refused(pki: Pki, tmp_path: Path) -> None:
    forger = ec.generate_private_key(ec.SECP256R1())
    document = pki.document()
    document["qr_keys"].append(pki.qr_entry(forger))
    keys = load_qr_keys(write(tmp_path / "l.json", document), pki.pin)
    assert keys.refusal == (
        SubIndication.NO_CHAIN_FOUND,
        "信任列表签名无效（已被改动或伪造） / the trust list's signature does not verify "
        "(altered or forged)",
    )


def test_a_list_without_next_update_cannot_be_known_current(pki: Pki, tmp_path: Path) -> None:
    body = pki.body()
    del body["next_update"]
    keys = load_qr_keys(write(tmp_path / "l.json", pki.sign(body)), pki.pin)
    assert keys.refusal == (SubIndication.TRY_LATER, NO_NEXT_UPDATE)
    assert (keys.signed, keys.signer) == (True, None)
    assert list(keys.keys) == [pki.kid]


def test_a_malformed_signed_list_is_refused(pki: Pki, tmp_path: Path) -> None:
    keys = load_qr_keys(write(tmp_path / "l.json", pki.document(format="other")), pki.pin)
    assert keys.refusal is not None
    assert keys.refusal[0] is SubIndication.NO_CHAIN_FOUND
    assert keys.refusal[1].startswith("不支持的信任列表格式 / format 'other' is not ")


@pytest.mark.parametrize(("content", "error"), [
    ("{not json", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ('{"signature": {}}', "'qr_keys'"),
    ('{"qr_keys": {}}', "qr_keys is not a list"),
    ('{"qr_keys": [1]}', "'int' object has no attribute 'get'"),
])
def test_an_unreadable_file_is_bad_input(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput) as refused:
        load_qr_keys(path, "0" * 64)
    assert refused.value.message == f"无法读取信任列表 / cannot read the trust list {path}: {error}"
    assert refused.value.field == "trust-list"


def test_a_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as refused:
        load_qr_keys(tmp_path / "none.json")
    assert refused.value.message.startswith(
        f"无法读取信任列表 / cannot read the trust list {tmp_path / 'none.json'}: [Errno 2]")


def test_a_key_listed_under_another_kid_is_bad_input(pki: Pki, tmp_path: Path) -> None:
    entry = {**pki.qr_entry(), "kid": "00" * 8}
    path = write(tmp_path / "k.json", {"qr_keys": [entry]})
    with pytest.raises(InvalidInput) as refused:
        load_qr_keys(path)
    assert refused.value.message == (
        f"无法读取信任列表 / cannot read the trust list {path}: kid 0000000000000000 does not "
        "match its key")


def test_keys_of_other_algorithms_are_left_out(pki: Pki, tmp_path: Path) -> None:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key() \
        .public_bytes(serialization.Encoding.PEM,
                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    entries = [
        {**pki.qr_entry(), "alg": "ES384"},
        {"kid": "11" * 8, "alg": "ES256", "public_key_pem": rsa_pem},
        {"kid": "22" * 8, "public_key_pem": "not read"},
        pki.qr_entry(),
    ]
    keys = load_qr_keys(write(tmp_path / "k.json", {"qr_keys": entries}))
    assert list(keys.keys) == [pki.kid]


@pytest.mark.parametrize(("text", "pin"), [
    ("AB" * 32, "ab" * 32),
    (" " + ":".join(["AB"] * 32) + "\n", "ab" * 32),
    ("0123456789abcdef" * 4, "0123456789abcdef" * 4),
])
def test_a_pin_is_a_sha256_in_hex(text: str, pin: str) -> None:
    assert pin_from_text(text) == pin


@pytest.mark.parametrize("text", ["ab" * 31, "ab" * 33, "g" * 64, "", "ab" * 32 + "\nab"])
def test_anything_else_is_not_a_pin(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        pin_from_text(text)
    assert refused.value.message == (
        "指纹须为64位十六进制SHA-256 / --fingerprint must be a SHA-256 in 64 hex digits")
    assert refused.value.field == "fingerprint"


# ---- verification --------------------------------------------------------------------------


def test_a_presentation_within_its_window_passes_offline(pki: Pki, trusted: TrustedKeys) -> None:
    code = qr_sign(pki.qr_key, presentation_claims())
    report = verify_offline(f"HTTPS://VERIFY.EXAMPLE/V/{code}", trusted, NOW)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.PASSED, None, GENUINE)
    assert checks(report) == [
        *signed(pki, code, "出示码 / presentation"),
        ("presentation", "passed", "valid until 2026-03-14T02:04:00+00:00"),
        ("status", "passed", "valid when presented (checked by the service when minted)"),
    ]
    assert report.to_json() == {
        "indication": "PASSED", "sub_indication": None, "message": GENUINE,
        "checks": [{"name": n, "result": r, "detail": d} for n, r, d in checks(report)],
        "validated_at": "2026-03-14T02:00:00+00:00", "channel": "cli",
        "licence": None, "seal": None, "domain": None, "recognised_as": None,
        "extra": {
            "method": "presentation", "identifier": IDENT,
            "presentation": {"presented_at": "2026-03-14T01:59:00+00:00",
                             "expires_at": "2026-03-14T02:04:00+00:00"},
            "claims": {"type": "presentation", "identifier": IDENT, "issuer_code": ISSUER,
                       "version": 1, "valid_until": "2029-05-19",
                       "issued_at": "2026-03-14T01:59:00+00:00",
                       "expires_at": "2026-03-14T02:04:00+00:00", "status_index": None},
            "offline": True,
        },
    }


def test_an_expired_presentation_fails_offline(pki: Pki, trusted: TrustedKeys) -> None:
    code = qr_sign(pki.qr_key, presentation_claims(NOW - timedelta(minutes=10)))
    report = verify_offline(code, trusted, NOW, channel="app")
    assert (report.indication, report.sub_indication, report.channel) == (
        Indication.FAILED, SubIndication.EXPIRED, "app")
    assert checks(report)[-1] == ("presentation", "failed", "expired at 2026-03-14T01:55:00+00:00")
    assert report.extra["offline"] is True and "claims" not in report.extra


def test_a_printed_licence_within_its_dates_is_indeterminate_without_a_status_list(
    pki: Pki, trusted: TrustedKeys
) -> None:
    code = qr_sign(pki.qr_key, replace(licence_claims(), status_index=42))
    report = verify_offline(code, trusted, NOW)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.INDETERMINATE, SubIndication.TRY_LATER, NO_STATUS_LIST)
    assert checks(report) == [
        *signed(pki, code, "证照码 / licence"),
        ("validity", "passed", "within its validity dates"),
        ("status", "failed", "no status list"),
    ]
    assert report.extra == {
        "method": "qr-payload", "identifier": IDENT, "offline": True,
        "claims": {"type": "licence", "identifier": IDENT, "issuer_code": ISSUER, "version": 1,
                   "valid_until": "2029-05-19", "issued_at": "2024-05-20T01:30:00+00:00",
                   "expires_at": None, "status_index": 42},
    }


def test_a_code_printed_before_status_lists_is_indeterminate_offline(
    pki: Pki, trusted: TrustedKeys
) -> None:
    code = qr_sign(pki.qr_key, licence_claims())
    report = verify_offline(code, trusted, NOW)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.INDETERMINATE, SubIndication.TRY_LATER, PRINTED_BEFORE_LISTS)
    assert checks(report)[-1] == ("status", "failed", "no status index")
    assert report.extra["claims"]["status_index"] is None


def test_a_printed_licence_without_an_end_date_is_indeterminate(
    pki: Pki, trusted: TrustedKeys
) -> None:
    report = verify_offline(qr_sign(pki.qr_key, licence_claims(None)), trusted, NOW)
    assert report.sub_indication is SubIndication.TRY_LATER
    assert report.extra["claims"]["valid_until"] is None


def test_a_printed_licence_expires_by_the_date_in_china(pki: Pki, tmp_path: Path) -> None:
    code = qr_sign(pki.qr_key, licence_claims(date(2026, 3, 13)))
    keys = load_qr_keys(write(tmp_path / "l.json", pki.document()), pki.pin)
    last_minute = datetime(2026, 3, 13, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Beijing
    assert verify_offline(code, keys, last_minute).sub_indication is SubIndication.TRY_LATER
    after = verify_offline(code, keys, datetime(2026, 3, 13, 16, 0, tzinfo=UTC))
    assert (after.indication, after.sub_indication, after.message) == (
        Indication.FAILED, SubIndication.EXPIRED, EXPIRED)
    assert checks(after)[-1] == ("validity", "failed", "valid until 2026-03-13")


def test_a_forged_code_fails_offline(pki: Pki, trusted: TrustedKeys) -> None:
    forger = ec.generate_private_key(ec.SECP256R1())
    report = verify_offline(qr_sign(forger, licence_claims(), kid=pki.kid), trusted, NOW)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, SubIndication.SIG_CRYPTO_FAILURE, SIGNATURE_FORGED)
    assert report.extra == {"method": "qr-payload", "offline": True}
    unknown = verify_offline(qr_sign(forger, licence_claims()), trusted, NOW)
    assert (unknown.indication, unknown.sub_indication, unknown.message) == (
        Indication.INDETERMINATE, SubIndication.NO_SIGNING_CERTIFICATE_FOUND, UNTRUSTED_KEY)


def test_text_that_is_no_code_fails_and_a_random_code_needs_the_server(
    trusted: TrustedKeys,
) -> None:
    report = verify_offline("https://evil.example/x", trusted, NOW)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.FAILED, SubIndication.UNKNOWN_CODE, UNKNOWN)
    detail = "not a signed QR payload; earlier random codes can only be checked online"
    assert checks(report)[1:] == [("format", "failed", detail)]
    legacy = verify_offline("ABCDEFGHIJKLMNOPQRSTUVWX", trusted, NOW)
    assert (legacy.indication, legacy.sub_indication, legacy.message) == (
        Indication.INDETERMINATE, SubIndication.TRY_LATER, TRY_LATER)
    assert checks(legacy)[1:] == [("format", "failed", detail)]
    assert legacy.extra == {"offline": True}


@pytest.mark.parametrize(("document", "pinned", "sub", "reason"), [
    ("unsigned", True, SubIndication.NO_CHAIN_FOUND, UNSIGNED),
    ("signed", False, SubIndication.NO_CHAIN_FOUND, NO_PIN),
    ("no-next-update", True, SubIndication.TRY_LATER, NO_NEXT_UPDATE),
])
def test_nothing_is_passed_from_a_list_not_anchored_to_the_pin(
    pki: Pki, tmp_path: Path, document: str, pinned: bool, sub: SubIndication, reason: str
) -> None:
    if document == "unsigned":
        content = {"qr_keys": [pki.qr_entry()]}
    else:
        content = pki.document()
        if document == "no-next-update":
            body = pki.body()
            del body["next_update"]
            content = pki.sign(body)
    keys = load_qr_keys(write(tmp_path / "l.json", content), pki.pin if pinned else None)
    report = verify_offline(qr_sign(pki.qr_key, presentation_claims()), keys, NOW)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.INDETERMINATE, sub, reason)
    assert checks(report) == [("trust_list", "failed", reason)]
    assert report.extra == {"offline": True}


def test_a_stale_list_is_not_trusted(pki: Pki, tmp_path: Path) -> None:
    keys = load_qr_keys(write(tmp_path / "l.json", pki.document(
        next_update=NOW + timedelta(minutes=1))), pki.pin)
    code = qr_sign(pki.qr_key, presentation_claims())
    assert verify_offline(code, keys, NOW).indication is Indication.PASSED
    report = verify_offline(code, keys, NOW + timedelta(minutes=1))
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.INDETERMINATE, SubIndication.TRY_LATER, STALE)
    assert checks(report) == [(
        "trust_list", "failed",
        "out of date since 2026-03-14T02:01:00+00:00; download a fresh one")]


SIGNER_INVALID = "信任列表签名证书不在有效期内 / the trust-list signer certificate is not valid now"


def test_a_signer_certificate_out_of_its_validity_is_not_trusted(pki: Pki) -> None:
    keys = {pki.kid: pki.qr_key.public_key()}
    code = qr_sign(pki.qr_key, presentation_claims())
    window = (NOW - timedelta(days=1), NOW + timedelta(days=1))
    good = TrustedKeys(keys, NOW + timedelta(hours=1), True, None, "f" * 64, window)
    assert verify_offline(code, good, NOW).indication is Indication.PASSED
    for not_before, not_after in [(NOW, NOW + timedelta(days=1)), (NOW - timedelta(days=1), NOW)]:
        edge = TrustedKeys(keys, NOW + timedelta(hours=1), True, None, "f" * 64,
                           (not_before, not_after))
        assert verify_offline(code, edge, NOW).indication is Indication.PASSED
    for not_before, not_after in [(NOW + timedelta(seconds=1), END),
                                  (START, NOW - timedelta(seconds=1))]:
        outside = TrustedKeys(keys, NOW + timedelta(hours=1), True, None, "f" * 64,
                              (not_before, not_after))
        report = verify_offline(code, outside, NOW)
        assert (report.indication, report.sub_indication, report.message) == (
            Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND, SIGNER_INVALID)
        assert checks(report) == [("trust_list", "failed", SIGNER_INVALID)]


@pytest.mark.parametrize("missing", ["signer", "signer_valid", "next_update"])
def test_keys_without_an_anchor_are_not_trusted(pki: Pki, missing: str) -> None:
    values: dict[str, Any] = {
        "next_update": NOW + timedelta(hours=1), "signed": True, "signer": "f" * 64,
        "signer_valid": (START, END), missing: None,
    }
    keys = TrustedKeys({pki.kid: pki.qr_key.public_key()}, **values)
    report = verify_offline(qr_sign(pki.qr_key, presentation_claims()), keys, NOW)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND, NO_PIN)
    assert checks(report) == [("trust_list", "failed", NO_PIN)]
