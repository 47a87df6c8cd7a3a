"""Objections (错录申诉): a holder flags a field of their licence as wrong; the issuing department
amends it (a new sealed version) or rejects it with a reason; the supervisor sees the figures
and the overdue alert.

Attack first: another holder, another department, an answer given twice, a comment hiding bidi
or control characters, a revoked licence, a form without its CSRF token; then the whole loop
over HTTP with a real sign-in, the masking of the department's queue, the audit entries, the
supervisor's figures and the overdue alert under a pinned clock; revision 0026 against the
model on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import Session, SQLModel, col, select

from api.ops import demo
from core.audit import AuditEntry
from core.clock import FixedClock, china_today
from core.errors import Conflict, InvalidInput, NotFound
from licences.grants import HolderKey
from licences.objection_records import LicenceObjection
from migrations.runner import alembic_config
from supervision.alert_records import Alert
from tests.conftest import fresh_schema
from tests.domain import demo_domain
from tests.holder_login import CHEN, WANG, HolderSite, csrf_token, sign_in, start_site

HEALTH = demo.HEALTH["code"]
MARKET = demo.MARKET["code"]
OFFICE = demo.SUPERVISION_OFFICE["code"]
TABLE = "licence_objection"
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: shows one text, stores another


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
    with start_site(tmp_path_factory.mktemp("objections") / "data") as built:
        yield built


def auth(site: HolderSite, code: str) -> dict[str, str]:
    for index, department in enumerate(site.credentials["departments"]):
        if department["code"] == code:
            return site.auth(index)
    raise KeyError(code)


def issue_to_chen(site: HolderSite, **fields: str) -> str:
    """A fresh physician's licence for 陈建华, issued by the health commission."""
    sample = demo.sample_request(HEALTH, china_today(datetime.now(UTC)))
    body = sample | {"fields": sample["fields"] | fields, "valid_from": None}
    answer = site.client.post("/api/v1/licences", json=body, headers=auth(site, HEALTH))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["identifier"])


def raise_objection(client: httpx.Client, identifier: str, **body: Any) -> httpx.Response:
    payload = {"field": "workplace", "comment": "执业地点登记错了"} | body
    return client.post(f"/api/v1/holder/licences/{identifier}/objections", json=payload)


def audit_actions(site: HolderSite, objection_id: str) -> list[tuple[str, dict[str, Any]]]:
    with Session(site.services.engine) as session:
        rows = session.exec(
            select(AuditEntry)
            .where(AuditEntry.object_id == objection_id)
            .order_by(col(AuditEntry.seq))
        ).all()
        return [(row.action, dict(row.detail)) for row in rows]


# -- attacks -----------------------------------------------------------------------------------


def test_another_holder_cannot_object_to_a_licence_that_is_not_theirs(site: HolderSite) -> None:
    identifier = issue_to_chen(site)
    with closing(sign_in(site.base_url, WANG)) as wang:
        theirs = raise_objection(wang, identifier)
        listed = wang.get("/api/v1/holder/objections").json()["items"]
        page = wang.get(f"/me/licences/{identifier}/objections")
    assert theirs.status_code == 404, theirs.text
    assert theirs.json()["detail"] == f"证照不存在 / no licence {identifier}"  # as for none
    assert theirs.json().get("field") == "identifier"
    assert identifier not in str(listed)
    assert page.status_code == 404 and "执业地点" not in page.text
    with Session(site.services.engine) as session:
        stored = session.exec(
            select(LicenceObjection).where(LicenceObjection.identifier == identifier)
        )
        assert list(stored) == []


@pytest.mark.parametrize(
    ("comment", "problem"),
    [
        (f"地点{RLO}院医一第", "bidi"),
        ("地点\u0007错误", "control"),
        ("地点\u200b错误", "bidi"),  # zero-width space: a format character too
        ("x" * 501, "1 to 500"),
        ("   ", "1 to 500"),
    ],
)
def test_a_comment_with_bidi_or_control_characters_or_out_of_bounds_is_refused(
    site: HolderSite, comment: str, problem: str
) -> None:
    identifier = issue_to_chen(site)
    with closing(sign_in(site.base_url, CHEN)) as chen:
        answer = raise_objection(chen, identifier, comment=comment)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "comment" and problem in answer.json()["detail"]
    with Session(site.services.engine) as session:
        stored = session.exec(
            select(LicenceObjection).where(LicenceObjection.identifier == identifier)
        )
        assert list(stored) == []


