"""The licence lifecycle on SQLite and PostgreSQL: every transition from every status, allowed
or refused with the current status; new versions linked both ways; the audit chain; what a
verifier sees at once; holders corrected in one place; idempotent lifecycle writes."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import col, func, select

from core.audit import AuditEntry, verify_chain
from core.clock import china_today
from core.db import reading, transaction
from licences.identifiers import LicenceIdentifier
from licences.lifecycle import ALLOWED, Transition
from licences.models import Licence, LicenceStatus
from tests.domain import Domain
from tests.repo_domains import BACKENDS, build, food_body, issue, verify_qr

REASON = {"reason": "测试原因 / test reason"}
SUB_INDICATION = {
    LicenceStatus.VALID: None,
    LicenceStatus.SUSPENDED: "SUSPENDED",
    LicenceStatus.CANCELLED: "REVOKED",
    LicenceStatus.REVOKED: "REVOKED",
    LicenceStatus.SUPERSEDED: "SUPERSEDED",
    LicenceStatus.VOID: "SUPERSEDED",
}
STATUSES = [s for s in LicenceStatus]
CASES = [(t, s) for t in Transition for s in STATUSES]


@pytest.fixture(scope="module", params=BACKENDS)
def domain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return build(request, tmp_path_factory, "lifecycle")


def post(
    domain: Domain, identifier: str, action: str, body: Any = None, index: int = 0, **headers: str
):  # type: ignore[no-untyped-def]
    return domain.client.post(
        f"/api/v1/licences/{identifier}/{action}",
        json=body if body is not None else REASON,
        headers={**domain.auth(index), **headers},
    )


def record(domain: Domain, identifier: str) -> dict[str, Any]:
    response = domain.client.get(f"/api/v1/licences/{identifier}", headers=domain.auth())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def make(domain: Domain, status: LicenceStatus) -> dict[str, Any]:
    """A fresh licence of department 0 in ``status``."""
    issued = issue(domain, food_body(domain))
    move(domain, issued["identifier"], status)
    return issued


def move(domain: Domain, identifier: str, status: LicenceStatus) -> None:
    """Take a valid licence of department 0 into ``status``."""
    step = {
        LicenceStatus.SUSPENDED: "suspend",
        LicenceStatus.CANCELLED: "cancel",
        LicenceStatus.REVOKED: "revoke",
        LicenceStatus.SUPERSEDED: "amend",
        LicenceStatus.VOID: "reissue",
    }.get(status)
    if step is not None:
        body = {"fields": {"premises": "新址"}} if step == "amend" else REASON
        assert post(domain, identifier, step, body).status_code in (200, 201)
    if status is LicenceStatus.EXPIRED:  # time passes: the term ended yesterday
        with transaction(domain.services.engine) as session:
            licence = session.get(Licence, identifier)
            assert licence is not None
            today = china_today(domain.services.clock.now())
            licence.valid_from = today - timedelta(days=5 * 365)
            licence.valid_until = today - timedelta(days=1)
            session.add(licence)
    assert record(domain, identifier)["status"] == status.value


@pytest.fixture(scope="module")
def in_status(domain: Domain) -> dict[LicenceStatus, dict[str, Any]]:
    """One licence per status, shared by the refused transitions (which change nothing)."""
    return {status: make(domain, status) for status in STATUSES}


def audit_actions(domain: Domain, identifier: str) -> list[str]:
    with reading(domain.services.engine) as session:
        return list(
            session.exec(
                select(AuditEntry.action)
                .where(AuditEntry.object_id == identifier)
                .order_by(col(AuditEntry.seq))
            )
        )


@pytest.mark.parametrize(
    ("transition", "source"), CASES, ids=[f"{t.value}-from-{s.value}" for t, s in CASES]
)
def test_every_transition_from_every_status(
    domain: Domain,
    in_status: dict[LicenceStatus, dict[str, Any]],
    transition: Transition,
    source: LicenceStatus,
) -> None:
    rule = ALLOWED[transition]
    body: dict[str, Any] = (
        {"fields": {"premises": "变更后的地址"}} if transition is Transition.AMEND else dict(REASON)
    )
    if source not in rule.sources:
        identifier = in_status[source]["identifier"]
        before = audit_actions(domain, identifier)
        response = post(domain, identifier, transition.value, body)
        assert response.status_code == 409, response.text
        problem = response.json()
        assert problem["current_status"] == source.value
        assert response.headers["content-type"].startswith("application/problem+json")
        assert record(domain, identifier)["status"] == source.value
        assert audit_actions(domain, identifier) == before
        return

    issued = make(domain, source)
    identifier = issued["identifier"]
    response = post(domain, identifier, transition.value, body)
    assert response.status_code == (201 if rule.new_version else 200), response.text
    old = record(domain, identifier)
    assert old["status"] == rule.target.value
    assert audit_actions(domain, identifier)[-1] == f"licence.{transition.value}"
    if rule.new_version:
        new = response.json()
        assert new["identifier"] == str(LicenceIdentifier.parse(identifier).next_version())
        assert new["previous"] == identifier and old["superseded_by"] == new["identifier"]
        assert record(domain, new["identifier"])["previous"] == identifier
        assert verify_qr(domain, new)["indication"] == "PASSED"
        assert "licence.issue" in audit_actions(domain, new["identifier"])
    if source is not LicenceStatus.EXPIRED:  # the expired one's record was edited in place
        report = verify_qr(domain, issued)
        assert report["sub_indication"] == SUB_INDICATION[rule.target], report
        assert report["licence"]["status"] == rule.target.value


def test_resume_makes_it_pass_again_at_once(domain: Domain) -> None:
    issued = make(domain, LicenceStatus.VALID)
    assert verify_qr(domain, issued)["indication"] == "PASSED"
    post(domain, issued["identifier"], "suspend")
    assert verify_qr(domain, issued)["sub_indication"] == "SUSPENDED"
    post(domain, issued["identifier"], "resume", {})
    assert verify_qr(domain, issued)["indication"] == "PASSED"


def test_cancel_and_revoke_are_told_apart(domain: Domain) -> None:
    cancelled, revoked = make(domain, LicenceStatus.VALID), make(domain, LicenceStatus.VALID)
    post(domain, cancelled["identifier"], "cancel", {"reason": "持证人申请注销"})
    post(domain, revoked["identifier"], "revoke", {"reason": "以欺骗手段取得许可"})
    a, b = record(domain, cancelled["identifier"]), record(domain, revoked["identifier"])
    assert (a["status"], b["status"]) == ("cancelled", "revoked")
    assert a["status_label"].startswith("已注销") and b["status_label"].startswith("已吊销")
    assert a["status_reason"] == "持证人申请注销"
    checks = {c["name"]: c for c in verify_qr(domain, cancelled)["checks"]}
    assert checks["status"]["detail"].startswith("已注销")


@pytest.mark.parametrize("action", ["suspend", "cancel", "revoke", "reissue"])
def test_a_reason_is_required(domain: Domain, in_status: dict, action: str) -> None:
    identifier = in_status[LicenceStatus.VALID]["identifier"]
    for body in ({}, {"reason": "  "}):
        response = post(domain, identifier, action, body)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "reason"
    assert record(domain, identifier)["status"] == "valid"


@pytest.mark.parametrize("action", [t.value for t in Transition])
def test_only_the_issuing_department_changes_a_licence(
    domain: Domain, in_status: dict, action: str
) -> None:
    identifier = in_status[LicenceStatus.VALID]["identifier"]
    body = {"fields": {}} if action == "amend" else REASON
    assert post(domain, identifier, action, body, index=1).status_code == 403
    assert record(domain, identifier)["status"] == "valid"


def test_malformed_or_unknown_identifiers(domain: Domain, in_status: dict) -> None:
    identifier = in_status[LicenceStatus.VALID]["identifier"]
    changed = identifier[:-1] + ("A" if identifier[-1] != "A" else "B")
    for method, path in (
        ("post", f"/api/v1/licences/{changed}/suspend"),
        ("get", f"/api/v1/licences/{changed}"),
        ("get", f"/api/v1/licences/{changed}/pdf"),
    ):
        response = getattr(domain.client, method)(
            path, headers=domain.auth(), **({"json": REASON} if method == "post" else {})
        )
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "identifier"
        assert "MOD 37,36" in response.json()["detail"]
    other = LicenceIdentifier.parse(identifier)
    unknown = str(LicenceIdentifier(other.type_code, other.issuer_code, "NOSUCHSERIAL1"))
    assert post(domain, unknown, "suspend").status_code == 404


def test_amend_merges_fields_and_chains_versions(domain: Domain) -> None:
    body = food_body(domain)
    first = issue(domain, body)
    old_pdf = domain.pdf(first)
    second = post(
        domain,
        first["identifier"],
        "amend",
        {
            "fields": {"scope": "预包装食品销售", "legal_representative": None},
            "reason": "经营项目变更",
        },
    ).json()
    third = post(
        domain, second["identifier"], "amend", {"fields": {"premises": "第三个地址"}}
    ).json()
    ids = [LicenceIdentifier.parse(x["identifier"]) for x in (first, second, third)]
    assert [i.version for i in ids] == ["001", "002", "003"]
    assert len({i.serial for i in ids}) == 1
    fields = record(domain, third["identifier"])["fields"]
    assert fields["scope"] == "预包装食品销售" and fields["premises"] == "第三个地址"
    assert "legal_representative" not in fields
    assert fields["business_form"] == body["fields"]["business_form"]
    assert record(domain, second["identifier"])["superseded_by"] == third["identifier"]
    assert domain.verify_pdf(old_pdf)["sub_indication"] == "SUPERSEDED"
    assert domain.verify_pdf(domain.pdf(third))["indication"] == "PASSED"


def test_a_bad_amendment_writes_nothing(domain: Domain) -> None:
    issued = make(domain, LicenceStatus.VALID)
    with reading(domain.services.engine) as session:
        before = session.exec(select(func.count()).select_from(Licence)).one()
    response = post(domain, issued["identifier"], "amend", {"fields": {"premises": "x" * 500}})
    assert response.status_code == 422
    assert response.json()["field"] == "fields.premises"
    assert record(domain, issued["identifier"])["status"] == "valid"
    with reading(domain.services.engine) as session:
        assert session.exec(select(func.count()).select_from(Licence)).one() == before


def test_renew_extends_the_term_and_reissue_voids_the_lost_one(domain: Domain) -> None:
    issued = make(domain, LicenceStatus.VALID)
    old = record(domain, issued["identifier"])
    before = china_today(domain.services.clock.now())  # a renewal starts today in China
    renewed = post(domain, issued["identifier"], "renew", {}).json()
    after = china_today(domain.services.clock.now())
    new = record(domain, renewed["identifier"])
    assert new["valid_from"] in {before.isoformat(), after.isoformat()}
    assert date.fromisoformat(new["valid_until"]) > date.fromisoformat(old["valid_until"])
    too_short = post(domain, renewed["identifier"], "renew", {"valid_until": new["valid_until"]})
    assert too_short.status_code == 422 and too_short.json()["field"] == "valid_until"
    lost = post(domain, renewed["identifier"], "reissue", {"reason": "遗失"}).json()
    assert record(domain, renewed["identifier"])["status"] == "void"
    assert record(domain, lost["identifier"])["valid_until"] == new["valid_until"]


def test_an_indefinite_licence_cannot_be_renewed(domain: Domain) -> None:
    issued = domain.issue(1)  # physician certificate: indefinite
    response = post(domain, issued["identifier"], "renew", {}, index=1)
    assert response.status_code == 409
    assert response.json()["field"] == "valid_until"


def test_holder_name_is_updated_in_one_place(domain: Domain) -> None:
    body = food_body(domain)
    first = issue(domain, body)
    holder = body["holder"]
    path = f"/api/v1/holders/001/{holder['id']}"
    renamed = {**body, "holder": {**holder, "name": "新名称科技有限公司"}}
    refused = domain.client.post("/api/v1/licences", json=renamed, headers=domain.auth())
    assert refused.status_code == 409
    assert f"PATCH {path}" in refused.json()["detail"]
    # Only the operator or a client holding holders:correct:<category> corrects the registered
    # name (licences.holders): the issuing department's ordinary key is refused too.
    for index in (1, 0):
        refused_patch = domain.client.patch(
            path, json={"name": "新名称科技有限公司"}, headers=domain.auth(index)
        )
        assert refused_patch.status_code == 403
        assert refused_patch.json()["missing_scope"] == "holders:correct:legal_person"
    from seals.clients import create_client

    services = domain.services
    with transaction(services.engine) as session:
        _, key = create_client(
            session,
            services.audit,
            services.clock,
            department_code=domain.department(0)["code"],
            name="registry",
            actor="test",
            scopes=("holders:correct:legal_person",),
        )
    registry = {"Authorization": f"Bearer {key}"}
    response = domain.client.patch(path, json={"name": "新名称科技有限公司"}, headers=registry)
    assert response.status_code == 200 and response.json()["name"] == "新名称科技有限公司"
    from core.db import reading
    from licences.models import Holder as HolderRow

    with reading(domain.services.engine) as session:
        row = session.exec(select(HolderRow).where(HolderRow.id_number == holder["id"])).one()
    assert audit_actions(domain, f"holder:{row.id}") == ["holder.rename"] * 3  # 2 refused
    assert audit_actions(domain, f"001/{holder['id']}") == []
    second = issue(domain, renamed)
    assert record(domain, second["identifier"])["holder"]["name"] == "新名称科技有限公司"
    # the licence already sealed keeps the name it was issued under
    assert record(domain, first["identifier"])["holder"]["name"] == holder["name"]
    old_name = domain.client.post("/api/v1/licences", json=body, headers=domain.auth())
    assert old_name.status_code == 409
    bad = domain.client.patch(
        "/api/v1/holders/001/91350100M000100Y44", json={"name": "x"}, headers=registry
    )
    assert bad.status_code == 422 and bad.json()["field"] == "holder.id"


def test_lifecycle_writes_are_idempotent_per_route(domain: Domain) -> None:
    identifier = make(domain, LicenceStatus.VALID)["identifier"]
    key = {"Idempotency-Key": "lifecycle-1"}
    first = post(domain, identifier, "suspend", REASON, **key)
    again = post(domain, identifier, "suspend", REASON, **key)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    other = post(domain, identifier, "suspend", {"reason": "另一个原因"}, **key)
    assert other.status_code == 409 and other.json()["field"] == "Idempotency-Key"
    resumed = post(domain, identifier, "resume", {}, **key)  # another route: another scope
    assert resumed.status_code == 200 and resumed.json()["status"] == "valid"
    assert audit_actions(domain, identifier).count("licence.suspend") == 1

    amended = [
        post(domain, identifier, "amend", {"fields": {"premises": "幂等"}}, **key) for _ in range(2)
    ]
    assert [r.status_code for r in amended] == [201, 200]
    assert amended[0].json()["identifier"] == amended[1].json()["identifier"]
    serial = LicenceIdentifier.parse(identifier).serial
    with reading(domain.services.engine) as session:
        versions = session.exec(
            select(func.count()).select_from(Licence).where(Licence.serial == serial)
        ).one()
    assert versions == 2
    changed = post(domain, identifier, "amend", {"fields": {"premises": "别的"}}, **key)
    assert changed.status_code == 409


def test_audit_chain_is_intact_after_the_lifecycle(domain: Domain) -> None:
    with reading(domain.services.engine) as session:
        report = verify_chain(session)
    assert report.intact, report


@pytest.mark.parametrize("status", [LicenceStatus.REVOKED, LicenceStatus.EXPIRED])
def test_a_replayed_issuance_answers_with_the_licence_status_now(
    domain: Domain, status: LicenceStatus
) -> None:
    """The issuance answer takes its status from the row in hand (written, or read again by
    the replay): a department retrying after the licence was revoked, or after its term ended,
    is told so, never the ``valid`` of the first answer."""
    body = food_body(domain)
    key = {"Idempotency-Key": f"replay-status-{status.value}"}
    first = domain.client.post("/api/v1/licences", json=body, headers={**domain.auth(), **key})
    assert first.status_code == 201 and first.json()["status"] == "valid"
    identifier = first.json()["identifier"]
    move(domain, identifier, status)
    again = domain.client.post("/api/v1/licences", json=body, headers={**domain.auth(), **key})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert (again.json()["identifier"], again.json()["status"]) == (identifier, status.value)
