"""Mutation fuzzing of a sealed licence: whatever the bytes, the verifier answers with a report
(no exception escapes), and it says PASSED only for the exact bytes it issued.

``make test`` runs a bounded number of examples; ``make fuzz`` sets ``ELICENCE_FUZZ_EXAMPLES``
for a longer run."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.domain import Domain, demo_domain

pytestmark = pytest.mark.fuzz  # many mutated licences

EXAMPLES = int(os.environ.get("ELICENCE_FUZZ_EXAMPLES", "100"))


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "fuzz")


@pytest.fixture(scope="module")
def sealed(domain: Domain) -> bytes:
    return domain.pdf(domain.issue())


# One mutation: (kind, position as a fraction of the length, a byte string).
MUTATION = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "truncate", "duplicate"]),
    st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
    st.binary(min_size=1, max_size=16),
)


def mutate(data: bytes, mutations: list[tuple[str, float, bytes]]) -> bytes:
    for kind, where, chunk in mutations:
        at = min(int(where * len(data)), max(len(data) - 1, 0))
        if kind == "replace":
            data = data[:at] + chunk + data[at + len(chunk) :]
        elif kind == "insert":
            data = data[:at] + chunk + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + len(chunk) :]
        elif kind == "truncate":
            data = data[:at]
        else:  # a copy of a slice appended, as an incremental update would add bytes
            data = data + data[at : at + 64 * len(chunk)]
    return data


def test_mutated_licences_are_never_passed(domain: Domain, sealed: bytes) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(MUTATION, min_size=1, max_size=4))
    def run(mutations: list[tuple[str, float, bytes]]) -> None:
        data = mutate(sealed, mutations)
        report = domain.services.verification.verify_pdf(data, channel="api-upload", actor="public")
        if data == sealed:
            assert report.indication.value == "PASSED"
        else:
            assert report.indication.value in ("FAILED", "INDETERMINATE"), report.checks

    run()