def test_a_proposed_value_and_a_field_are_checked_too(site: HolderSite) -> None:
    identifier = issue_to_chen(site)
    with closing(sign_in(site.base_url, CHEN)) as chen:
        bidi = raise_objection(chen, identifier, proposed=f"示范{RLO}院医")
        unknown = raise_objection(chen, identifier, field="salary")
    assert (bidi.status_code, bidi.json()["field"]) == (422, "proposed")
    assert (unknown.status_code, unknown.json()["field"]) == (422, "field")
    assert "salary" in unknown.json()["detail"]


def test_one_open_objection_per_licence_and_field(site: HolderSite) -> None:
    identifier = issue_to_chen(site)
    with closing(sign_in(site.base_url, CHEN)) as chen:
        first = raise_objection(chen, identifier)
        again = raise_objection(chen, identifier, comment="再说一次")
        other_field = raise_objection(chen, identifier, field="scope", comment="范围不对")
    assert first.status_code == 201, first.text
    assert again.status_code == 409 and again.json()["field"] == "field"
    assert other_field.status_code == 201


def test_an_objection_to_a_revoked_licence_is_a_conflict_naming_its_status(
    site: HolderSite,
) -> None:
    """409, not 422: the request is well formed, but the licence's state rules it out — a
    revoked licence can no longer be amended, so no answer could correct it."""
    identifier = issue_to_chen(site)
    revoked = site.client.post(
        f"/api/v1/licences/{identifier}/revoke",
        json={"reason": "吊销测试"},
        headers=auth(site, HEALTH),
    )
    assert revoked.status_code == 200, revoked.text
    with closing(sign_in(site.base_url, CHEN)) as chen:
        answer = raise_objection(chen, identifier)
        page = chen.get(f"/me/licences/{identifier}/objections")
    assert answer.status_code == 409, answer.text
    assert answer.json()["current_status"] == "revoked"
    assert 'id="not-live"' in page.text and 'id="send-objection"' not in page.text


def test_another_department_sees_nothing_and_cannot_answer(site: HolderSite) -> None:
    identifier = issue_to_chen(site)
    with closing(sign_in(site.base_url, CHEN)) as chen:
        objection = raise_objection(chen, identifier).json()
    market = auth(site, MARKET)
    queue = site.client.get("/api/v1/objections?state=open", headers=market).json()["items"]
    assert objection["id"] not in {item["id"] for item in queue}
    for method, path, body in (
        ("GET", f"/api/v1/objections/{objection['id']}", None),
        ("POST", f"/api/v1/objections/{objection['id']}/amend", {"value": "别处"}),
        ("POST", f"/api/v1/objections/{objection['id']}/reject", {"reason": "不改"}),
    ):
        answer = site.client.request(method, path, json=body, headers=market)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["field"] == "id"
    current = site.client.get(f"/api/v1/objections/{objection['id']}", headers=auth(site, HEALTH))
    assert current.json()["state"] == "open"  # nothing the other department did stuck
    no_scope = site.client.get("/api/v1/objections")
    assert no_scope.status_code == 401


def test_a_department_answering_twice_gets_409_and_no_second_version(site: HolderSite) -> None:
    identifier = issue_to_chen(site)
    with closing(sign_in(site.base_url, CHEN)) as chen:
        objection = raise_objection(chen, identifier, proposed="示范市第二医院").json()
    health = auth(site, HEALTH)
    url = f"/api/v1/objections/{objection['id']}"
    first = site.client.post(f"{url}/amend", json={}, headers=health)
    assert first.status_code == 201, first.text
    again = site.client.post(f"{url}/amend", json={"value": "示范市第三医院"}, headers=health)
    rejected = site.client.post(f"{url}/reject", json={"reason": "迟到的拒绝"}, headers=health)
    assert again.status_code == 409 and again.json()["current_state"] == "amended"
    assert rejected.status_code == 409 and rejected.json()["current_state"] == "amended"
    successor = first.json()["amended_identifier"]
    newer = site.client.get(f"/api/v1/licences/{successor}", headers=health).json()
    assert newer["status"] == "valid" and newer["fields"]["workplace"] == "示范市第二医院"
    assert newer.get("superseded_by") in (None, "")  # the second answer made no third version


