"""Property-based calls against the OpenAPI document: no 5xx, responses match the schema.

Bounded (a few derandomised examples per operation) so it runs in every ``make test``. The
operations are driven through schemathesis' Python API rather than its pytest plugin.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.domain import Domain, demo_domain

pytestmark = pytest.mark.slow  # every operation of the OpenAPI document

EXAMPLES = 4
CHECKS = (not_a_server_error, response_schema_conformance, content_type_conformance)


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "schemathesis")


def test_every_operation_keeps_its_schema_and_never_fails(domain: Domain) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", domain.client.app)
    headers = domain.auth(0)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:400]}")
    assert operations >= 30
    assert failures == [], "\n\n".join(failures)
