"""The attack corpus (tests/corpus.py) against the verifier: nothing is PASSED, each file gets
the indication it should, a fault never escapes as an exception, and the worker limits hold."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.corpus import ATTACKS, Attack
from tests.domain import Domain, demo_domain
from verify.isolation import Inspector, Limits
from verify.report import Indication


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "corpus")


@pytest.fixture(scope="module")
def sealed(domain: Domain) -> bytes:
    return domain.pdf(domain.issue())


def _verify(domain: Domain, data: bytes) -> dict[str, Any]:
    report = domain.services.verification.verify_pdf(data, channel="api-upload", actor="public")
    return report.to_json()


def test_the_genuine_licence_passes(domain: Domain, sealed: bytes) -> None:
    assert _verify(domain, sealed)["indication"] == "PASSED"


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_not_passed(domain: Domain, sealed: bytes, attack: Attack) -> None:
    data = attack.build(sealed)
    assert data != sealed
    report = _verify(domain, data)
    assert report["indication"] != "PASSED"
    assert report["indication"] in attack.expected, report
    if attack.sub is not None:
        assert report["sub_indication"] in attack.sub, report
    failed = [c for c in report["checks"] if c["result"] == "failed"]
    assert failed and failed[-1]["detail"], report  # a named check says why
    assert report["licence"] is None or report["indication"] == "FAILED"


def test_active_content_is_named(domain: Domain, sealed: bytes) -> None:
    attack = next(a for a in ATTACKS if a.name == "javascript")
    report = _verify(domain, attack.build(sealed))
    (check,) = report["checks"]
    assert check["name"] == "active_content"
    assert "contains" in check["detail"] and "licence never does" in check["detail"]


def test_oversized_upload_is_limit_exceeded(domain: Domain) -> None:
    limit = domain.services.verification.max_bytes
    report = _verify(domain, b"%PDF-1.7\n" + b"\0" * limit)
    assert (report["indication"], report["sub_indication"]) == ("INDETERMINATE", "LIMIT_EXCEEDED")


@pytest.mark.slow
def test_cpu_and_wall_clock_limits_end_the_worker() -> None:
    """A child that spins is killed by RLIMIT_CPU or the wall clock, and answers in time."""
    import verify.isolation as isolation

    inspector = Inspector(Limits(cpu_seconds=1, wall_seconds=3, workers=1))
    start = time.monotonic()
    found = inspector._run(b"spin", time.monotonic() + 3, target=isolation._spin)
    assert time.monotonic() - start < 5
    assert (found.indication, found.sub) == (
        Indication.INDETERMINATE,
        isolation.SubIndication.LIMIT_EXCEEDED,
    )
    # The next upload gets a fresh worker and a normal answer.
    assert inspector.inspect(b"not a pdf").check == "format"


def test_memory_limit_is_limit_exceeded() -> None:
    import verify.isolation as isolation

    inspector = Inspector(Limits(memory_bytes=512 * 1024 * 1024, wall_seconds=10, workers=1))
    found = inspector._run(b"eat", time.monotonic() + 10, target=isolation._eat)
    assert (found.indication, found.sub) == (
        Indication.INDETERMINATE,
        isolation.SubIndication.LIMIT_EXCEEDED,
    )