def test_a_rejection_needs_a_plain_reason(site: HolderSite) -> None:
    identifier = issue_to_chen(site)
    with closing(sign_in(site.base_url, CHEN)) as chen:
        objection = raise_objection(chen, identifier).json()
    url = f"/api/v1/objections/{objection['id']}/reject"
    health = auth(site, HEALTH)
    for reason, problem in (("", "1 to 500"), (f"原{RLO}因", "bidi"), ("y" * 501, "1 to 500")):
        answer = site.client.post(url, json={"reason": reason}, headers=health)
        assert (answer.status_code, answer.json()["field"]) == (422, "reason"), answer.text
        assert problem in answer.json()["detail"]
    still = site.client.get(f"/api/v1/objections/{objection['id']}", headers=health).json()
    assert still["state"] == "open"


def test_an_amendment_without_a_value_names_what_is_missing(site: HolderSite) -> None:
    identifier = issue_to_chen(site)
    with closing(sign_in(site.base_url, CHEN)) as chen:
        objection = raise_objection(chen, identifier).json()  # no proposed value
    answer = site.client.post(
        f"/api/v1/objections/{objection['id']}/amend", json={}, headers=auth(site, HEALTH)
    )
    assert answer.status_code == 422 and answer.json()["field"] == "value"
    licence = site.client.get(f"/api/v1/licences/{identifier}", headers=auth(site, HEALTH))
    assert licence.json()["status"] == "valid"  # nothing amended


def test_the_form_needs_its_csrf_token_and_keeps_what_was_entered(site: HolderSite) -> None:
    identifier = issue_to_chen(site)
    with closing(sign_in(site.base_url, CHEN)) as chen:
        chen.headers.pop("X-CSRF-Token", None)
        form = {"field": "workplace", "comment": "地点不对"}
        forged = chen.post(f"/me/licences/{identifier}/objections", data=form)
        token = csrf_token(chen)
        bad = chen.post(
            f"/me/licences/{identifier}/objections",
            data={"csrf": token, "field": "workplace", "comment": f"地点{RLO}不对"},
        )
        good = chen.post(
            f"/me/licences/{identifier}/objections",
            data={"csrf": token, "field": "workplace", "comment": "地点不对", "proposed": "新院"},
        )
    assert forged.status_code == 403
    assert bad.status_code == 422 and 'id="error"' in bad.text and "bidi" in bad.text
    assert 'name="comment"' in bad.text
    assert good.status_code == 200 and 'id="notice"' in good.text
    assert good.url.path == f"/me/licences/{identifier}/objections"
    assert '待处理 / <span lang="en">open</span>' in good.text and "新院" in good.text


# -- the whole loop ----------------------------------------------------------------------------


def test_holder_flags_department_amends_holder_sees_the_new_version(site: HolderSite) -> None:
    identifier = issue_to_chen(site, workplace="示范市第一医院")
    health = auth(site, HEALTH)
    with closing(sign_in(site.base_url, CHEN)) as chen:
        raised = raise_objection(
            chen,
            identifier,
            comment="我已调至第二医院，登记仍为第一医院",
            proposed="示范市第二医院",
        )
        assert raised.status_code == 201, raised.text
        objection = raised.json()
        assert objection["state"] == "open" and objection["field_title"] == "执业地点"
        assert "holder_id" not in objection  # the holder's own view carries no masked copy

        queue = site.client.get("/api/v1/objections?state=open", headers=health).json()["items"]
        mine = next(item for item in queue if item["id"] == objection["id"])
        assert mine["holder_id"] == "350***********0034"  # masked: region and last four
        assert CHEN not in str(queue)
        assert mine["holder_name"] == "陈建华"  # as the department's own licence shows it
        assert mine["comment"] == "我已调至第二医院，登记仍为第一医院"

        amended = site.client.post(
            f"/api/v1/objections/{objection['id']}/amend", json={}, headers=health
        )
        assert amended.status_code == 201, amended.text
        successor = amended.json()["amended_identifier"]
        assert amended.json()["state"] == "amended" and successor != identifier

        mine_now = chen.get("/api/v1/holder/objections").json()["items"]
        answered = next(item for item in mine_now if item["id"] == objection["id"])
        assert (answered["state"], answered["amended_identifier"]) == ("amended", successor)
        new_version = chen.get(f"/api/v1/holder/licences/{successor}").json()
        assert {"label": "执业地点", "value": "示范市第二医院"} in new_version["fields"]
        old = chen.get(f"/api/v1/holder/licences/{identifier}").json()
        assert old["status"] == "superseded"
        page = chen.get(f"/me/licences/{identifier}")
        listing = chen.get("/me/objections")
    assert (
        'id="licence-objections"' in page.text and f'href="/me/licences/{successor}"' in page.text
    )
    assert '已更正 / <span lang="en">amended</span>' in listing.text and successor in listing.text
    queue_after = site.client.get("/api/v1/objections?state=open", headers=health).json()
    assert objection["id"] not in {item["id"] for item in queue_after["items"]}
    actions = audit_actions(site, objection["id"])
    assert [a for a, _ in actions] == ["objection.raise", "objection.amend"]
    raise_detail, amend_detail = actions[0][1], actions[1][1]
    assert raise_detail["field"] == "workplace" and "comment_sha256" in raise_detail
    assert "第二医院" not in str(raise_detail)  # the comment's words are not in the audit
    assert amend_detail["amended"] == successor
    with Session(site.services.engine) as session:
        lifecycle = session.exec(
            select(AuditEntry.action).where(AuditEntry.object_id == identifier)
        ).all()
    assert "licence.amend" in lifecycle  # the lifecycle's own entry for the amendment


