"""A department's statistics stay right, and stay a few bounded queries, however many licences it
has: thousands of licences (over two months and two departments), verifications and pulls by
another department, counted through ``StatisticsDesk`` on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlmodel import select

from core.clock import CHINA, FixedClock, china_today
from core.db import reading, transaction
from core.errors import NotFound
from licences.grants import LicenceGrant
from licences.models import Licence, LicenceType
from licences.pulls import LicencePull
from tests.conftest import make_settings, reset_postgres_schema
from tests.domain import Domain, build_domain, demo_domain
from tests.sql_trace import statements

MANY = 2500  # licences added to the department under test
ELSEWHERE = 300  # licences added to another department, which must not be counted
EARLIER = datetime(2025, 3, 31, 16, 30, tzinfo=UTC)  # 2025-04-01 00:30 in China
LATER = datetime(2025, 5, 10, 2, 0, tzinfo=UTC)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def domain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Domain:
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    if request.param == "sqlite":
        return demo_domain(tmp_path_factory, "stats", clock=clock)
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres_schema(url)
    settings = make_settings(tmp_path_factory.mktemp("stats-pg") / "data", database_url=url)
    return build_domain(settings, clock=clock)


def clones(model: Licence, count: int, tag: str) -> list[dict[str, Any]]:
    """``count`` licences like ``model``, half issued in April 2025 (China) and half in May."""
    rows = []
    for index in range(count):
        row = model.model_dump()
        row.update(
            identifier=f"{tag}-{index:05d}",
            serial=f"{tag}{index:05d}",
            verify_code=f"{tag}-CODE-{index:05d}",
            issued_at=(EARLIER if index % 2 else LATER) + timedelta(seconds=index),
            previous=None,
            superseded_by=None,
            status_index=None,  # each status index belongs to one licence (ux_licence_status_index)
        )
        rows.append(row)
    return rows


def crowd(domain: Domain) -> tuple[str, str]:
    """Adds the licences, verifications and pulls; returns the department's code and the name
    of the licence type its added licences have."""
    mine, other = domain.department(0)["code"], domain.department(1)["code"]
    services = domain.services
    with transaction(services.engine) as session:
        model = session.exec(select(Licence).where(Licence.issuer_code == mine)).first()
        theirs = session.exec(select(Licence).where(Licence.issuer_code == other)).first()
        assert model is not None and theirs is not None
        type_name = session.exec(
            select(LicenceType.name).where(LicenceType.code == model.type_code)
        ).one()
        session.execute(insert(Licence), clones(model, MANY, "STATS-MINE"))
        session.execute(insert(Licence), clones(theirs, ELSEWHERE, "STATS-THEIRS"))
        for index in range(25):  # verifications of the department's licences
            services.audit.append(
                session,
                actor="public",
                action="licence.verify",
                object_type="licence",
                object_id=f"STATS-MINE-{index * 97:05d}",
            )
        for index in range(7):  # and of another department's: not this department's
            services.audit.append(
                session,
                actor="public",
                action="licence.verify",
                object_type="licence",
                object_id=f"STATS-THEIRS-{index:05d}",
            )
        pulled = "STATS-MINE-00002"  # issued in May 2025
        session.add(
            LicenceGrant(
                id="STATSGRANT000001",
                identifier=pulled,
                holder_id=model.holder_id,
                department_code=other,
                service_item="000126022000-01",
                business_number="STATS-1",
                valid_until=china_today(services.clock.now()),
                created_at=LATER,
                created_by="holder:test",
            )
        )
        session.flush()
        for index, by in enumerate([other] * 12 + [mine] * 3):  # the issuer's own: not reuse
            session.add(
                LicencePull(
                    at=LATER + timedelta(minutes=index),
                    identifier=pulled,
                    holder_id=model.holder_id,
                    grant_id="STATSGRANT000001",
                    department_code=by,
                    client_id="stats",
                    service_item="000126022000-01",
                    business_number="STATS-1",
                    what="record",
                )
            )
    return mine, type_name


def test_a_department_with_many_licences_is_counted_in_a_few_bounded_queries(
    domain: Domain,
) -> None:
    desk = domain.services.statistics
    code = domain.department(0)["code"]
    before = desk.of(code).counts
    mine, type_name = crowd(domain)
    assert mine == code

    with statements(domain.services.engine) as seen:
        found = desk.of(code)
    after = found.counts
    assert found.department.code == code
    # the department and three aggregates, whatever the number of licences; no statement
    # carries a list of identifiers
    assert 3 <= len(seen) <= 4, [sql for sql, _ in seen]
    assert all(len(params or ()) <= 8 for _, params in seen), seen

    months = {m["month"]: m for m in after["months"]}
    earlier = {m["month"]: m for m in before["months"]}
    april, may = months["2025-04"], months["2025-05"]
    assert april["issued"] == earlier.get("2025-04", {}).get("issued", 0) + MANY // 2
    assert may["issued"] == earlier.get("2025-05", {}).get("issued", 0) + MANY // 2
    assert april["issued_by_type"][type_name] >= MANY // 2
    assert may["reused"] == 12  # pulls by the other department; the issuer's own are not reuse
    assert after["totals"]["issued"] == before["totals"]["issued"] + MANY
    assert after["totals"]["verified"] == before["totals"]["verified"] + 25
    assert after["totals"]["reused"] == before["totals"]["reused"] + 12
    this_month = domain.services.clock.now().astimezone(CHINA).strftime("%Y-%m")
    assert months[this_month]["verified"] >= 25

    other = domain.department(1)["code"]
    with reading(domain.services.engine) as session:
        theirs = session.exec(select(Licence.identifier).where(Licence.issuer_code == other))
        assert sum(1 for _ in theirs) >= ELSEWHERE
    assert desk.of(other).counts["totals"]["reused"] == 0


def test_an_unknown_department_has_no_statistics(domain: Domain) -> None:
    with pytest.raises(NotFound):
        domain.services.statistics.of("91350100M000100Y43")
