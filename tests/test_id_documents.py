"""The identity documents people hold: each type's published format and check rule (the valid
examples are computed here by the published rule, not by the product), a wrong check character
refused naming the type and the rule, the masked form each viewer sees, and a licence issued to
and verified for a holder of each, granted, searched for and found in the supervisor's audit."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from api.edge.holder_session import COOKIE
from core.clock import FixedClock, china_today
from core.db import transaction
from core.errors import InvalidInput
from licences.catalogue_rules import ID_TYPES_FOR_CATEGORY
from licences.holders import check_name
from licences.id_documents import identify, validate_holder_id
from licences.masking import mask_holder_id, mask_name, mask_typed_id
from tests.domain import Domain, demo_domain
from tests.holder_login import HolderSite, authorize_page, start_site
from tests.repo_domains import issue, physician_body, verify_qr
from tests.supervision_fixtures import demo_office, holder_client

TODAY = date(2026, 12, 7)


def mod11_2(body17: str) -> str:
    """ISO 7064 MOD 11-2 as the standard writes it, the recursive form (P = (P + digit) * 2 mod
    11; check = (12 - P) mod 11, 10 written X): deliberately not the weighted sum the product
    uses, so a mistake in either shows."""
    p = 0
    for digit in body17:
        p = (p + int(digit)) * 2 % 11
    check = (12 - p) % 11
    return "X" if check == 10 else str(check)


def gb11643(body17: str) -> str:
    return body17 + mod11_2(body17)


def wrong_check(number: str) -> str:
    right = number[-1]
    return number[:-1] + ("0" if right != "0" else "1")


HONG_KONG_PERMIT_RESIDENT = gb11643("81000019900101123")
MACAO_PERMIT_RESIDENT = gb11643("82000019851231004")
TAIWAN_PERMIT_RESIDENT = gb11643("83000020000229002")
# 2023 card: 9, acceptance place 11 (Beijing), nationality 840 (numeric), born 1985-06-12, 001
PERMANENT_2023 = gb11643("91184019850612001")


# --- the published rules, type by type -----------------------------------------------------------


@pytest.mark.parametrize(
    ("id_type", "typed", "stored"),
    [
        ("414", "E12345678", "E12345678"),  # electronic passport before April 2017
        ("414", "g12345678", "G12345678"),  # the old passport
        ("414", "EA1234567", "EA1234567"),  # from April 2017: E, a letter, 7 digits
        ("414", "CHN:E12345678", "E12345678"),  # a Chinese passport with its country: one spelling
        ("414", "usa:x12345678", "USA:X12345678"),
        ("414", "GBR:123456789", "GBR:123456789"),
        ("516", "H12345678", "H12345678"),  # the card, 2013 on
        ("516", "M1234567890", "M1234567890"),  # the older booklet
        ("511", "12345678", "12345678"),
        ("511", "0123456789(B)", "0123456789B"),  # the older permit and its issue letter
        ("560", HONG_KONG_PERMIT_RESIDENT, HONG_KONG_PERMIT_RESIDENT),
        ("560", MACAO_PERMIT_RESIDENT, MACAO_PERMIT_RESIDENT),
        ("560", TAIWAN_PERMIT_RESIDENT, TAIWAN_PERMIT_RESIDENT),
        ("553", PERMANENT_2023, PERMANENT_2023),
        ("553", "usa110850612001", "USA110850612001"),  # the 15-character card
    ],
)
def test_each_documents_published_form_passes_in_one_spelling(
    id_type: str, typed: str, stored: str
) -> None:
    assert validate_holder_id(id_type, typed, TODAY) == stored


def refusal(id_type: str, number: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        validate_holder_id(id_type, number, TODAY)
    assert caught.value.field == "holder.id"
    return caught.value


@pytest.mark.parametrize(
    ("id_type", "number", "type_name"),
    [
        ("560", HONG_KONG_PERMIT_RESIDENT, "港澳台居民居住证"),
        ("560", TAIWAN_PERMIT_RESIDENT, "港澳台居民居住证"),
        ("553", PERMANENT_2023, "外国人永久居留身份证"),
        ("111", gb11643("11010519491231002"), "居民身份证"),
    ],
)
def test_a_wrong_check_character_names_the_type_and_the_rule(
    id_type: str, number: str, type_name: str
) -> None:
    message = refusal(id_type, wrong_check(number)).message
    assert type_name in message and "校验码错误" in message
    assert "MOD 11-2" in message or "GB 11643" in message


@pytest.mark.parametrize(
    ("id_type", "number", "names"),
    [
        ("414", "EI1234567", "E 加字母（不含 I、O）"),  # I is never the second letter
        ("414", "E1234567", "E 或 G 加 8 位数字"),
        ("414", "A12345678", "E 或 G"),  # a Chinese passport is E or G
        ("414", "XXX:12345678", "ISO 3166-1"),  # no such country
        ("414", "USA:1234", "5-20"),
        ("414", "USA:" + "1" * 21, "5-20"),
        ("414", "USA:1234-5678", "5-20"),
        ("516", "K12345678", "H 或 M"),
        ("516", "H123456789", "H 或 M"),  # 9 digits: neither the card nor the booklet
        ("511", "1234567", "8 位数字"),
        ("511", "0123456789", "8 位数字"),  # the old form has its letter
        ("560", gb11643("35010219900101123"), "810000、820000 或 830000"),  # a mainland address
        ("560", gb11643("81000019901301123"), "出生日期"),  # no 13th month
        ("553", gb11643("81184019850612001"), "首位应为 9"),
        ("553", "XXX110850612001", "ISO 3166-1"),
        ("553", "USA11085061200", "18 位"),
        ("553", gb11643("91184020991231001"), "晚于今天"),  # born after today
    ],
)
def test_each_rule_refuses_what_breaks_it(id_type: str, number: str, names: str) -> None:
    assert names in refusal(id_type, number).message


def test_a_resident_id_is_not_taken_for_the_documents_that_borrow_its_form() -> None:
    """A person has one holder record: a residence permit or 2023 card number offered as a
    resident ID is refused, naming the type it belongs to."""
    assert "560" in refusal("111", HONG_KONG_PERMIT_RESIDENT).message
    assert "553" in refusal("111", PERMANENT_2023).message


def test_an_unknown_type_is_refused_with_the_list() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_holder_id("999", "E12345678", TODAY)
    assert caught.value.field == "holder.id_type"
    assert all(code in caught.value.message for code in ("111", "001", "414", "516", "553"))


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (HONG_KONG_PERMIT_RESIDENT, ("560", HONG_KONG_PERMIT_RESIDENT)),
        (PERMANENT_2023, ("553", PERMANENT_2023)),
        ("350102198503120034", ("111", "350102198503120034")),
        ("91350100M000100Y43", ("001", "91350100M000100Y43")),
        ("h12345678", ("516", "H12345678")),
        ("12345678", ("511", "12345678")),
        ("E12345678", ("414", "E12345678")),
        ("USA:X12345678", ("414", "USA:X12345678")),
    ],
)
def test_a_number_without_its_type_is_identified_by_its_form(
    typed: str, expected: tuple[str, str]
) -> None:
    assert identify(typed, TODAY) == expected


def test_a_number_of_no_document_is_refused_by_the_rule_most_callers_broke() -> None:
    with pytest.raises(InvalidInput) as caught:
        identify("35010219850312003X", TODAY)  # a resident ID with a wrong check character
    assert "居民身份证" in caught.value.message and "GB 11643" in caught.value.message


# --- masking ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_type", "number", "masked"),
    [
        ("414", "E12345678", "E*****678"),
        ("414", "USA:X12345678", "USA:X*****678"),
        ("516", "H12345678", "H*****678"),
        ("516", "M1234567890", "M*******890"),
        ("511", "12345678", "*****678"),
        ("511", "0123456789B", "********89B"),
        ("560", HONG_KONG_PERMIT_RESIDENT, "810***********" + HONG_KONG_PERMIT_RESIDENT[-4:]),
        ("553", PERMANENT_2023, "911***********" + PERMANENT_2023[-4:]),
        ("553", "USA110850612001", "USA*********001"),
        ("111", "350102198503120034", "350***********0034"),
    ],
)
def test_each_type_is_masked_to_what_a_clerk_needs(id_type: str, number: str, masked: str) -> None:
    assert mask_holder_id(id_type, number, True) == masked
    assert mask_holder_id(id_type, number, False) == number  # organisations: public data


def test_a_typed_search_term_is_masked_by_its_document_or_whole() -> None:
    assert mask_typed_id("E12345678") == "E*****678"
    assert mask_typed_id("not-an-id") == "*********"


def test_latin_and_middle_dot_names_are_accepted_and_masked() -> None:
    assert check_name("  JOHN SMITH ") == "JOHN SMITH"
    assert check_name("买买提·艾力") == "买买提·艾力"
    assert mask_name("JOHN SMITH", True) == "J*** S****"
    assert mask_name("买买提·艾力", True) == "买****力"
    with pytest.raises(InvalidInput):
        check_name("JOHN\x00SMITH")


def test_the_catalogue_says_which_types_each_holder_category_accepts() -> None:
    assert set(ID_TYPES_FOR_CATEGORY["natural_person"]) == {
        "111",
        "414",
        "511",
        "516",
        "553",
        "560",
    }
    assert ID_TYPES_FOR_CATEGORY["legal_person"] == ("001",)
    assert ID_TYPES_FOR_CATEGORY["other_organisation"] == ("001",)


# --- through the product: issue, verify, grant, search, audit ------------------------------------


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    return demo_domain(tmp_path_factory, "id-documents", clock=clock)


def fresh(id_type: str) -> tuple[str, str]:
    """A new number of each type (typed as a person would) and its masked form."""
    n = secrets.randbelow(10**7)
    if id_type == "414":
        number = f"USA:P{n:08d}"
        return number, f"USA:P*****{number[-3:]}"
    if id_type == "516":
        number = f"M{n:08d}"
        return number, f"M*****{number[-3:]}"
    if id_type == "511":
        number = f"{n:08d}"
        return number, f"*****{number[-3:]}"
    if id_type == "560":
        number = gb11643(f"83000019900101{n % 1000:03d}")
        return number, "830***********" + number[-4:]
    assert id_type == "553"
    number = gb11643(f"91184019850612{n % 1000:03d}")
    return number, "911***********" + number[-4:]


PERSON_TYPES = ("414", "516", "511", "560", "553")


def issue_to(domain: Domain, id_type: str, number: str, name: str) -> dict[str, Any]:
    holder = {"id_type": id_type, "id": number, "name": name}
    return issue(domain, physician_body(domain, holder=holder), index=1)


@pytest.mark.parametrize("id_type", PERSON_TYPES)
def test_a_licence_is_issued_and_verified_on_each_document(domain: Domain, id_type: str) -> None:
    number, masked = fresh(id_type)
    issued = issue_to(domain, id_type, number.lower(), "JOHN SMITH")
    report = verify_qr(domain, issued)
    assert report["indication"] == "PASSED", report
    assert report["licence"]["identifier"] == issued["identifier"]
    assert report["licence"]["holder_id"] == masked
    assert report["licence"]["holder_name"] == "J*** S****"
    # the same person again, typed another way: the same holder record, not a second one
    again = issue_to(domain, id_type, number, "JOHN SMITH")
    assert again["identifier"] != issued["identifier"]
    assert holder_rows(domain, id_type, validate_holder_id(id_type, number)) == 1
    found = domain.client.get(
        "/api/v1/licences", params={"holder_id": number}, headers=domain.auth(1)
    )
    assert found.status_code == 200, found.text
    identifiers = {item["identifier"] for item in found.json()["items"]}
    assert identifiers == {issued["identifier"], again["identifier"]}


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()  # type: ignore[no-any-return]


def test_a_hostile_department_cannot_issue_on_a_bad_or_foreign_document(domain: Domain) -> None:
    before = holder_count(domain)
    wrong = wrong_check(fresh("560")[0])
    body = physician_body(domain, holder={"id_type": "560", "id": wrong, "name": "陈大文"})
    refused = problem(
        domain.client.post("/api/v1/licences", json=body, headers=domain.auth(1)), 422
    )
    assert refused["field"] == "holder.id" and "港澳台居民居住证" in refused["detail"]
    assert "MOD 11-2" in refused["detail"]
    # a credit code for a person's licence, a passport for a company's: refused by category
    body = physician_body(
        domain,
        holder={"id_type": "001", "id": "91350100M000100Y43", "name": "示范餐饮管理有限公司"},
    )
    refused = problem(
        domain.client.post("/api/v1/licences", json=body, headers=domain.auth(1)), 422
    )
    assert refused["field"] == "holder.id_type" and "001" not in refused["accepted_id_types"]
    assert "414" in refused["accepted_id_types"]
    food = dict(domain.department(0)["sample_request"])
    food["holder"] = {"id_type": "414", "id": "E12345678", "name": "JOHN SMITH"}
    food["valid_from"] = china_today(domain.services.clock.now()).isoformat()
    refused = problem(
        domain.client.post("/api/v1/licences", json=food, headers=domain.auth(0)), 422
    )
    assert refused["accepted_id_types"] == ["001"]
    assert holder_count(domain) == before  # nothing half-written


def holder_count(domain: Domain) -> int:
    with domain.services.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM holder")).scalar_one())


def holder_rows(domain: Domain, id_type: str, number: str) -> int:
    with domain.services.engine.connect() as conn:
        query = text("SELECT count(*) FROM holder WHERE id_type = :t AND id_number = :n")
        return int(conn.execute(query, {"t": id_type, "n": number}).scalar_one())


def test_a_passport_holder_signs_in_grants_and_the_department_pulls(
    domain: Domain, clock: FixedClock
) -> None:
    number, masked = fresh("414")
    issued = issue_to(domain, "414", number, "MARIA GARCIA")
    stored = validate_holder_id("414", number)
    client, csrf = holder_client(
        domain, {"id_type": "414", "id": stored, "name": "MARIA GARCIA"}, "idp-passport"
    )
    today = china_today(clock.now())
    granted = client.post(
        "/api/v1/holder/grants",
        json={
            "identifier": issued["identifier"],
            "department": domain.department(0)["code"],
            "service_item": "000126022000-01",
            "business_number": "FZ-2026-000001",
            "valid_until": (today + timedelta(days=30)).isoformat(),
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert granted.status_code == 201, granted.text
    clock.advance(timedelta(seconds=1))
    pulled = domain.client.get(
        f"/api/v1/licences/{issued['identifier']}",
        params={"service_item": "000126022000-01", "business_number": "FZ-2026-000001"},
        headers=domain.auth(0),
    )
    assert pulled.status_code == 200, pulled.text
    assert pulled.json()["holder"] == {"id_type": "414", "id": masked, "name": "M**** G*****"}
    # another passport holder signed in cannot grant this licence
    other, other_csrf = holder_client(
        domain, {"id_type": "414", "id": "E87654321", "name": "MARIA GARCIA"}, "idp-other"
    )
    stolen = other.post(
        "/api/v1/holder/grants",
        json={
            "identifier": issued["identifier"],
            "department": domain.department(0)["code"],
            "service_item": "000126022000-01",
            "business_number": "FZ-2026-000002",
            "valid_until": (today + timedelta(days=30)).isoformat(),
        },
        headers={"X-CSRF-Token": other_csrf},
    )
    assert stolen.status_code in (403, 404), stolen.text


def test_the_supervisor_finds_a_permit_holders_entries_masked(domain: Domain) -> None:
    number, masked = fresh("516")
    issued = issue_to(domain, "516", number, "陈大文")
    office = demo_office(domain)
    response = domain.client.get(
        "/api/v1/supervision/audit", params={"holder": number.lower()}, headers=office.bearer
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"]["holder"] == masked
    assert ("licence.issue", issued["identifier"]) in {
        (e["action"], e["object_id"]) for e in body["items"]
    }
    assert all(e["object_id"] == issued["identifier"] for e in body["items"])
    assert number not in response.text
    # a mistyped number is refused by its rule, not answered with nothing
    refused = problem(
        domain.client.get(
            "/api/v1/supervision/audit",
            params={"holder": wrong_check(fresh("560")[0])},
            headers=office.bearer,
        ),
        422,
    )
    assert "校验码" in refused["detail"]


def test_a_batch_takes_each_document_and_refuses_a_bad_check_item_by_item(domain: Domain) -> None:
    numbers = {t: fresh(t)[0] for t in PERSON_TYPES}
    items = [
        physician_body(domain, holder={"id_type": t, "id": n, "name": "LEE KA MING"})
        for t, n in numbers.items()
    ]
    bad = physician_body(
        domain, holder={"id_type": "553", "id": wrong_check(fresh("553")[0]), "name": "ANNA"}
    )
    headers = {**domain.auth(1), "Idempotency-Key": "id-documents-batch"}
    response = domain.client.post(
        "/api/v1/licences:batch", json={"items": [*items, bad]}, headers=headers
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201] * len(PERSON_TYPES) + [422]
    assert results[-1]["error"]["field"] == "holder.id"
    assert "外国人永久居留身份证" in results[-1]["error"]["detail"]
    for id_type, number in numbers.items():
        assert holder_rows(domain, id_type, validate_holder_id(id_type, number)) == 1


def test_other_documents_numbers_in_an_audit_note_are_masked_for_the_supervisor(
    domain: Domain,
) -> None:
    """A careless department writes a passport and a permit number into a note: the supervisor's
    search shows them masked by their documents' rules."""
    number, masked = fresh("414")
    issued = issue_to(domain, "414", number, "JOHN SMITH")
    with transaction(domain.services.engine) as session:
        domain.services.audit.append(
            session,
            actor=f"department:{domain.department(1)['code']}/client:x",
            action="licence.note",
            object_type="licence",
            object_id=issued["identifier"],
            detail={"note": f"护照 {number} 与通行证 H12345678、E12345678 已核对"},
        )
    response = domain.client.get(
        "/api/v1/supervision/audit",
        params={"holder": number, "action": "licence.note"},
        headers=demo_office(domain).bearer,
    )
    assert response.status_code == 200, response.text
    (entry,) = response.json()["items"]
    assert entry["detail"]["note"] == f"护照 {masked} 与通行证 H*****678、E*****678 已核对"


