"""Signed QR payloads: each failing case is a payload built for it, and none of them is PASSED."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from core.db import reading, transaction
from licences.models import Licence
from licences.payload import (
    Claims,
    PayloadError,
    PayloadType,
    _from_base32,
    decode,
    key_id,
    record_digest,
    sign,
)
from licences.qrkeys import digest_of
from licences.repository import full_record
from tests.domain import Domain, demo_domain
from verify.code import CodeVerifier


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "qr")


@pytest.fixture(scope="module")
def issued(domain: Domain) -> dict[str, Any]:
    return domain.issue()


def code_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def verify(domain: Domain, text: str) -> dict[str, Any]:
    response = domain.client.post("/api/v1/verify", json={"qr": text})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def foreign_signer(key: ec.EllipticCurvePrivateKey):  # type: ignore[no-untyped-def]
    return lambda digest: key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def claims_of(domain: Domain, issued: dict[str, Any]) -> Claims:
    return decode(code_of(issued["links"]["verify"])).claims


def test_printed_code_is_a_signed_payload_that_passes(
    domain: Domain, issued: dict[str, Any]
) -> None:
    url = issued["links"]["verify"]
    code = code_of(url)
    assert url.startswith("HTTPS://LICENCE.EXAMPLE.GOV.CN/V/")
    assert set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    signed = decode(code)
    assert signed.claims.type is PayloadType.LICENCE
    assert signed.claims.identifier == issued["identifier"]
    assert signed.claims.issuer_code == domain.department()["code"]
    assert signed.claims.version == 1
    assert signed.kid == domain.services.qr_keys.published()[0].kid
    report = verify(domain, url)
    assert report["indication"] == "PASSED", report
    assert [c["name"] for c in report["checks"]] == [
        "format",
        "key",
        "signature",
        "repository",
        "status",
    ]
    assert report["licence"]["identifier"] == issued["identifier"]
    assert report["extra"]["method"] == "qr-payload"


def test_record_digest_binds_the_repository_record(domain: Domain, issued: dict[str, Any]) -> None:
    with reading(domain.services.engine) as session:
        licence = session.get(Licence, issued["identifier"])
        assert licence is not None
        assert digest_of(full_record(session, licence)) == claims_of(domain, issued).record_digest


def test_bad_signature_is_failed(domain: Domain, issued: dict[str, Any]) -> None:
    """Same claims, same (trusted) kid, signed by an attacker's key."""
    kid = domain.services.qr_keys.published()[0].kid
    forged = sign(
        claims_of(domain, issued), kid, foreign_signer(ec.generate_private_key(ec.SECP256R1()))
    )
    report = verify(domain, forged)
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "SIG_CRYPTO_FAILURE")
    assert report["licence"] is None
    assert "签名无效" in report["message"]


def test_unknown_kid_is_indeterminate(domain: Domain, issued: dict[str, Any]) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    forged = sign(claims_of(domain, issued), key_id(other.public_key()), foreign_signer(other))
    report = verify(domain, forged)
    assert (report["indication"], report["sub_indication"]) == (
        "INDETERMINATE",
        "NO_SIGNING_CERTIFICATE_FOUND",
    )
    assert report["licence"] is None


def test_payload_edited_under_the_signature_is_failed(
    domain: Domain, issued: dict[str, Any]
) -> None:
    """Change the validity date inside the signed bytes and keep the old signature."""
    code = code_of(issued["links"]["verify"])
    raw = base64.b32decode(code + "=" * (-len(code) % 8))
    tag = cbor2.loads(raw)
    protected, _unprotected, payload, signature = tag.value
    claims = dict(cbor2.loads(payload))
    claims[5] = claims.get(5, 0) + 3650
    edited = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, cbor2.dumps(claims), signature]))
    text = base64.b32encode(edited).decode().rstrip("=")
    report = verify(domain, text)
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "SIG_CRYPTO_FAILURE")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-40],  # truncated
        lambda c: c + "AAAAAAAA",  # trailing bytes after the CBOR item
        lambda c: c[:100] + "1" + c[101:],  # not base32
        lambda c: base64.b32encode(b"\xd2\x84\x40\xa0\x40\x40").decode().rstrip("="),
        lambda c: base64.b32encode(cbor2.dumps([1, 2, 3])).decode().rstrip("=") + "A" * 10,
    ],
    ids=["truncated", "trailing", "non-base32", "empty-parts", "not-cose"],
)
def test_tampered_base32_is_failed_as_malformed(
    domain: Domain, issued: dict[str, Any], mangle: Any
) -> None:
    report = verify(domain, mangle(code_of(issued["links"]["verify"])))
    assert report["indication"] == "FAILED", report
    assert report["sub_indication"] in ("FORMAT_FAILURE", "UNKNOWN_CODE")
    assert report["licence"] is None