def test_a_rejection_reaches_the_holder_with_its_reason(site: HolderSite) -> None:
    identifier = issue_to_chen(site)
    with closing(sign_in(site.base_url, CHEN)) as chen:
        objection = raise_objection(chen, identifier).json()
        rejected = site.client.post(
            f"/api/v1/objections/{objection['id']}/reject",
            json={"reason": "经核对执业注册档案，登记无误"},
            headers=auth(site, HEALTH),
        )
        assert rejected.status_code == 200, rejected.text
        page = chen.get(f"/me/licences/{identifier}")
        listed = chen.get("/api/v1/holder/objections").json()["items"]
    assert "未予更正" in page.text and "经核对执业注册档案，登记无误" in page.text
    mine = next(item for item in listed if item["id"] == objection["id"])
    assert (mine["state"], mine["reject_reason"]) == ("rejected", "经核对执业注册档案，登记无误")
    actions = audit_actions(site, objection["id"])
    assert [a for a, _ in actions] == ["objection.raise", "objection.reject"]
    assert "reason_sha256" in actions[1][1] and "档案" not in str(actions[1][1])
    licence = site.client.get(f"/api/v1/licences/{identifier}", headers=auth(site, HEALTH))
    assert licence.json()["status"] == "valid"  # a rejection changes nothing on the licence


# -- supervision: figures and the overdue alert ------------------------------------------------

START = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in China


