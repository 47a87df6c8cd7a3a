"""bench/lta.py, the B-LTA issuance bench (issue 21): its rows are measured against a baseline
that really is PAdES B-LTA from the same service over HTTP, and a baseline that is not (no
document timestamp) is refused rather than compared; the baseline's row with asn1crypto as
released runs without the product's correction, and the correction is back after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.lta import (
    HTTP_LTA,
    IN_PROCESS_LTA,
    RAW_LTA,
    RAW_LTA_RELEASED,
    LtaDomain,
    RawLtaSealer,
    as_released,
    build_domain,
    check_baseline_output,
    lta_server,
    measure,
)

pytestmark = pytest.mark.slow  # a demo domain, an `elicence serve` and real seals


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> LtaDomain:
    return build_domain(tmp_path_factory.mktemp("lta"))


def test_the_rows_are_measured_against_the_raw_b_lta_baseline(domain: LtaDomain) -> None:
    rates, summary = measure(domain, 0.3, 1)
    by_name = {r.name: r for r in rates}
    assert set(by_name) == {RAW_LTA, RAW_LTA_RELEASED, HTTP_LTA, IN_PROCESS_LTA}
    assert all(r.n >= 1 and r.per_second > 0 for r in rates)
    assert by_name[RAW_LTA].baseline is None
    assert by_name[HTTP_LTA].baseline == by_name[IN_PROCESS_LTA].baseline == RAW_LTA
    assert by_name[RAW_LTA_RELEASED].baseline == RAW_LTA
    # the server's CPU is counted for the two rows that use it (the baseline's TSA and OCSP)
    assert by_name[RAW_LTA].server_cpu is not None and by_name[HTTP_LTA].server_cpu is not None
    assert summary["http_to_raw_lta"] == pytest.approx(
        by_name[HTTP_LTA].per_second / by_name[RAW_LTA].per_second, abs=1e-3
    )
    assert summary["http_to_raw_lta_as_released"] == pytest.approx(
        by_name[HTTP_LTA].per_second / by_name[RAW_LTA_RELEASED].per_second, abs=1e-3
    )
    assert summary["target"] == 2.0 and summary["baseline_tunings"]


def test_the_released_row_runs_without_the_correction_and_restores_it() -> None:
    from asn1crypto import core as asn1_core

    corrected = asn1_core.Sequence.__dict__["dump"]
    seen: list[object] = []

    def seal() -> bytes:
        seen.append(asn1_core.Sequence.__dict__["dump"])
        raise RuntimeError("the seal failed")

    with pytest.raises(RuntimeError, match="the seal failed"):
        as_released(seal)()
    assert seen == [corrected.__wrapped__]  # asn1crypto's own, during the call
    assert asn1_core.Sequence.__dict__["dump"] is corrected  # and the correction after it


def test_a_baseline_that_is_not_b_lta_is_refused(domain: LtaDomain, tmp_path: Path) -> None:
    with lta_server(domain):
        raw = RawLtaSealer(domain)
        try:
            lta = raw.seal()
            raw._meta["use_pades_lta"] = False  # B-LT: validation data, no document timestamp
            lt = raw.seal()
        finally:
            raw.close()
    check_baseline_output(lta)
    with pytest.raises(RuntimeError, match="B-LTA"):
        check_baseline_output(lt)
