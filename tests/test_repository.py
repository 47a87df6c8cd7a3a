"""The repository on SQLite and PostgreSQL: a versioned catalogue, idempotent issuance across
crashes and races, batches of mixed items, search isolated per department, and the exchange
format out and back in."""

from __future__ import annotations

import copy
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import func, select

import core.audit
from core.clock import china_today
from core.db import reading
from licences.models import Holder, Licence
from tests.domain import Domain
from tests.repo_domains import BACKENDS, build, food_body, issue, new_company, verify_qr

NEW_TYPE: dict[str, Any] = {
    "name": "小餐饮登记证",
    "name_en": "Small Catering Registration",
    "authority_level": "municipal",
    "holder_category": "legal_person",
    "validity_years": 3,
    "service_items": ["000125006000-01", "000125006000-02"],
    "field_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["premises"],
        "properties": {"premises": {"type": "string", "title": "经营场所", "maxLength": 64}},
    },
}


@pytest.fixture(scope="module", params=BACKENDS)
def domain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return build(request, tmp_path_factory, "repository")


def count(domain: Domain, model: Any = Licence, *where: Any) -> int:
    with reading(domain.services.engine) as session:
        return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def find(domain: Domain, index: int = 0, **params: Any) -> dict[str, Any]:
    response = domain.client.get("/api/v1/licences", params=params, headers=domain.auth(index))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# --- catalogue ----------------------------------------------------------------------------------


def test_catalogue_lists_gbt_36902_fields(domain: Domain) -> None:
    types = domain.client.get("/api/v1/catalogue/licence-types").json()
    food = next(t for t in types if t["code"] == domain.department(0)["code"] + "001")
    assert food["validity_rule"] == "fixed" and food["validity_years"] == 5
    assert food["issuing_level"] == food["authority_level"] == "municipal"
    assert food["holder_category"] == "legal_person" and food["holder_id_type"] == "001"
    assert food["version"] == 1 and food["status"] == "active"
    assert isinstance(food["service_items"], list)


def test_catalogue_versions_authority_and_withdrawal(domain: Domain) -> None:
    code = domain.department(0)["code"] + "101"
    url = f"/api/v1/catalogue/licence-types/{code}"
    created = domain.client.post(
        "/api/v1/catalogue/licence-types", json={**NEW_TYPE, "code": code}, headers=domain.auth()
    )
    assert created.status_code == 201, created.text
    assert created.json()["authority_name"] == domain.department(0)["name"]
    assert created.json()["service_items"] == NEW_TYPE["service_items"]
    assert domain.client.put(url, json=NEW_TYPE, headers=domain.auth(1)).status_code == 403
    assert domain.client.put(url, json=NEW_TYPE, headers=domain.auth()).json()["version"] == 1

    holder = {"id_type": "001", "id": new_company(), "name": "小餐饮甲"}
    body = {"licence_type": code, "holder": holder, "fields": {"premises": "一号"}}
    under_v1 = issue(domain, body)
    schema = copy.deepcopy(NEW_TYPE["field_schema"])
    schema["properties"]["seats"] = {"type": "integer", "title": "座位数", "minimum": 0}
    changed = domain.client.put(
        url, json={**NEW_TYPE, "field_schema": schema}, headers=domain.auth()
    )
    assert changed.json()["version"] == 2
    under_v2 = issue(domain, {**body, "fields": {"premises": "二号", "seats": 12}})
    versions = domain.client.get(f"{url}/versions").json()
    assert [v["version"] for v in versions] == [1, 2]
    assert (
        "seats"
        not in domain.client.get(url, params={"version": 1}).json()["field_schema"]["properties"]
    )
    records = [
        domain.client.get(f"/api/v1/licences/{x['identifier']}", headers=domain.auth()).json()
        for x in (under_v1, under_v2)
    ]
    assert [r["type_version"] for r in records] == [1, 2]

    assert domain.client.post(f"{url}/withdraw", json={}, headers=domain.auth(1)).status_code == 403
    withdrawn = domain.client.post(
        f"{url}/withdraw", json={"reason": "并入新类型"}, headers=domain.auth()
    )
    assert withdrawn.json()["status"] == "withdrawn"
    refused = domain.client.post("/api/v1/licences", json=body, headers=domain.auth())
    assert refused.status_code == 409 and refused.json()["field"] == "licence_type"
    assert domain.client.post(f"{url}/withdraw", json={}, headers=domain.auth()).status_code == 409
    assert domain.client.delete(url, headers=domain.auth()).status_code == 409
    assert verify_qr(domain, under_v1)["indication"] == "PASSED"  # its licences stay valid


