"""A supervision office's figures: counted against what the test itself did (issue, verify,
revoke, suspend, cancel, grant and pull in two China months with the clock pinned), limited to
the office's division (a province office sees its prefectures' departments, a county office not
its neighbour's), and a department outside the division is a 403 that names it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.ops import demo
from core.clock import FixedClock
from tests.conftest import fresh_schema, make_settings
from tests.domain import Domain, build_domain, demo_domain
from tests.supervision_fixtures import (
    Office,
    add_department,
    add_office,
    demo_office,
    grant_and_pull,
    verify,
)

FEBRUARY = datetime(2026, 2, 20, 2, 0, tzinfo=UTC)  # 10:00 on a Friday in China
MARCH = datetime(2026, 3, 3, 1, 30, tzinfo=UTC)  # 09:30 on a Tuesday in China
# Another city of the same province, and two counties of the demo city.
ELSEWHERE = ("11350200003600015E", "示范二市市场监督管理局", "350200", "municipal")
COUNTY_A = ("11350102003600020X", "示范市鼓楼区市场监督管理局", "350102", "county")
COUNTY_B = ("11350103003600021Y", "示范市台江区市场监督管理局", "350103", "county")


def on_postgresql(url: str, tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    """A demo domain in a schema of its own (others run tests on the same server)."""
    schema = "t_supervisor"
    scoped = fresh_schema(url, schema)
    settings = make_settings(tmp_path_factory.mktemp("supfig-pg") / "data", database_url=scoped)
    return build_domain(settings, clock=clock)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def counted(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Domain, dict[str, Counter[str]]]:
    """The demo domain with this test's own actions; returns what it did per month."""
    clock = FixedClock(FEBRUARY)
    if request.param == "sqlite":
        domain = demo_domain(tmp_path_factory, "supfig", clock=clock)
    else:
        domain = on_postgresql(request.getfixturevalue("postgres_url"), tmp_path_factory, clock)
    did: dict[str, Counter[str]] = {"2026-02": Counter(), "2026-03": Counter()}
    market = domain.department(0)["code"]
    seeded = sum(1 for s in demo.SAMPLE_LICENCES if s["department"] == market)
    did["2026-02"]["issued"] += seeded  # elicence init --demo issued them at the same instant

    def act(month: str, issue: int, verify_n: int, revoke: int, pulls: int, **status: int) -> None:
        issued = [domain.issue(0) for _ in range(issue)]
        did[month]["issued"] += issue
        for licence in issued[:verify_n]:
            verify(domain, licence)
        did[month]["verified"] += verify_n
        for licence in issued[:revoke]:
            response = domain.client.post(
                f"/api/v1/licences/{licence['identifier']}/revoke",
                json={"reason": "违法经营"},
                headers=domain.auth(0),
            )
            assert response.status_code == 200, response.text
        did[month]["revoked"] += revoke
        rest = issued[revoke:]
        for action, count in status.items():
            for licence in rest[:count]:
                response = domain.client.post(
                    f"/api/v1/licences/{licence['identifier']}/{action}",
                    json={"reason": "整改"},
                    headers=domain.auth(0),
                )
                assert response.status_code == 200, response.text
            did[month][{"suspend": "suspended", "cancel": "cancelled"}[action]] += count
            rest = rest[count:]
        if pulls:
            grant_and_pull(domain, rest[0], pulls, f"SUP-{month}")
            did[month]["grants_given"] += 1
            did[month]["pulled_under_grant"] += pulls
            did[month]["reused"] += pulls

    act("2026-02", issue=6, verify_n=4, revoke=1, pulls=2, suspend=1, cancel=1)
    clock.advance(MARCH - FEBRUARY)
    act("2026-03", issue=3, verify_n=1, revoke=1, pulls=3)
    return domain, did


def figures(domain: Domain, office: Office, **params: str) -> Any:
    return domain.client.get("/api/v1/supervision/figures", params=params, headers=office.bearer)