# --- holder sign-in through OpenID Connect: the provider's claims carry the new types ------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
    with start_site(tmp_path_factory.mktemp("id-documents-site") / "data") as built:
        yield built


def sign_in_as(site: HolderSite, holder: dict[str, str]) -> tuple[httpx.Client, httpx.Response]:
    """The whole flow for a holder the provider is given for this test."""
    site.idp.holders = (*site.idp.holders, holder)
    client = httpx.Client(base_url=site.base_url, timeout=60, follow_redirects=True)
    try:
        _, form = authorize_page(client)
        assert holder["subject"] in form.subjects
        return client, client.post(form.action, data={**form.hidden, "holder": holder["subject"]})
    finally:
        site.idp.holders = site.idp.holders[:-1]


def test_a_passport_holder_signs_in_and_sees_their_licence(site: HolderSite) -> None:
    number = f"usa:p{secrets.randbelow(10**8):08d}"  # as a provider may spell it
    stored = number.upper()
    today = china_today(site.services.clock.now())
    body = dict(site.credentials["departments"][1]["sample_request"])
    body |= {
        "holder": {"id_type": "414", "id": stored, "name": "JOHN SMITH"},
        "valid_from": today.isoformat(),
    }
    issued = site.client.post("/api/v1/licences", json=body, headers=site.auth(1))
    assert issued.status_code == 201, issued.text
    holder = {"subject": "demo-passport", "id_type": "414", "id": number, "name": "JOHN SMITH"}
    client, answer = sign_in_as(site, holder)
    with closing(client):
        assert answer.status_code == 200 and answer.url.path == "/me", answer.text[:300]
        assert 'id="holder-name" title="已登录 / signed in">J*** S****<' in answer.text
        mine = client.get("/api/v1/holder/licences").json()["licences"]
        assert [item["identifier"] for item in mine] == [issued.json()["identifier"]]


