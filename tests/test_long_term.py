"""Ten years on, with a controlled clock: the seal certificate (3 years), the seal CA (10
years) and the first TSA certificate (6 years) have expired, and a licence kept up by
`archive refresh` still verifies, offline. A copy downloaded before the refresh is still
recognised; a licence never refreshed can no longer prove when it was sealed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from core.audit import AuditEntry, verify_chain
from core.clock import FixedClock
from core.db import reading, transaction
from tests.domain import Domain, demo_domain
from trust.services import ensure_service_certificates

pytestmark = pytest.mark.slow  # ten years of refreshes

T0 = datetime.now(UTC).replace(microsecond=0)
YEAR = timedelta(days=365)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Domain, FixedClock]:
    clock = FixedClock(T0)
    return demo_domain(tmp_path_factory, "longterm", clock=clock), clock


def test_a_refreshed_licence_verifies_after_ten_years(world: tuple[Domain, FixedClock]) -> None:
    domain, clock = world
    services = domain.services
    archive = services.trust_services.archive
    kept = domain.issue(1)  # 医师执业证书: valid indefinitely
    neglected = domain.issue(1)
    first = domain.pdf(kept, 1)
    neglected_pdf = domain.pdf(neglected, 1)
    assert archive.refresh_due("test") == []  # nothing is near expiry yet

    clock.advance(5 * YEAR + timedelta(days=180))  # the first TSA certificate has months left
    with transaction(services.engine) as session:  # as `archive refresh` does first
        renewed = ensure_service_certificates(services.trust, session, "test")
    assert "tsa" in {r.name for r in renewed}
    archive.index()
    assert {kept["identifier"], neglected["identifier"]} <= set(archive.due())
    refreshed = archive.refresh(kept["identifier"], "test")
    assert refreshed.old_sha256 == kept["sha256"] != refreshed.new_sha256
    second = domain.pdf(kept, 1)
    assert second.startswith(first)  # an incremental update: the seal is untouched
    assert domain.verify_pdf(second)["indication"] == "PASSED"
    with reading(services.engine) as session:
        assert verify_chain(session).intact
        actions = session.exec(
            select(AuditEntry.action).where(AuditEntry.object_id == kept["identifier"])
        ).all()
    assert "licence.archive_timestamp" in actions

    clock.advance(4 * YEAR + timedelta(days=185))
    assert clock.now() - T0 >= 10 * YEAR
    report = domain.verify_pdf(second)
    assert report["indication"] == "PASSED", report
    checks = checks_of(report)
    assert checks["archive"]["detail"].startswith("2 document timestamp(s)")
    assert checks["timestamp"]["result"] == "passed"
    assert report["seal"]["timestamp"] is not None

    earlier = domain.verify_pdf(first)
    assert earlier["indication"] == "PASSED", earlier
    assert checks_of(earlier)["copy"]["result"] == "passed"

    lost = domain.verify_pdf(neglected_pdf)
    assert lost["indication"] == "INDETERMINATE", lost
    assert lost["sub_indication"] == "NO_POE"


def checks_of(report: dict) -> dict:  # type: ignore[type-arg]
    return {c["name"]: c for c in report["checks"]}