def test_non_canonical_base32_is_refused() -> None:
    text = base64.b32encode(b"\x00" * 6).decode().rstrip("=")  # 10 chars, 2 unused bits
    with pytest.raises(PayloadError, match="canonical"):
        decode(text[:-1] + "B")


def test_genuine_signature_over_a_wrong_record_is_failed(
    domain: Domain, issued: dict[str, Any]
) -> None:
    """Our own key signed it, but the record digest is not the repository's: never PASSED."""
    claims = claims_of(domain, issued)
    wrong = Claims(
        type=PayloadType.LICENCE,
        identifier=claims.identifier,
        record_digest=bytes(16),
        valid_until=claims.valid_until,
        issued_at=claims.issued_at,
    )
    code = domain.services.qr_keys.sign(wrong, purpose="test", listener=None)
    report = verify(domain, code)
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "HASH_FAILURE")


def test_genuine_signature_for_an_unknown_licence_is_failed(
    domain: Domain, issued: dict[str, Any]
) -> None:
    from dataclasses import replace

    from licences.identifiers import LicenceIdentifier

    real = LicenceIdentifier.parse(issued["identifier"])
    identifier = str(replace(real, serial="NOSUCHSERIAL"))
    claims = Claims(
        type=PayloadType.LICENCE,
        identifier=identifier,
        record_digest=record_digest(
            identifier=identifier,
            type_code="x",
            issuer_code="y",
            holder_id_type="111",
            holder_id="z",
            fields={},
            valid_from=date(2026, 1, 1),
            valid_until=None,
        ),
        valid_until=None,
        issued_at=datetime.now(UTC),
    )
    report = verify(domain, domain.services.qr_keys.sign(claims, purpose="test", listener=None))
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "NOT_IN_REPOSITORY")


def test_revoked_licence_is_failed_and_named(domain: Domain) -> None:
    issued = domain.issue()
    response = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/revoke",
        json={"reason": "测试吊销"},
        headers=domain.auth(),
    )
    assert response.status_code == 200, response.text
    report = verify(domain, issued["links"]["verify"])
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "REVOKED")
    assert report["licence"]["identifier"] == issued["identifier"]


def test_earlier_random_codes_still_verify(domain: Domain) -> None:
    issued = domain.issue()
    legacy = "ABCDEFGHIJKLMNOPQRSTUVWX"
    with transaction(domain.services.engine) as session:
        licence = session.exec(
            select(Licence).where(Licence.identifier == issued["identifier"])
        ).one()
        licence.verify_code = legacy
        session.add(licence)
    report = verify(domain, f"https://licence.example.gov.cn/v/{legacy.lower()}")
    assert report["indication"] == "PASSED"
    assert report["extra"]["method"] == "qr-code"
    assert domain.client.get(f"/V/{legacy}").status_code == 200


def test_sign_and_verify_are_fast(domain: Domain, issued: dict[str, Any]) -> None:
    import time

    keys = domain.services.qr_keys
    claims = claims_of(domain, issued)
    started = time.perf_counter()
    for _ in range(200):
        keys.sign(claims, purpose="bench", listener=None)
    per_sign = (time.perf_counter() - started) / 200
    code = code_of(issued["links"]["verify"])
    verifier = CodeVerifier(domain.services.clock, keys)
    with reading(domain.services.engine) as session:
        started = time.perf_counter()
        for _ in range(200):
            assert verifier.verify(session, code).indication.value == "PASSED"
        per_verify = (time.perf_counter() - started) / 200
    assert per_sign < 0.005 and per_verify < 0.02, (per_sign, per_verify)


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_mutation_of_a_genuine_code_is_passed(
    domain: Domain, issued: dict[str, Any], data: st.DataObject
) -> None:
    """Substitutions, insertions and deletions of base32 characters: never PASSED."""
    code = code_of(issued["links"]["verify"])
    position = data.draw(st.integers(0, len(code) - 1))
    kind = data.draw(st.sampled_from(["replace", "insert", "delete", "swap"]))
    char = data.draw(st.sampled_from(ALPHABET))
    if kind == "replace":
        mutated = code[:position] + char + code[position + 1 :]
    elif kind == "insert":
        mutated = code[:position] + char + code[position:]
    elif kind == "delete":
        mutated = code[:position] + code[position + 1 :]
    else:
        other = data.draw(st.integers(0, len(code) - 1))
        chars = list(code)
        chars[position], chars[other] = chars[other], chars[position]
        mutated = "".join(chars)
    verifier = CodeVerifier(domain.services.clock, domain.services.qr_keys)
    with reading(domain.services.engine) as session:
        report = verifier.verify(session, mutated)
    if mutated == code:
        assert report.indication.value == "PASSED"
    else:
        assert report.indication.value != "PASSED", (kind, position, report.checks)


