"""A purpose-stamped copy's QR carries a signed copy payload with its licence's status index, so
a copy can be checked like a licence (and offline, against the status list); online it must
name a copy the repository holds, under that very code, of the licence it claims."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from licences.links import code_from_text
from licences.payload import Claims, PayloadType, decode
from licences.stamped import StampRequest
from licences.stamped_records import StampedCopy
from tests.domain import Domain, demo_domain


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "copycodes")


@pytest.fixture(scope="module")
def issued(domain: Domain) -> dict[str, Any]:
    return domain.issue()


@pytest.fixture(scope="module")
def copy(domain: Domain, issued: dict[str, Any]) -> StampedCopy:
    holder = domain.department()["sample_request"]["holder"]
    assert domain.services.stamped is not None
    return domain.services.stamped.create(
        StampRequest(
            identifier=issued["identifier"],
            id_type=holder["id_type"],
            id_number=holder["id"],
            actor="holder:copy-codes",
            purpose="公积金提取",
        )
    )


def verify(domain: Domain, text: str) -> dict[str, Any]:
    response = domain.client.post("/api/v1/verify", json={"qr": text})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_copy_code_is_signed_and_carries_its_licences_status_index(
    issued: dict[str, Any], copy: StampedCopy
) -> None:
    licence = decode(code_from_text(issued["links"]["verify"]) or "").claims
    claims = decode(copy.verify_code).claims
    assert claims.type is PayloadType.COPY and claims.copy_id == copy.id
    assert claims.identifier == issued["identifier"]
    assert licence.status_index is not None
    assert claims.status_index == licence.status_index  # a copy's status is its licence's
    assert claims.record_digest == licence.record_digest


def test_a_copy_code_verifies_online_as_that_copy(domain: Domain, copy: StampedCopy) -> None:
    report = verify(domain, domain.services.stamped.verify_url(copy))  # type: ignore[union-attr]
    assert report["indication"] == "PASSED", report
    assert report["licence"]["purpose"].startswith("加注件：仅供办理公积金提取使用")
    checks = {c["name"]: c for c in report["checks"]}
    assert f"stamped copy {copy.id}" in checks["repository"]["detail"]


def _signed_copy(domain: Domain, claims: Claims) -> str:
    return domain.services.qr_keys.sign(claims, purpose="test", listener=None)


def test_a_signed_copy_code_naming_no_stored_copy_is_not_in_the_repository(
    domain: Domain, copy: StampedCopy
) -> None:
    """Signed by the domain's own key (as a leaked or mis-issued code would be), but the copy
    it names is not in the repository under that code: FAILED, never the licence's PASSED."""
    real = decode(copy.verify_code).claims
    for copy_id in ("0123456789abcdef", copy.id):  # an unknown copy; the real one, other code
        claims = Claims(
            type=PayloadType.COPY,
            identifier=real.identifier,
            record_digest=real.record_digest,
            valid_until=real.valid_until,
            issued_at=datetime(2026, 1, 1, tzinfo=UTC),
            status_index=real.status_index,
            copy_id=copy_id,
        )
        report = verify(domain, _signed_copy(domain, claims))
        assert (report["indication"], report["sub_indication"]) == (
            "FAILED",
            "NOT_IN_REPOSITORY",
        ), report


def test_a_copy_code_of_another_licence_is_refused(
    domain: Domain, issued: dict[str, Any], copy: StampedCopy
) -> None:
    other = domain.issue()
    other_claims = decode(code_from_text(other["links"]["verify"]) or "").claims
    claims = Claims(
        type=PayloadType.COPY,
        identifier=other["identifier"],
        record_digest=other_claims.record_digest,
        valid_until=other_claims.valid_until,
        issued_at=datetime(2026, 1, 1, tzinfo=UTC),
        status_index=other_claims.status_index,
        copy_id=copy.id,  # a real copy, but of the first licence
    )
    report = verify(domain, _signed_copy(domain, claims))
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "NOT_IN_REPOSITORY")


def test_a_copy_code_without_its_copy_id_is_a_format_failure(
    domain: Domain, copy: StampedCopy
) -> None:
    real = decode(copy.verify_code).claims
    claims = Claims(
        type=PayloadType.COPY,
        identifier=real.identifier,
        record_digest=real.record_digest,
        valid_until=real.valid_until,
        issued_at=real.issued_at,
        status_index=real.status_index,
    )
    report = verify(domain, _signed_copy(domain, claims))
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "FORMAT_FAILURE")


def test_a_revoked_licences_copy_code_fails_revoked(
    domain: Domain, issued: dict[str, Any], copy: StampedCopy
) -> None:
    revoked = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/revoke",
        json={"reason": "吊销"},
        headers=domain.auth(),
    )
    assert revoked.status_code == 200, revoked.text
    report = verify(domain, copy.verify_code)
    assert (report["indication"], report["sub_indication"]) == ("FAILED", "REVOKED")


def test_a_copy_code_fits_a_version_12_qr_even_behind_a_long_host(copy: StampedCopy) -> None:
    from licences.links import verify_url
    from licences.qr import qr_matrix

    host = "https://dzzz.zwfw.example-province-government.gov.cn:8443"  # 60 characters
    assert qr_matrix(verify_url(host, copy.verify_code)).version <= 12
