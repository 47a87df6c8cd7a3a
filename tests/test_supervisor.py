"""The supervisor's desk, attacked first: the supervise scope held with another, a department's
credentials at the supervisors' sign-in, wrong keys, tampered, foreign, idle, too old and
revoked sessions, POSTs without the CSRF token, an audit search that must never show a whole ID
number or name, CSV cells that would run as formulas; then the whole desk end to end — sign in,
this month's figures and an open alert on the dashboard, acknowledged with a comment."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.edge.holder_session import HolderPrincipal
from api.edge.supervisor_session import COOKIE
from core.audit import AuditEntry
from core.clock import FixedClock
from core.db import reading, transaction
from core.errors import InvalidInput
from seals.clients import SUPERVISE, SUPERVISE_ALONE
from supervision.alert_records import Severity, raise_alert
from tests.domain import Domain, demo_domain
from tests.supervision_fixtures import Office, add_department, add_office, demo_office

START = datetime(2026, 2, 20, 2, 0, tzinfo=UTC)  # 10:00 on a weekday in China
PHYSICIAN_ID = "350102198503120034"  # the demo physician's resident ID (fictitious)
PHYSICIAN_NAME = "陈建华"
ELSEWHERE = ("11350200003600015E", "示范二市市场监督管理局", "350200", "municipal")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    return demo_domain(tmp_path_factory, "supdesk", clock=clock)


def browser(domain: Domain) -> TestClient:
    """A browser of its own, over https (the session cookie is Secure)."""
    return TestClient(domain.client.app, base_url="https://testserver", follow_redirects=False)


def sign_in(domain: Domain, office: Office, key: str | None = None) -> tuple[TestClient, Any]:
    client = browser(domain)
    form = client.get("/supervise/sign-in")
    assert form.status_code == 200 and form.headers["cache-control"] == "no-store"
    token = _CSRF.search(form.text)
    assert token is not None
    response = client.post(
        "/supervise/sign-in",
        data={"csrf": token.group(1), "client_id": office.client_id, "api_key": key or office.api_key},
    )
    return client, response


def signed_in(domain: Domain, office: Office | None = None) -> tuple[TestClient, str]:
    client, response = sign_in(domain, office or demo_office(domain))
    assert response.status_code == 303, response.text
    page = client.get("/supervise")
    assert page.status_code == 200, page.text
    token = _CSRF.search(page.text)
    assert token is not None
    return client, token.group(1)


def sign_ins(domain: Domain) -> list[AuditEntry]:
    with reading(domain.services.engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == "supervisor.sign_in")
        return list(session.exec(query))


# --- the scope ---------------------------------------------------------------------------


def test_supervise_is_never_held_with_another_scope(domain: Domain) -> None:
    office = demo_office(domain)
    before = len(domain.services.clients.clients())
    for scopes in ((SUPERVISE, "licences:issue"), (SUPERVISE, "admin"), ("licences:pull", SUPERVISE)):
        with pytest.raises(InvalidInput) as refused:
            domain.services.clients.create(office.code, name="x", actor="test", scopes=scopes)
        assert refused.value.message == SUPERVISE_ALONE and refused.value.field == "scopes"
    assert len(domain.services.clients.clients()) == before  # nothing half-written
    client, _ = domain.services.clients.create(
        office.code, name="desk", actor="test", scopes=(SUPERVISE,)
    )
    assert client.scopes == [SUPERVISE]


def _cli(domain: Domain, *args: str) -> subprocess.CompletedProcess[str]:
    passphrase = domain.settings.key_passphrase
    secret = passphrase.get_secret_value() if hasattr(passphrase, "get_secret_value") else passphrase
    env = {**os.environ, "ELICENCE_KEY_PASSPHRASE": str(secret),
           "ELICENCE_PUBLIC_BASE_URL": domain.settings.public_base_url}
    return subprocess.run(
        [sys.executable, "-c", "from api.cli.main import main; main()", *args,
         "--data-dir", str(domain.settings.data_dir)],
        capture_output=True, text=True, env=env, check=False, timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_the_operator_makes_a_supervision_client_with_the_cli(domain: Domain) -> None:
    office = demo_office(domain).code
    refused = _cli(domain, "clients", "create", "--department", office, "--name", "x",
                   "--scope", SUPERVISE, "--scope", "licences:issue")
    assert refused.returncode != 0
    assert "supervise" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    made = _cli(domain, "clients", "create", "--department", office, "--name", "desk",
                "--scope", SUPERVISE)
    assert made.returncode == 0, made.stderr
    assert '"scopes": ["supervise"]' in made.stdout


# --- sign-in -----------------------------------------------------------------------------


def test_wrong_credentials_get_the_form_again_and_are_audited(domain: Domain) -> None:
    office = demo_office(domain)
    before = len(sign_ins(domain))
    _, response = sign_in(domain, office, key=office.api_key[:-2] + "xx")
    assert response.status_code == 401
    assert COOKIE + "=" not in response.headers.get("set-cookie", "")
    assert "客户端编号或密钥错误" in response.text and "wrong client id or API key" in response.text
    # Another client's key with this client's id is wrong too.
    _, response = sign_in(domain, office, key=domain.department(0)["api_key"])
    assert response.status_code == 401
    entries = sign_ins(domain)[before:]
    assert [(e.outcome, e.detail) for e in entries] == [
        ("refused", {"reason": "wrong_credentials"}),
        ("refused", {"reason": "wrong_credentials"}),
    ]
    assert all(office.api_key not in str(e.detail) for e in entries)


def test_a_departments_credentials_cannot_sign_in(domain: Domain) -> None:
    department = domain.department(0)
    key = department["api_key"]
    client_id = key.removeprefix("elk_").split("_", 1)[0]
    fake = Office(department["code"], "350100", client_id, key)
    _, response = sign_in(domain, fake)
    assert response.status_code == 401 and "监察凭证" in response.text
    assert sign_ins(domain)[-1].detail == {"reason": "not_supervise"}


def test_the_sign_in_form_needs_its_own_csrf_token(domain: Domain) -> None:
    office = demo_office(domain)
    client = browser(domain)
    response = client.post("/supervise/sign-in",
                           data={"client_id": office.client_id, "api_key": office.api_key})
    assert response.status_code == 403 and "CSRF" in response.text
    assert COOKIE + "=" not in response.headers.get("set-cookie", "")


def test_sign_in_sets_a_strict_private_session_cookie(domain: Domain) -> None:
    _, response = sign_in(domain, demo_office(domain))
    assert response.status_code == 303 and response.headers["location"] == "/supervise"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(COOKIE))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/supervise", "max-age=1800"} <= flags
    assert demo_office(domain).client_id not in cookie  # the value is encrypted
    assert sign_ins(domain)[-1].outcome == "ok"


# --- the session -------------------------------------------------------------------------


def test_tampered_and_foreign_cookies_are_refused(domain: Domain) -> None:
    client, _ = signed_in(domain)
    value = client.cookies.get(COOKIE)
    assert value
    services = domain.services
    holder = HolderPrincipal("111", PHYSICIAN_ID, PHYSICIAN_NAME, "s", "https://idp.example.gov.cn")
    forged = {
        "tampered": value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"),
        "holder's": services.holder_sessions.seal(holder, services.clock.now()),
        "other purpose": services.holder_sessions.sign(
            "supervisor-sign-in", {"client": demo_office(domain).client_id, "csrf": "x",
                                   "since": int(START.timestamp())}, services.clock.now() + timedelta(minutes=5)),
    }
    for name, bad in forged.items():
        other = browser(domain)
        other.cookies.set(COOKIE, bad, path="/supervise")
        page = other.get("/supervise")
        assert page.status_code == 303, name
        assert page.headers["location"] == "/supervise/sign-in?expired=1", name
        exported = other.get("/supervise/figures.csv")
        assert exported.status_code == 401, name
        assert exported.headers["content-type"].startswith("application/problem+json")


def test_a_session_lapses_when_idle_and_after_eight_hours(domain: Domain, clock: FixedClock) -> None:
    client, _ = signed_in(domain)
    clock.advance(timedelta(minutes=31))
    try:
        assert client.get("/supervise").status_code == 303  # idle for more than 30 minutes
    finally:
        clock.advance(-timedelta(minutes=31))
    client, _ = signed_in(domain)
    moved = timedelta(0)
    try:
        while moved < timedelta(hours=7, minutes=50):  # busy all day: each request renews it
            clock.advance(timedelta(minutes=25))
            moved += timedelta(minutes=25)
            assert client.get("/supervise/alerts").status_code == 200, moved
        clock.advance(timedelta(minutes=25))
        moved += timedelta(minutes=25)
        response = client.get("/supervise/figures.csv")
        assert response.status_code == 401, response.text
    finally:
        clock.advance(-moved)


def test_a_revoked_clients_session_ends_at_once(domain: Domain) -> None:
    office = add_office(domain, "11350100003600045P", "350100", "municipal")
    client, csrf = signed_in(domain, office)
    domain.services.clients.revoke(office.client_id, actor="test")
    assert client.get("/supervise").headers["location"] == "/supervise/sign-in?expired=1"
    response = client.post("/supervise/sign-out", data={"csrf": csrf})
    assert response.status_code == 401
    assert domain.client.get("/api/v1/supervision/figures", headers=office.bearer).status_code == 401
    _, again = sign_in(domain, office)
    assert again.status_code == 401


def test_posts_without_the_csrf_token_are_refused(domain: Domain) -> None:
    client, csrf = signed_in(domain)
    alert = _raise(domain, "csrf-test")
    for data in ({"comment": "已核实"}, {"comment": "已核实", "csrf": csrf + "x"}):
        response = client.post(f"/supervise/alerts/{alert}/acknowledge", data=data)
        assert response.status_code == 403, response.text
        assert "CSRF" in response.json()["detail"]
        assert client.post("/supervise/sign-out", data={k: v for k, v in data.items() if k == "csrf"}).status_code == 403
    listed = domain.client.get("/api/v1/supervision/alerts", headers=demo_office(domain).bearer)
    assert alert in [a["id"] for a in listed.json()["items"]]  # still open
    response = client.post("/supervise/sign-out", data={"csrf": csrf})
    assert response.status_code == 303 and response.headers["location"] == "/supervise/sign-in"
    assert client.get("/supervise").status_code == 303


# --- the audit search --------------------------------------------------------------------


def _plant(domain: Domain, *, actor: str, object_id: str, detail: dict[str, Any]) -> None:
    """An entry as a careless (or hostile) writer would leave it."""
    services = domain.services
    with transaction(services.engine) as session:
        services.audit.append(session, actor=actor, action="licence.note",
                              object_type="licence", object_id=object_id, detail=detail)


def test_the_audit_search_never_shows_a_whole_id_number_or_name(domain: Domain) -> None:
    issued = domain.issue(1)  # the physician's licence (a person)
    _plant(domain, actor=f"department:{domain.department(1)['code']}/client:x",
           object_id=issued["identifier"],
           detail={"holder_name": PHYSICIAN_NAME, "note": f"证件号 {PHYSICIAN_ID} 已核对",
                   "nested": [{"holder": PHYSICIAN_NAME}]})
    office = demo_office(domain)
    response = domain.client.get("/api/v1/supervision/audit", params={"holder": PHYSICIAN_ID},
                                 headers=office.bearer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert PHYSICIAN_ID not in response.text and PHYSICIAN_NAME not in response.text
    assert body["query"]["holder"] == "350***********0034"
    actions = {(e["action"], e["object_id"]) for e in body["items"]}
    assert ("licence.issue", issued["identifier"]) in actions
    assert ("licence.note", issued["identifier"]) in actions
    note = next(e for e in body["items"] if e["action"] == "licence.note")
    assert note["detail"] == {"holder_name": "陈*华", "note": "证件号 350***********0034 已核对",
                              "nested": [{"holder": "陈*华"}]}
    # Only that holder's licences: the food licences' entries are not among them.
    assert all(f".{domain.department(1)['code']}." in e["object_id"] for e in body["items"])
    client, _ = signed_in(domain)
    page = client.get("/supervise/audit", params={"holder": PHYSICIAN_ID})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert PHYSICIAN_NAME not in page.text and page.text.count(PHYSICIAN_ID) == 1  # the link only
    assert "350***********0034" in page.text
    exported = client.get("/supervise/audit.csv", params={"holder": PHYSICIAN_ID})
    assert exported.status_code == 200
    text = exported.content.decode("utf-8")
    assert PHYSICIAN_ID not in text and PHYSICIAN_NAME not in text and "陈*华" in text


def test_the_audit_search_covers_the_division_only(domain: Domain) -> None:
    add_department(domain, *ELSEWHERE)
    _plant(domain, actor=f"department:{ELSEWHERE[0]}/client:y", object_id="elsewhere-licence",
           detail={"note": "another city's"})
    office = demo_office(domain)
    found = domain.client.get("/api/v1/supervision/audit", params={"limit": 200},
                              headers=office.bearer).json()["items"]
    assert found and all(e["object_id"] != "elsewhere-licence" for e in found)
    refused = domain.client.get("/api/v1/supervision/audit", params={"department": ELSEWHERE[0]},
                                headers=office.bearer)
    assert refused.status_code == 403 and ELSEWHERE[0] in refused.json()["detail"]
    province = add_office(domain, "11350000003600055X", "350000", "provincial")
    seen = domain.client.get("/api/v1/supervision/audit", params={"department": ELSEWHERE[0]},
                             headers=province.bearer).json()["items"]
    assert [e["object_id"] for e in seen] == ["elsewhere-licence"] or "elsewhere-licence" in [
        e["object_id"] for e in seen]


def test_the_audit_search_pages_newest_first_without_overlap(domain: Domain) -> None:
    office = demo_office(domain)
    market = domain.department(0)["code"]
    seen: list[int] = []
    before: int | None = None
    for _ in range(4):
        params: dict[str, Any] = {"department": market, "limit": 3}
        if before is not None:
            params["before"] = before
        page = domain.client.get("/api/v1/supervision/audit", params=params,
                                 headers=office.bearer).json()
        seen.extend(e["seq"] for e in page["items"])
        before = page["next_before"]
        if before is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) and len(seen) >= 6
    late = domain.client.get("/api/v1/supervision/audit", params={"from": "2030-01-01"},
                             headers=office.bearer).json()
    assert late["items"] == []


# --- CSV ---------------------------------------------------------------------------------


def _rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["cache-control"] == "no-store"
    assert response.content.startswith("\ufeff".encode())  # Excel reads the BOM as UTF-8
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_csv_cells_never_start_a_formula(domain: Domain) -> None:
    market = domain.department(0)["code"]
    for lead in ("=", "+", "-", "@"):
        _plant(domain, actor=f"department:{market}/client:z",
               object_id=f'{lead}HYPERLINK("http://evil.example","x")',
               detail={"note": f"{lead}1+1"})
    client, _ = signed_in(domain)
    rows = _rows(client.get("/supervise/audit.csv", params={"action": "licence.note"}))
    assert rows[0][0] == "序号 / seq" and "操作 / action" in rows[0]
    planted = [r for r in rows[1:] if "HYPERLINK" in r[5]]
    assert len(planted) == 4
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), row
    assert {r[5][:2] for r in planted} == {"'=", "'+", "'-", "'@"}


def test_the_figures_as_csv(domain: Domain) -> None:
    client, _ = signed_in(domain)
    rows = _rows(client.get("/supervise/figures.csv"))
    assert rows[0][:4] == ["月份 / month", "部门代码 / department code", "部门 / department", "签发 / issued"]
    market = domain.department(0)["code"]
    mine = [r for r in rows[1:] if r[1] == market and r[0] == "2026-02"]
    assert len(mine) == 1 and int(mine[0][3]) >= 2
    assert client.get("/supervise/figures.csv", params={"department": ELSEWHERE[0]}).status_code == 403


# --- end to end --------------------------------------------------------------------------


def _raise(domain: Domain, subject: str) -> str:
    services = domain.services
    with transaction(services.engine) as session:
        return raise_alert(
            session, services.audit, rule="verify_not_valid", severity=Severity.WARNING,
            subject=subject, summary="核验了已吊销的证照 / a revoked licence was verified",
            at=services.clock.now(), department_code=domain.department(0)["code"],
        )


def test_sign_in_see_the_month_and_acknowledge_an_alert(domain: Domain) -> None:
    issued = domain.issue(0)
    alert = _raise(domain, issued["identifier"])
    client, csrf = signed_in(domain)
    page = client.get("/supervise")
    assert page.headers["cache-control"] == "no-store"
    month = re.search(r'id="month-issued">(\d+)<', page.text)
    assert month is not None
    figures = domain.client.get("/api/v1/supervision/figures",
                                headers=demo_office(domain).bearer).json()
    assert int(month.group(1)) == figures["by_month"][-1]["issued"] >= 1
    assert f'id="alert-{alert}"' in page.text
    assert "<svg" in page.text and "<title" in page.text and 'id="month-table"' in page.text
    assert "<script" not in page.text and "style=" not in page.text  # the CSP forbids them
    # A comment is required: the refusal says so, and the alert stays open.
    refused = client.post(f"/supervise/alerts/{alert}/acknowledge", data={"csrf": csrf, "comment": ""})
    assert refused.status_code == 422 and 'id="problem"' in refused.text
    assert f'id="alert-{alert}"' in client.get("/supervise").text
    done = client.post(f"/supervise/alerts/{alert}/acknowledge",
                       data={"csrf": csrf, "comment": "已通知发证部门核查 / issuer notified",
                             "next": "https://evil.example/"})
    assert done.status_code == 303 and done.headers["location"] == "/supervise/alerts?state=all"
    assert f'id="alert-{alert}"' not in client.get("/supervise").text
    listed = client.get("/supervise/alerts", params={"state": "all"})
    assert listed.status_code == 200 and listed.headers["cache-control"] == "no-store"
    item = listed.text[listed.text.index(f'id="alert-{alert}"'):]
    item = item[: item.index("</li>")]
    assert "已通知发证部门核查" in item and "已确认 / acknowledged" in item
    assert f'id="alert-{alert}"' not in client.get("/supervise/alerts").text
    # Acknowledging twice is refused, and the audit names the supervisor.
    again = client.post(f"/supervise/alerts/{alert}/acknowledge", data={"csrf": csrf, "comment": "x"})
    assert again.status_code == 409
    with reading(domain.services.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "alert.acknowledge",
                                                      AuditEntry.object_id == alert)).one()
    assert entry.actor == f"supervisor:{demo_office(domain).code}/client:{demo_office(domain).client_id}"


def test_a_visitor_is_sent_to_sign_in(domain: Domain) -> None:
    client = browser(domain)
    for path in ("/supervise", "/supervise/audit", "/supervise/alerts"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/supervise/sign-in"
        assert response.headers["cache-control"] == "no-store"
    assert client.get("/supervise/audit.csv").status_code == 401


def test_a_holders_own_record_entries_are_found_and_masked(domain: Domain) -> None:
    from licences.models import Holder

    with reading(domain.services.engine) as session:
        row = session.exec(select(Holder).where(Holder.id_number == PHYSICIAN_ID)).one()
    services = domain.services
    with transaction(services.engine) as session:
        services.audit.append(session, actor=f"department:{domain.department(1)['code']}/client:r",
                              action="holder.rename", object_type="holder",
                              object_id=f"holder:{row.id}", detail={"from": PHYSICIAN_NAME, "to": "陈建国"})
    found = domain.client.get("/api/v1/supervision/audit",
                              params={"holder": PHYSICIAN_ID, "action": "holder.rename"},
                              headers=demo_office(domain).bearer)
    items = found.json()["items"]
    assert [(e["object_id"], e["detail"]) for e in items] == [
        (f"holder:{row.id}", {"from": "陈*华", "to": "陈*国"})]


def test_sign_in_is_rate_limited_per_address(tmp_path_factory: pytest.TempPathFactory) -> None:
    limited = demo_domain(tmp_path_factory, "suprate", clock=FixedClock(START),
                          public_rate_limit="3/minute")
    office = demo_office(limited)
    client = browser(limited)
    form = client.get("/supervise/sign-in")  # the first hit of the address's window
    answers = []
    for n in range(3):
        token = _CSRF.search(form.text)
        assert token is not None
        form = client.post("/supervise/sign-in", data={"csrf": token.group(1), "client_id": office.client_id,
                                                       "api_key": f"elk_{office.client_id}_guess{n}"})
        answers.append(form.status_code)
    assert answers == [401, 401, 429]
    refused = client.post("/supervise/sign-in", data={"csrf": token.group(1), "client_id": office.client_id,
                                                      "api_key": office.api_key})
    assert refused.status_code == 429 and "retry-after" in refused.headers  # even the right key waits


def test_a_province_chart_draws_its_twenty_largest_departments() -> None:
    from api.pages.supervise_charts import dashboard_charts

    departments = [{"department_code": f"D{n:02d}", "department_name": f"示范省部门{n:02d}",
                    "issued": n, "verified": 0, "reused": 0, "revoked": 0} for n in range(25)]
    months = [{"month": "2026-02", "issued": 300, "verified": 0, "reused": 0, "revoked": 0}]
    monthly, by_department = dashboard_charts(months, departments)
    issued = by_department[0]
    assert len(issued.bars) == 20 and "top 20" in issued.title
    assert sorted(bar.value for bar in issued.bars) == list(range(5, 25))
    assert issued.bars[0].label == "24" and "示范省部门24 D24" == issued.bars[0].full_label
    assert monthly[0].bars[0].height == 110 and monthly[0].bars[0].label == "02"


def test_a_supervision_client_writes_nothing(domain: Domain) -> None:
    from api.edge.auth import SUPERVISOR_READS_ONLY
    from seals.models import Seal

    office = demo_office(domain)
    issued = domain.issue(0)
    identifier = issued["identifier"]
    sample = domain.department(0)["sample_request"]
    with reading(domain.services.engine) as session:
        seal = session.exec(select(Seal).where(Seal.department_code == domain.department(0)["code"])).first()
        assert seal is not None
    attempts = [
        ("POST", "/api/v1/licences", sample),
        ("POST", f"/api/v1/licences/{identifier}/revoke", {"reason": "x"}),
        ("POST", f"/api/v1/licences/{identifier}/suspend", {"reason": "x"}),
        ("POST", f"/api/v1/catalogue/licence-types/{sample['licence_type']}/withdraw", {"reason": "x"}),
        ("DELETE", f"/api/v1/catalogue/licence-types/{sample['licence_type']}", None),
        ("POST", f"/api/v1/seals/{seal.code}/revoke", {"reason": "keyCompromise"}),
        ("GET", f"/api/v1/licences/{identifier}", None),
    ]
    for method, path, body in attempts:
        response = domain.client.request(method, path, json=body, headers=office.bearer)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["detail"] == SUPERVISOR_READS_ONLY
    mine = domain.client.get(f"/api/v1/licences/{identifier}", headers=domain.auth(0)).json()
    assert mine["status"] == "valid"
    entry = domain.client.get(f"/api/v1/catalogue/licence-types/{sample['licence_type']}").json()
    assert entry["status"] == "active"
