"""Every licence status change is an outbox event written with the change, and only then.

Attacks first: a change refused half-way (a transition the table forbids, another department's
licence) leaves no event; an event names the licence, never its holder; then each change's kind
and statuses, and a scan's event that exists once however often it runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import select

from core.db import reading, transaction
from supervision import divisions
from supervision.outbox import OutboxEvent, emit
from tests.domain import Domain, demo_domain


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "outbox")


def events_of(domain: Domain, identifier: str) -> list[OutboxEvent]:
    with reading(domain.services.engine) as session:
        query = select(OutboxEvent).where(OutboxEvent.licence == identifier)
        return list(session.exec(query.order_by(OutboxEvent.id)).all())  # type: ignore[arg-type]


def post(domain: Domain, identifier: str, action: str, index: int = 0, **body: Any) -> int:
    response = domain.client.post(
        f"/api/v1/licences/{identifier}/{action}", json=body, headers=domain.auth(index)
    )
    return response.status_code


def test_a_refused_change_leaves_no_event(domain: Domain) -> None:
    identifier = domain.issue()["identifier"]
    assert post(domain, identifier, "resume") == 409  # it is not suspended
    assert post(domain, identifier, "revoke", index=1, reason="越权") == 403  # not its issuer
    assert [e.kind for e in events_of(domain, identifier)] == ["licence.issued"]


def test_an_event_names_the_licence_and_never_its_holder(domain: Domain) -> None:
    issued = domain.issue()
    holder = domain.department()["sample_request"]["holder"]
    assert post(domain, issued["identifier"], "revoke", reason="违法经营") == 200
    for event in events_of(domain, issued["identifier"]):
        text = repr(event.data)
        assert holder["id"] not in text and holder["name"] not in text
        assert "违法经营" not in text  # the reason stays with the licence's readers
        assert event.event_id.startswith("evt_") and len(event.event_id) == 28


def test_each_status_change_is_one_event_in_order(domain: Domain) -> None:
    identifier = domain.issue()["identifier"]
    assert post(domain, identifier, "suspend", reason="核查") == 200
    assert post(domain, identifier, "resume") == 200
    assert post(domain, identifier, "cancel", reason="申请注销") == 200
    events = events_of(domain, identifier)
    assert [e.kind for e in events] == [
        "licence.issued",
        "licence.suspended",
        "licence.resumed",
        "licence.cancelled",
    ]
    assert [e.data["status"] for e in events] == [
        {"from": None, "to": "valid"},
        {"from": "valid", "to": "suspended"},
        {"from": "suspended", "to": "valid"},
        {"from": "valid", "to": "cancelled"},
    ]
    assert [e.id for e in events] == sorted(e.id for e in events)  # type: ignore[type-var]
    assert all(e.audit_seq for e in events)
    code = domain.department()["code"]
    assert {e.department_code for e in events} == {code}


def test_an_amendment_retires_the_old_version_with_its_successor(domain: Domain) -> None:
    issued = domain.issue()
    fields = domain.department()["sample_request"]["fields"]
    response = domain.client.post(
        f"/api/v1/licences/{issued['identifier']}/amend",
        json={"fields": fields},
        headers=domain.auth(),
    )
    assert response.status_code == 201, response.text
    successor = response.json()["identifier"]
    [issued_event, amended] = events_of(domain, issued["identifier"])
    assert issued_event.kind == "licence.issued"
    assert amended.kind == "licence.amended"
    assert amended.data["status"] == {"from": "valid", "to": "superseded"}
    assert amended.data["successor"] == successor
    assert [e.kind for e in events_of(domain, successor)] == ["licence.issued"]


def test_a_scanned_event_exists_once(domain: Domain) -> None:
    at = datetime(2026, 12, 6, tzinfo=UTC)
    with transaction(domain.services.engine) as session:
        first = emit(session, kind="licence.expired", at=at, data={}, dedupe="expired:X")
        again = emit(session, kind="licence.expired", at=at, data={}, dedupe="expired:X")
    with transaction(domain.services.engine) as session:
        later = emit(session, kind="licence.expired", at=at, data={}, dedupe="expired:X")
    assert first is not None and again is None and later is None
    with reading(domain.services.engine) as session:
        rows = session.exec(select(OutboxEvent).where(OutboxEvent.dedupe == "expired:X")).all()
    assert len(rows) == 1


@pytest.mark.parametrize(
    ("office", "department", "covered"),
    [
        ("440000", "440305", True),  # a province covers its counties
        ("440300", "440305", True),  # a prefecture its districts
        ("440300", "440105", False),  # not another prefecture's
        ("440305", "440305", True),
        ("440305", "440306", False),
        ("000000", "110101", True),  # the national level covers all
        ("110000", "120000", False),
    ],
)
def test_an_office_covers_the_divisions_under_its_own(
    office: str, department: str, covered: bool
) -> None:
    assert divisions.covers(office, department) is covered


@pytest.mark.parametrize("bad", ["", "44", "4403050", "44030x", "４４００００"])
def test_a_malformed_division_is_refused(bad: str) -> None:
    with pytest.raises(Exception, match="six digits"):
        divisions.prefix(bad)