def test_a_type_without_licences_can_be_deleted_and_posts_replay(domain: Domain) -> None:
    code = domain.department(0)["code"] + "102"
    headers = {**domain.auth(), "Idempotency-Key": "type-102"}
    body = {**NEW_TYPE, "code": code}
    first = domain.client.post("/api/v1/catalogue/licence-types", json=body, headers=headers)
    again = domain.client.post("/api/v1/catalogue/licence-types", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert (
        domain.client.delete(
            f"/api/v1/catalogue/licence-types/{code}", headers=domain.auth()
        ).status_code
        == 204
    )
    assert domain.client.get(f"/api/v1/catalogue/licence-types/{code}").status_code == 404


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"code": "1135010000360001XM001"}, "code", "GB 32100"),
        ({"code": "11350100003600028N103"}, "code", "defining authority"),
        ({"authority_level": "galactic"}, "authority_level", "unknown level"),
        ({"holder_category": "robot"}, "holder_category", "unknown holder category"),
        ({"validity_rule": "indefinite"}, "validity_years", "indefinite"),
        ({"service_items": ["bad code!"]}, "service_items", "service_items"),
        (
            {
                "field_schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"a": {"type": "string", "title": "甲"}},
                }
            },
            "field_schema",
            "maxLength",
        ),
    ],
)
def test_bad_catalogue_entries_name_field_and_rule(
    domain: Domain, change: dict, field: str, rule: str
) -> None:
    body = {**NEW_TYPE, "code": domain.department(0)["code"] + "103", **change}
    response = domain.client.post(
        "/api/v1/catalogue/licence-types", json=body, headers=domain.auth()
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field and rule in response.json()["detail"]


# --- idempotent issuance ------------------------------------------------------------------------


def test_a_crash_before_commit_leaves_nothing_and_the_retry_issues_once(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = food_body(domain)
    headers = {**domain.auth(), "Idempotency-Key": "crash-before-commit"}
    original = core.audit.AuditLog.append_many

    def crash(self: Any, session: Any, pending: Any, **kwargs: Any) -> Any:
        if any(item.action == "licence.issue" for item in pending):
            raise RuntimeError("power cut")
        return original(self, session, pending, **kwargs)

    before = count(domain)
    monkeypatch.setattr(core.audit.AuditLog, "append_many", crash)
    with pytest.raises(RuntimeError):
        domain.client.post("/api/v1/licences", json=body, headers=headers)
    monkeypatch.setattr(core.audit.AuditLog, "append_many", original)
    assert count(domain) == before
    assert count(domain, Holder, Holder.id_number == body["holder"]["id"]) == 0
    first = domain.client.post("/api/v1/licences", json=body, headers=headers)
    second = domain.client.post("/api/v1/licences", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["identifier"] == second.json()["identifier"]
    assert count(domain) == before + 1


def test_a_crash_after_commit_replays_the_licence(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.http.licences as routes

    body = food_body(domain)
    headers = {**domain.auth(), "Idempotency-Key": "crash-after-commit"}

    def lost(*args: Any) -> Any:
        raise RuntimeError("connection dropped before the answer")

    before = count(domain)
    monkeypatch.setattr(routes, "issued_out", lost)
    with pytest.raises(RuntimeError):
        domain.client.post("/api/v1/licences", json=body, headers=headers)
    monkeypatch.undo()
    assert count(domain) == before + 1
    retry = domain.client.post("/api/v1/licences", json=body, headers=headers)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert count(domain) == before + 1
    other = domain.client.post("/api/v1/licences", json=food_body(domain), headers=headers)
    assert other.status_code == 409 and other.json()["field"] == "Idempotency-Key"


def test_concurrent_twins_issue_one_licence(domain: Domain) -> None:
    body = food_body(domain)
    headers = {**domain.auth(), "Idempotency-Key": "twins"}
    before = count(domain)
    answers: list[Any] = []

    def send() -> None:
        answers.append(domain.client.post("/api/v1/licences", json=body, headers=headers))

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 200, 201], [a.text for a in answers]
    assert len({a.json()["identifier"] for a in answers}) == 1
    assert count(domain) == before + 1


# --- batch ---------------------------------------------------------------------------------------


def test_batch_issues_the_good_items_and_reports_the_bad(domain: Domain) -> None:
    good = [food_body(domain), food_body(domain)]
    bad_id = food_body(domain)
    bad_id["holder"] = {
        **bad_id["holder"],
        "id": bad_id["holder"]["id"][:-1] + ("0" if bad_id["holder"]["id"][-1] != "0" else "1"),
    }
    bad_fields = food_body(domain, fields={"premises": "x"})
    items = [good[0], bad_id, {"licence_type": "x"}, good[1], bad_fields]
    issued_entries = core.audit.AuditEntry.action == "licence.issue"
    before, audit_before = count(domain), count(domain, core.audit.AuditEntry, issued_entries)
    headers = {**domain.auth(), "Idempotency-Key": "batch-1"}
    response = domain.client.post("/api/v1/licences:batch", json={"items": items}, headers=headers)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 422, 201, 422]
    assert (
        results[1]["error"]["field"] == "holder.id" and "GB 32100" in results[1]["error"]["detail"]
    )
    assert results[2]["error"]["field"] == "licence_type"
    assert results[4]["error"]["field"] == "fields"
    assert response.json()["summary"]["issued"] == 2 and response.json()["summary"]["failed"] == 3
    assert count(domain) == before + 2
    assert count(domain, Holder, Holder.id_number == bad_id["holder"]["id"]) == 0
    assert count(domain, Holder, Holder.id_number == bad_fields["holder"]["id"]) == 0
    assert count(domain, core.audit.AuditEntry, issued_entries) - audit_before == 2
    retry = domain.client.post("/api/v1/licences:batch", json={"items": items}, headers=headers)
    assert [r["status"] for r in retry.json()["results"]] == [200, 422, 422, 200, 422]
    assert [r["identifier"] for r in retry.json()["results"]] == [r["identifier"] for r in results]
    assert count(domain) == before + 2
    for result in results[::3]:
        assert verify_qr(domain, result)["indication"] == "PASSED"


def test_a_batch_of_1000_is_checked_item_by_item(domain: Domain) -> None:
    bad = food_body(domain)
    bad["holder"] = {**bad["holder"], "id": "91350100M000100Y44"}
    before = count(domain)
    response = domain.client.post(
        "/api/v1/licences:batch", json={"items": [bad] * 1000}, headers=domain.auth()
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 1000 and {r["status"] for r in results} == {422}
    assert [r["index"] for r in results] == list(range(1000))
    assert response.json()["summary"]["failures_by_reason"]["holder.id (invalid)"]["count"] == 1000
    assert count(domain) == before
    too_many = domain.client.post(
        "/api/v1/licences:batch", json={"items": [bad] * 1001}, headers=domain.auth()
    )
    assert too_many.status_code == 422 and too_many.json()["field"] == "items"


# --- search --------------------------------------------------------------------------------------


def test_search_is_isolated_per_department(domain: Domain) -> None:
    mine = issue(domain, food_body(domain))
    theirs_body = domain.department(1)["sample_request"]
    theirs = issue(domain, theirs_body, index=1)
    seen0 = find(domain, 0, limit=200)["items"]
    seen1 = find(domain, 1, limit=200)["items"]
    assert {i["issuer"] for i in seen0} == {domain.department(0)["code"]}
    assert {i["issuer"] for i in seen1} == {domain.department(1)["code"]}
    assert mine["identifier"] in {i["identifier"] for i in seen0} - {i["identifier"] for i in seen1}
    assert theirs["identifier"] in {i["identifier"] for i in seen1}
    assert find(domain, 0, holder_id=theirs_body["holder"]["id"])["items"] == []
    exported = domain.client.get("/api/v1/licences:export", headers=domain.auth(1)).json()
    assert {r["证照颁发机构代码"] for r in exported["证照"]} == {domain.department(1)["code"]}


def test_search_filters_and_pages_by_keyset(domain: Domain) -> None:
    body = food_body(domain)
    ids = [issue(domain, body)["identifier"] for _ in range(3)]
    holder = body["holder"]["id"]
    domain.client.post(
        f"/api/v1/licences/{ids[0]}/suspend", json={"reason": "整改"}, headers=domain.auth()
    )
    first = find(domain, holder_id=holder, limit=2)
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = find(domain, holder_id=holder, limit=2, cursor=first["next_cursor"])
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    paged = [i["identifier"] for i in first["items"] + second["items"]]
    assert sorted(paged) == sorted(ids) and len(set(paged)) == 3
    assert [i["issued_at"] for i in first["items"] + second["items"]] == sorted(
        (i["issued_at"] for i in first["items"] + second["items"]), reverse=True
    )
    assert [
        i["identifier"] for i in find(domain, holder_id=holder, status="suspended")["items"]
    ] == [ids[0]]
    assert len(find(domain, holder_id=holder, status="valid")["items"]) == 2
    assert len(find(domain, holder_id=holder, type=body["licence_type"])["items"]) == 3
    today = china_today(domain.services.clock.now())
    assert (
        len(
            find(
                domain,
                holder_id=holder,
                issued_from=str(today - timedelta(days=1)),
                issued_to=str(today + timedelta(days=1)),
            )["items"]
        )
        == 3
    )
    assert find(domain, holder_id=holder, issued_from=str(today + timedelta(days=2)))["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"holder_id": "91350100M000100Y44"}, "holder.id"),
        ({"holder_id": "11010519491231002Y"}, "holder.id"),
        ({"type": "1135010000360001XM001"}, "type"),
        ({"status": "lost-in-space"}, "status"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_search_parameters_name_the_field(domain: Domain, params: dict, field: str) -> None:
    response = domain.client.get("/api/v1/licences", params=params, headers=domain.auth())
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


# --- exchange format -----------------------------------------------------------------------------


def test_export_uses_the_national_field_names_and_import_issues_anew(domain: Domain) -> None:
    issued = issue(domain, food_body(domain))
    record = domain.client.get(
        f"/api/v1/licences/{issued['identifier']}/export", headers=domain.auth()
    ).json()
    assert record["证照标识"] == issued["identifier"]
    assert record["证照颁发机构代码"] == domain.department(0)["code"]
    assert record["证照状态"] == "有效" and record["证照状态代码"] == "valid"
    assert record["持证主体代码类型"] == "001"
    assert {item["名称"] for item in record["照面信息"]} >= {"经营场所", "主体业态"}
    assert record["文件摘要"] == {"算法": "SHA-256", "值": issued["sha256"]}

    before = count(domain)
    answer = domain.client.post(
        "/api/v1/licences:import", json=record, headers=domain.auth()
    ).json()
    (result,) = answer["results"]
    assert result["status"] == 201 and result["identifier"] != issued["identifier"]
    again = domain.client.post(
        "/api/v1/licences:import", json=[record], headers=domain.auth()
    ).json()
    assert again["results"][0]["status"] == 200
    assert again["results"][0]["identifier"] == result["identifier"]
    assert count(domain) == before + 1
    assert verify_qr(domain, result)["indication"] == "PASSED"

    broken = {**record, "证照标识": None, "持证主体代码": "91350100M000100Y44"}
    revoked = {**record, "证照标识": None, "证照状态": "已吊销"}
    foreign = {**record, "证照标识": None, "证照颁发机构代码": domain.department(1)["code"]}
    document = {"格式": "elicence-exchange/1", "证照": [broken, revoked, foreign]}
    answer = domain.client.post(
        "/api/v1/licences:import", json=document, headers=domain.auth()
    ).json()
    assert [(r["status"], r["error"]["field"]) for r in answer["results"]] == [
        (422, "持证主体代码"),
        (422, "证照状态"),
        (403, "证照颁发机构代码"),
    ]
    assert count(domain) == before + 1


# --- identifiers at the door ---------------------------------------------------------------------


def test_the_national_examples_are_accepted_and_a_changed_one_refused(domain: Domain) -> None:
    person = {**domain.department(1)["sample_request"]}
    person["holder"] = {"id_type": "111", "id": "11010519491231002x", "name": "示例人"}
    issued = issue(domain, person, index=1)
    record = domain.client.get(f"/api/v1/licences/{issued['identifier']}", headers=domain.auth(1))
    assert record.json()["holder"]["id"] == "11010519491231002X"  # one spelling, upper-case X
    company = food_body(domain)
    company["holder"] = {
        "id_type": "001",
        "id": "91350100M000100Y43",
        "name": "示范餐饮管理有限公司",
    }
    issue(domain, company)
    for body, index, changed, rule in (
        (person, 1, "11010519491231003X", "GB 11643"),
        (person, 1, "11010519491331002X", "19491331"),
        (company, 0, "91350100M000100Y42", "GB 32100"),
        (company, 0, "91350100M000200Y43", "GB 11714"),
    ):
        bad = {**body, "holder": {**body["holder"], "id": changed}}
        response = domain.client.post("/api/v1/licences", json=bad, headers=domain.auth(index))
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "holder.id" and rule in response.json()["detail"]