def test_the_figures_are_the_counts_the_test_made(
    counted: tuple[Domain, dict[str, Counter[str]]],
) -> None:
    domain, did = counted
    response = figures(domain, demo_office(domain))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["months"][0] == "2025-04" and body["months"][-1] == "2026-03"
    assert len(body["months"]) == 12
    market, health = domain.department(0)["code"], domain.department(1)["code"]
    cells = {(c["month"], c["department_code"]): c for c in body["cells"]}
    for month, expected in did.items():
        cell = cells[(month, market)]
        for key in ("issued", "verified", "reused", "pulled_under_grant", "grants_given",
                    "revoked", "cancelled", "suspended", "codes_redeemed"):
            assert cell[key] == expected[key], (month, key, cell, expected)
    # The health department issued its demo licences in February and nothing after.
    seeded = sum(1 for s in demo.SAMPLE_LICENCES if s["department"] == health)
    assert cells[("2026-02", health)]["issued"] == seeded
    assert ("2026-03", health) not in cells
    # The pulls were of the market's licences by health: reuse of the market's, not health's.
    assert cells[("2026-02", health)]["reused"] == 0
    # Totals per month and department add up; the office itself is not listed as issuing.
    march = next(m for m in body["by_month"] if m["month"] == "2026-03")
    assert march["issued"] == did["2026-03"]["issued"]
    listed = [d["department_code"] for d in body["by_department"]]
    assert listed == sorted([market, health]) and demo_office(domain).code not in listed


def test_one_department_and_one_outside_the_division(
    counted: tuple[Domain, dict[str, Counter[str]]],
) -> None:
    domain, _ = counted
    office = demo_office(domain)
    market = domain.department(0)["code"]
    one = figures(domain, office, department=market).json()
    assert {c["department_code"] for c in one["cells"]} == {market}
    add_department(domain, *ELSEWHERE)
    response = figures(domain, office, department=ELSEWHERE[0])
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert ELSEWHERE[0] in problem["detail"] and problem["field"] == "department"
    # An unknown code is refused the same way: an office learns nothing of other divisions.
    unknown = figures(domain, office, department="91350100M000100Y43")
    assert unknown.status_code == 403


def test_a_province_sees_its_prefectures_and_a_county_not_its_neighbour(
    counted: tuple[Domain, dict[str, Counter[str]]],
) -> None:
    domain, _ = counted
    for spec in (COUNTY_A, COUNTY_B):
        add_department(domain, *spec)
    if domain.client.get("/api/v1/departments/" + ELSEWHERE[0]).status_code == 404:
        add_department(domain, *ELSEWHERE)
    province = add_office(domain, "11350000003600010P", "350000", "provincial")
    county = add_office(domain, "11350102003600011W", "350102", "county")
    seen = figures(domain, province).json()
    codes = {d["department_code"] for d in seen["by_department"]}
    assert {domain.department(0)["code"], domain.department(1)["code"], ELSEWHERE[0],
            COUNTY_A[0], COUNTY_B[0]} <= codes
    seen = figures(domain, county).json()
    assert {d["department_code"] for d in seen["by_department"]} == {COUNTY_A[0]}
    assert figures(domain, county, department=COUNTY_B[0]).status_code == 403
    assert figures(domain, county, department=domain.department(0)["code"]).status_code == 403


def test_a_department_credential_gets_no_figures(
    counted: tuple[Domain, dict[str, Counter[str]]],
) -> None:
    domain, _ = counted
    response = domain.client.get("/api/v1/supervision/figures", headers=domain.auth(0))
    assert response.status_code == 403
    assert "supervise" in response.json()["detail"]
    assert domain.client.get("/api/v1/supervision/figures").status_code == 401


def test_the_months_are_china_months() -> None:
    """A licence issued at 23:30 UTC on the last day of a month is the next month's in China."""
    from supervision.figures import last_months, month_start

    assert last_months(datetime(2026, 1, 5).date(), 3) == ("2025-11", "2025-12", "2026-01")
    start = month_start("2026-03")
    assert start.astimezone(UTC) == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)
    assert start - timedelta(seconds=1) < start