def test_a_sign_in_whose_permit_number_breaks_its_rule_is_refused(site: HolderSite) -> None:
    broken = wrong_check(fresh("560")[0])
    holder = {"subject": "demo-bad-permit", "id_type": "560", "id": broken, "name": "陈大文"}
    client, answer = sign_in_as(site, holder)
    with closing(client):
        assert answer.status_code == 403 and 'data-reason="identity"' in answer.text
        assert COOKIE not in client.cookies


def test_the_exchange_format_carries_the_document_type_both_ways(domain: Domain) -> None:
    number, _ = fresh("414")
    issued = issue_to(domain, "414", number, "JOHN SMITH")
    exported = domain.client.get(
        f"/api/v1/licences/{issued['identifier']}/export", headers=domain.auth(1)
    )
    assert exported.status_code == 200, exported.text
    record = exported.json()
    assert record["持证主体代码类型"] == "414" and record["持证主体代码类型名称"] == "护照"
    assert record["持证主体代码"] == number.upper()
    # another system's records of a permit holder: one good, one with a wrong check character
    permit = fresh("516")[0]
    imported = {k: v for k, v in record.items() if k != "证照标识"}
    imported |= {"持证主体代码类型": "516", "持证主体代码": permit, "持证主体": "陈大文"}
    bad = imported | {"持证主体代码类型": "553", "持证主体代码": wrong_check(fresh("553")[0])}
    response = domain.client.post(
        "/api/v1/licences:import",
        json=[imported, bad],
        headers={**domain.auth(1), "Idempotency-Key": "id-documents-import"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422], results
    assert results[1]["error"]["field"] == "持证主体代码"  # named as the record names it
    assert "外国人永久居留身份证" in results[1]["error"]["detail"]
    assert holder_rows(domain, "516", permit) == 1