def test_the_supervisor_sees_objections_per_department_and_the_overdue_alert(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    clock = FixedClock(START)
    domain = demo_domain(tmp_path_factory, "objection-watch", clock, objection_overdue_days=15)
    services = domain.services
    chen = HolderKey(id_type="111", id_number=CHEN, actor="holder:test-chen")
    licence = domain.issue(
        next(i for i, d in enumerate(domain.credentials["departments"]) if d["code"] == HEALTH)
    )["identifier"]
    desk = services.objections
    first = desk.raise_objection(
        chen, licence, field="workplace", comment="地点错", proposed="新院", request_id=None
    )
    second = desk.raise_objection(
        chen, licence, field="scope", comment="范围错", proposed=None, request_id=None
    )
    desk.reject(HEALTH, second.id, reason="无误", actor="department:test", request_id=None)

    figures = services.figures.of(OFFICE)
    rows = {row["department_code"]: row for row in figures.by_department()}
    assert (rows[HEALTH]["objections_open"], rows[HEALTH]["objections_answered"]) == (1, 1)
    assert (rows[MARKET]["objections_open"], rows[MARKET]["objections_answered"]) == (0, 0)
    march = {row["month"]: row for row in figures.by_month()}["2026-03"]
    assert march["objections_open"] == 1 and march["objections_answered"] == 1

    watch = services.objection_watch
    clock.advance(timedelta(days=15) - timedelta(seconds=1))
    assert watch.scan() == 0  # open exactly as long as allowed: no alert yet
    clock.advance(timedelta(seconds=2))
    assert watch.scan() == 1
    assert watch.scan() == 0  # once a day per department, however often the worker runs
    with Session(services.engine) as session:
        alerts = session.exec(select(Alert).where(Alert.rule == "objection_overdue")).all()
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.department_code == HEALTH and alert.detail["open"] == 1
    assert alert.subject == f"{HEALTH}:2026-03-25"
    seen = services.alert_desk.alerts_for(OFFICE, state="open", rule="objection_overdue")
    assert [view.id for view in seen] == [alert.id]
    services.alert_desk.acknowledge(OFFICE, alert.id, "已督办", "supervisor:test")
    assert watch.scan() == 0  # acknowledged today: not raised again today
    clock.advance(timedelta(days=1))
    assert watch.scan() == 1  # still open tomorrow: raised again

    desk.amend(HEALTH, first.id, value=None, actor="department:test", request_id=None)
    clock.advance(timedelta(days=1))
    assert watch.scan() == 0  # answered: nothing overdue
    after = {row["department_code"]: row for row in services.figures.of(OFFICE).by_department()}
    assert (after[HEALTH]["objections_open"], after[HEALTH]["objections_answered"]) == (0, 2)

    with pytest.raises(NotFound):
        desk.reject(MARKET, first.id, reason="x", actor="department:other", request_id=None)
    with pytest.raises(Conflict):
        desk.reject(HEALTH, first.id, reason="x", actor="department:test", request_id=None)
    with pytest.raises(InvalidInput, match="state"):
        desk.queue(HEALTH, state="closed")


def test_the_overdue_limit_is_a_checked_setting(tmp_path: Path) -> None:
    from api.container import build_services
    from tests.domain import make_settings

    with pytest.raises(InvalidInput, match="ELICENCE_OBJECTION_OVERDUE_DAYS"):
        build_services(make_settings(tmp_path / "data", objection_overdue_days=0))


# -- the revision --------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def migration_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    base: str = request.getfixturevalue("postgres_url")
    return fresh_schema(base, "t_objections")


def test_revision_0026_creates_the_table_the_model_describes(migration_url: str) -> None:
    command.upgrade(alembic_config(migration_url), "0026")
    engine = create_engine(migration_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        indexes = {
            i["name"]: i["column_names"]
            for i in inspect(conn).get_indexes(TABLE)
            if i["name"] and i["name"].startswith("ix_")  # PostgreSQL lists the unique one too
        }
        uniques = [u["column_names"] for u in inspect(conn).get_unique_constraints(TABLE)]
    flat = [d for item in diff for d in (item if isinstance(item, list) else [item])]
    assert [d for d in flat if re.search(rf"\b{TABLE}\b", repr(d))] == []
    assert indexes == {
        "ix_licence_objection_identifier": ["identifier"],
        "ix_licence_objection_issuer_state": ["issuer_code", "state", "raised_at"],
        "ix_licence_objection_holder": ["holder_id", "raised_at"],
    }
    assert uniques == [["open_key"]]
    engine.dispose()


def test_a_rejection_that_lands_first_undoes_the_amendment_racing_it(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The amendment checks the objection is open, then seals a new version; a rejection
    committed in between must win: the objection is closed by a conditional update in the new
    version's own transaction, so the version is rolled back with it (409) and the licence stays
    as it was."""
    domain = demo_domain(tmp_path_factory, "objection-race", FixedClock(START))
    services = domain.services
    chen = HolderKey(id_type="111", id_number=CHEN, actor="holder:test-chen")
    index = next(i for i, d in enumerate(domain.credentials["departments"]) if d["code"] == HEALTH)
    licence = domain.issue(index)["identifier"]
    desk = services.objections
    objection = desk.raise_objection(
        chen, licence, field="workplace", comment="地点错", proposed="新院", request_id=None
    )
    versions = services.objections._versions
    sealed = versions.new_version

    def rejected_meanwhile(request: Any) -> Any:
        desk.reject(HEALTH, objection.id, reason="无误", actor="department:b", request_id=None)
        return sealed(request)

    monkeypatch.setattr(versions, "new_version", rejected_meanwhile)
    with pytest.raises(Conflict) as lost:
        desk.amend(HEALTH, objection.id, value=None, actor="department:a", request_id=None)
    assert lost.value.extra == {"current_state": "answered"}
    now = desk.one(HEALTH, objection.id)
    assert (now.state, now.amended_identifier) == ("rejected", None)
    answer = domain.client.get(f"/api/v1/licences/{licence}", headers=domain.auth(index)).json()
    assert answer["status"] == "valid" and answer["fields"]["workplace"] != "新院"
    with Session(services.engine) as session:
        versions_of = session.exec(
            select(col(AuditEntry.action)).where(AuditEntry.action == "licence.amend")
        ).all()
    assert versions_of == []