def test_expiry_of_a_printed_licence_follows_the_repository(domain: Domain) -> None:
    """valid_until in the payload is for offline use; online, the repository's dates decide."""
    today = domain.services.clock.now().date()
    issued = domain.issue(
        valid_from=today.isoformat(), valid_until=(today + timedelta(days=1)).isoformat()
    )
    assert decode(code_of(issued["links"]["verify"])).claims.valid_until == today + timedelta(
        days=1
    )
    assert verify(domain, issued["links"]["verify"])["indication"] == "PASSED"


def test_printed_qr_scans_from_a_150_dpi_copy_at_version_12_or_lower(
    domain: Domain, issued: dict[str, Any], tmp_path: Path
) -> None:
    """Render the sealed page at 150 dpi, then make it worse the way a copier does (slight
    rotation, blur, JPEG); zxing must still read the exact URL, at error correction M."""
    import io
    import subprocess

    import zxingcpp
    from PIL import Image, ImageFilter

    from tests.tools import require

    pdftoppm = require("pdftoppm")
    pdf = tmp_path / "licence.pdf"
    pdf.write_bytes(domain.pdf(issued))
    subprocess.run(
        [pdftoppm, "-r", "150", "-gray", "-png", "-singlefile", str(pdf), str(tmp_path / "page")],
        check=True,
    )
    clean = Image.open(tmp_path / "page.png")
    buffer = io.BytesIO()
    clean.rotate(1.5, expand=True, fillcolor=255).filter(ImageFilter.GaussianBlur(0.7)).save(
        buffer, "JPEG", quality=60
    )
    copied = Image.open(io.BytesIO(buffer.getvalue()))
    url = issued["links"]["verify"]
    for image in (clean, copied):
        [symbol] = [
            b for b in zxingcpp.read_barcodes(image) if b.format == zxingcpp.BarcodeFormat.QRCode
        ]
        assert symbol.text == url
        assert symbol.extra["ECLevel"] == "M"
        assert int(symbol.extra["Version"]) <= 12
    # The figures the architecture page quotes: payload bytes, URL length, QR version.
    code = code_of(url)
    size = len(base64.b32decode(code + "=" * (-len(code) % 8)))
    print(
        f"payload {size} bytes, {len(code)} base32 chars, URL {len(url)}, QR v{symbol.extra['Version']}"
    )
    assert size <= 200 and int(symbol.extra["Version"]) <= 11


def test_a_long_public_host_still_fits_version_12(issued: dict[str, Any]) -> None:
    from licences.links import verify_url
    from licences.qr import qr_matrix

    code = code_of(issued["links"]["verify"])
    host = "https://dzzz.zwfw.example-province-government.gov.cn:8443"  # 60 characters
    assert qr_matrix(verify_url(host, code)).version <= 12


def test_codes_signed_before_a_key_rotation_still_verify(
    domain: Domain, issued: dict[str, Any]
) -> None:
    """Runs last in this module: it rotates the domain's QR key."""
    keys = domain.services.qr_keys
    old_kid = keys.published()[0].kid
    domain.services.keystore.rotate("qr-signing")
    keys.published(refresh=True)
    fresh = domain.issue()
    assert decode(code_of(fresh["links"]["verify"])).kid != old_kid
    assert verify(domain, fresh["links"]["verify"])["indication"] == "PASSED"
    assert verify(domain, issued["links"]["verify"])["indication"] == "PASSED"
    published = domain.client.get("/pki/qr-keys").json()["qr_keys"]
    assert [k["kid"] for k in published][1] == old_kid.hex()


def _stdlib_base32(text: str) -> bytes | None:
    """What the payload decoder accepted before it decoded in C: ``base64`` with the padding
    restored, and only the one canonical spelling."""
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        return None
    return raw if base64.b32encode(raw).decode().rstrip("=") == text else None


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_base32_decodes_every_canonical_text_as_the_standard_library(raw: bytes) -> None:
    assert _from_base32(base64.b32encode(raw).decode().rstrip("=")) == raw


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567018a=_ +-", min_size=1, max_size=24))
def test_base32_refuses_exactly_what_the_standard_library_refuses(text: str) -> None:
    expected = _stdlib_base32(text)
    if expected is None:
        with pytest.raises(PayloadError):
            _from_base32(text)
    else:
        assert _from_base32(text) == expected
