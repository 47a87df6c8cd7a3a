"""Use authorisation codes (用证授权码): a holder's presentation code made for one service item,
redeemed once by the first department that scans it (``POST /api/v1/presentations:redeem``).

Attacks first — a second department replaying the code, a client without the pull scope, a
show-only code, an expired, forged, never-minted or foreign-key code, a printed licence's QR, a
licence revoked after the code was made, two departments racing — each refused with its named
``refusal`` and leaving no pull row; then what a redemption gives (exactly the item's declared
fields, the holder masked), the holder's choice on the present page, and the holder's usage log.
On SQLite and PostgreSQL. The whole flow over real HTTP with real sign-in is
tests/test_use_codes_e2e.py."""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from api.edge.holder_session import COOKIE, HolderPrincipal
from core.audit import AuditEntry
from core.clock import FixedClock
from core.db import reading, transaction
from licences.payload import decode, key_id, sign
from licences.pulls import LicencePull
from licences.use_code_records import PresentationUse
from seals.clients import create_client
from tests.conftest import fresh_schema, make_settings
from tests.domain import Domain, build_domain
from tests.repo_domains import BACKENDS, issue, new_company, physician_body

TTL = 120
# The demo physician type's service items and what the catalogue declares each needs
# (api/ops/demo.py), written here rather than read back from the product.
ITEM = "000126022000-01"  # 医疗机构执业登记人员核验: category and workplace
ITEM_FIELDS = {"category": "临床", "workplace": "示范市第一医院"}
WIDE_ITEM = "000126021000-01"  # 医师多机构执业备案: category, scope and workplace
WIDE_FIELDS = {"category": "临床", "scope": "内科专业", "workplace": "示范市第一医院"}
THIRD = "11350100003600036H"  # a third department, with a pull-only client
RACERS = 3  # more departments with pull-only clients, for the race
REDEEM = "/api/v1/presentations:redeem"


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


def _database(request: pytest.FixtureRequest) -> str | None:
    if request.param != "postgres":
        return None
    base: str = request.getfixturevalue("postgres_url")
    return fresh_schema(base, "t_use_codes")


@pytest.fixture(scope="module", params=BACKENDS)
def domain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, clock: FixedClock
) -> Domain:
    data_dir = tmp_path_factory.mktemp(f"use-codes-{request.param}") / "data"
    settings = make_settings(
        data_dir, database_url=_database(request), presentation_ttl_seconds=TTL
    )
    built = build_domain(settings, clock=clock)
    services = built.services
    departments = {"third": THIRD} | {f"racer{i}": new_company() for i in range(RACERS)}
    with transaction(services.engine) as session:
        for name, code in departments.items():
            services.seals.add_department(
                session,
                actor="test",
                code=code,
                name=f"示范市{name}局",
                division_code="350100",
                level="municipal",
            )
            session.flush()
            built.credentials[name] = client(built, session, code, ("licences:pull",))
        market = built.department(0)["code"]
        built.credentials["issue_only"] = client(built, session, market, ("licences:issue",))
    return built


def client(domain: Domain, session: Session, department: str, scopes: tuple[str, ...]) -> Any:
    """The Bearer header of a new API client of ``department`` with ``scopes``."""
    services = domain.services
    _, key = create_client(
        session,
        services.audit,
        services.clock,
        department_code=department,
        name=f"counter-{'-'.join(scopes)}"[:64],
        actor="test",
        scopes=scopes,
    )
    return {"Authorization": f"Bearer {key}"}


class Holder:
    """A holder's browser, signed in by a session cookie sealed the way sign-in seals it."""

    def __init__(self, domain: Domain, id_number: str) -> None:
        principal = HolderPrincipal(
            id_type="111",
            id_number=id_number,
            name="张测试",
            subject=f"idp-{id_number[-6:]}",
            issuer="https://idp.example.gov.cn",
        )
        sessions, now = domain.services.holder_sessions, domain.services.clock.now()
        value = sessions.seal(principal, now)
        _, csrf = sessions.open(value, now)
        self.client = TestClient(domain.client.app)
        self.client.cookies.set(COOKIE, value)
        self.client.headers["X-CSRF-Token"] = csrf

    def code(self, identifier: str, service_item: str | None = ITEM) -> str:
        """A presentation code made through the holder API: its text, as the QR holds it."""
        body = {"service_item": service_item} if service_item else None
        made = self.client.post(f"/api/v1/holder/licences/{identifier}/presentations", json=body)
        assert made.status_code == 201, made.text
        assert made.json()["service_item"] == service_item
        return str(made.json()["qr"])


def new_licence(domain: Domain) -> tuple[str, Holder]:
    body = physician_body(domain)
    issued = issue(domain, body, index=1)
    return issued["identifier"], Holder(domain, body["holder"]["id"])


def redeem(domain: Domain, code: str, who: str | int = 0, **body: Any) -> httpx.Response:
    headers: dict[str, str] = domain.auth(who) if isinstance(who, int) else domain.credentials[who]
    response: httpx.Response = domain.client.post(
        REDEEM, json={"code": code, **body}, headers=headers
    )
    return response


def refused(response: httpx.Response, status: int, refusal: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["refusal"] == refusal and " / " in body["detail"]
    return body


def pulls(domain: Domain, identifier: str) -> list[LicencePull]:
    with reading(domain.services.engine) as session:
        query = select(LicencePull).where(LicencePull.identifier == identifier)
        return list(session.exec(query.order_by(col(LicencePull.id))))


def authorisations(domain: Domain, identifier: str) -> list[tuple[str, dict[str, Any]]]:
    with reading(domain.services.engine) as session:
        rows = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "licence.authorise", AuditEntry.object_id == identifier)
            .order_by(col(AuditEntry.seq))
        )
        return [(row.outcome, row.detail) for row in rows]


def audit_count(domain: Domain) -> int:
    with reading(domain.services.engine) as session:
        return session.exec(select(func.count()).select_from(AuditEntry)).one()


def resigned(code: str, change: Any) -> str:
    """The code's COSE_Sign1 with ``change(parts)`` applied, re-encoded (signature untouched)."""
    tag = cbor2.loads(base64.b32decode(code + "=" * (-len(code) % 8)))
    parts = list(tag.value)
    change(parts)
    return base64.b32encode(cbor2.dumps(cbor2.CBORTag(18, parts))).decode().rstrip("=")


# --- attacks ------------------------------------------------------------------------------------


def test_a_second_department_cannot_replay_the_code(domain: Domain) -> None:
    identifier, holder = new_licence(domain)
    code = holder.code(identifier)
    first = redeem(domain, code, 0, business_number="SC-2025-0001")
    assert first.status_code == 200, first.text
    assert first.json()["authorisation"]["repeat"] is False
    # the third department scans the same code (a photo of the screen): refused, nothing given
    replay = refused(redeem(domain, code, "third"), 409, "already_used")
    assert "fields" not in replay and "licence" not in replay
    rows = pulls(domain, identifier)
    assert [(p.department_code, p.service_item, p.business_number) for p in rows] == [
        (domain.department(0)["code"], ITEM, "SC-2025-0001")
    ]
    assert rows[0].grant_id is None and rows[0].use_code is not None
    audited = authorisations(domain, identifier)
    assert [(outcome, d["department"]) for outcome, d in audited] == [
        ("ok", domain.department(0)["code"]),
        ("refused", THIRD),
    ]
    assert audited[1][1]["refusal"] == "already_used" and audited[0][1]["repeat"] is False


def test_the_same_department_asking_again_gets_the_same_answer(domain: Domain) -> None:
    identifier, holder = new_licence(domain)
    code = holder.code(identifier)
    first = redeem(domain, code, 0)
    again = redeem(domain, code, 0)  # its system retried
    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["licence"] == first.json()["licence"]
    assert again.json()["authorisation"] | {"repeat": False} == first.json()["authorisation"]
    assert again.json()["authorisation"]["repeat"] is True
    assert len(pulls(domain, identifier)) == 1  # one use, one row
    assert [d["repeat"] for _, d in authorisations(domain, identifier)] == [False, True]


def test_a_client_without_the_pull_scope_is_refused(domain: Domain) -> None:
    identifier, holder = new_licence(domain)
    code = holder.code(identifier)
    before = audit_count(domain)
    response = redeem(domain, code, "issue_only")
    assert response.status_code == 403 and "licences:pull" in response.json()["detail"]
    assert domain.client.post(REDEEM, json={"code": code}).status_code == 401
    # the holder's own session is no department credential
    assert holder.client.post(REDEEM, json={"code": code}).status_code in (401, 403)
    assert pulls(domain, identifier) == [] and audit_count(domain) == before
    assert redeem(domain, code, "third").status_code == 200  # the code was not spent


def test_a_show_only_code_authorises_nothing(domain: Domain) -> None:
    identifier, holder = new_licence(domain)
    body = refused(redeem(domain, holder.code(identifier, None), 0), 403, "show_only")
    assert "仅出示" in body["detail"]
    # codes the issuing department mints, or a holder link's, are show only too
    by_issuer = domain.client.post(
        f"/api/v1/licences/{identifier}/presentations", headers=domain.auth(1)
    )
    assert by_issuer.status_code == 201, by_issuer.text
    refused(redeem(domain, by_issuer.json()["qr"], 0), 403, "show_only")
    assert pulls(domain, identifier) == []
    assert [d["refusal"] for _, d in authorisations(domain, identifier)] == ["show_only"] * 2


def test_an_expired_code_is_refused(domain: Domain, clock: FixedClock) -> None:
    identifier, holder = new_licence(domain)
    code = holder.code(identifier)
    clock.advance(timedelta(seconds=TTL + 1))  # a screenshot shown later
    try:
        body = refused(redeem(domain, code, 0), 422, "expired")
    finally:
        clock.advance(timedelta(seconds=-(TTL + 1)))
    assert "过期" in body["detail"] and body["expires_at"]
    assert pulls(domain, identifier) == []
    clock.advance(timedelta(seconds=TTL))  # the last second of its life: still good
    try:
        assert redeem(domain, code, 0).status_code == 200
    finally:
        clock.advance(timedelta(seconds=-TTL))


def test_a_code_presented_in_the_future_is_refused(domain: Domain, clock: FixedClock) -> None:
    identifier, holder = new_licence(domain)
    code = holder.code(identifier)
    clock.advance(timedelta(minutes=-3))
    try:
        refused(redeem(domain, code, 0), 422, "not_yet_valid")
    finally:
        clock.advance(timedelta(minutes=3))


def test_forged_foreign_and_printed_codes_are_refused(domain: Domain) -> None:
    identifier, holder = new_licence(domain)
    code = holder.code(identifier)
    bare = code.rsplit("/", 1)[1]
    before = audit_count(domain)

    def flip(parts: list[Any]) -> None:  # one byte of the signature changed
        parts[3] = bytes([parts[3][0] ^ 1]) + parts[3][1:]

    refused(redeem(domain, resigned(bare, flip)), 422, "signature")

    def longer(parts: list[Any]) -> None:  # a later expiry, the signature kept
        claims = dict(cbor2.loads(parts[2]))
        claims[7] += 86400
        parts[2] = cbor2.dumps(claims)

    refused(redeem(domain, resigned(bare, longer)), 422, "signature")
    # signed by a key that is not this domain's
    private = ec.generate_private_key(ec.SECP256R1())
    foreign = sign(
        decode(bare).claims,
        key_id(private.public_key()),
        lambda digest: private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))),
    )
    refused(redeem(domain, foreign), 422, "key")
    for text_ in ("", "hello", "https://evil.example/x/" + bare, bare[:40], "A" * 5000):
        response = redeem(domain, text_)
        assert response.status_code == 422, (text_[:50], response.text)
    assert audit_count(domain) == before  # nothing a forger sends is written down
    assert pulls(domain, identifier) == []
    assert redeem(domain, code, 0).status_code == 200  # the genuine code still works


def test_a_printed_licence_qr_is_not_an_authorisation(domain: Domain) -> None:
    identifier, _ = new_licence(domain)
    printed = domain.client.get(f"/api/v1/licences/{identifier}", headers=domain.auth(1))
    url = printed.json()["links"]["verify"]
    body = refused(redeem(domain, url, 0), 422, "not_presentation")
    assert "不是持证人的用证授权码" in body["detail"]
    assert pulls(domain, identifier) == []


def test_a_code_this_domain_never_minted_is_refused(domain: Domain) -> None:
    """Signed with the domain's own QR key, but no mint remembered its nonce (a key that leaked,
    or a code signed outside the mint)."""
    identifier, holder = new_licence(domain)
    genuine = decode(holder.code(identifier).rsplit("/", 1)[1]).claims
    unminted = domain.services.qr_keys.sign(
        replace(genuine, nonce=secrets.token_bytes(8)), purpose="test", listener=None
    )
    refused(redeem(domain, unminted, 0), 422, "unknown_code")
    # nor does a minted nonce carry over to another licence
    other, _ = new_licence(domain)
    moved = domain.services.qr_keys.sign(
        replace(genuine, identifier=other), purpose="test", listener=None
    )
    refused(redeem(domain, moved, 0), 422, "unknown_code")
    assert pulls(domain, identifier) == [] and pulls(domain, other) == []


def test_a_licence_revoked_after_the_code_was_made_is_refused(domain: Domain) -> None:
    identifier, holder = new_licence(domain)
    code = holder.code(identifier)
    revoked = domain.client.post(
        f"/api/v1/licences/{identifier}/revoke", json={"reason": "测试吊销"}, headers=domain.auth(1)
    )
    assert revoked.status_code == 200, revoked.text
    body = refused(redeem(domain, code, 0), 409, "licence_status")
    assert body["licence_status"] == "revoked"
    assert pulls(domain, identifier) == []
    nonce = decode(code.rsplit("/", 1)[1]).claims.nonce
    with reading(domain.services.engine) as session:
        row = session.get(PresentationUse, nonce.hex() if nonce else "")
        assert row is not None and row.used_by is None  # the claim was rolled back


def test_two_departments_racing_for_one_code(domain: Domain) -> None:
    identifier, holder = new_licence(domain)
    code = holder.code(identifier)
    racers = ["third"] + [f"racer{i}" for i in range(RACERS)]
    start = threading.Barrier(len(racers))
    statuses: dict[str, int] = {}

    def run(who: str) -> None:
        start.wait()
        statuses[who] = redeem(domain, code, who).status_code

    threads = [threading.Thread(target=run, args=(who,)) for who in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses.values()) == [200] + [409] * (len(racers) - 1), statuses
    rows = pulls(domain, identifier)
    winner = next(who for who, status in statuses.items() if status == 200)
    assert len(rows) == 1 and domain.credentials[winner]  # exactly one use
    assert sorted(o for o, _ in authorisations(domain, identifier)) == ["ok"] + ["refused"] * 3


# --- what a redemption gives --------------------------------------------------------------------


def test_the_department_gets_exactly_the_items_fields_and_a_masked_holder(domain: Domain) -> None:
    body = physician_body(domain)
    person = body["holder"]["id"]
    identifier = issue(domain, body, index=1)["identifier"]
    holder = Holder(domain, person)
    given = redeem(domain, holder.code(identifier), 0)
    assert given.status_code == 200, given.text
    licence = given.json()["licence"]
    assert licence["fields"] == ITEM_FIELDS  # not the scope: 医疗机构执业登记人员核验 needs two
    assert licence["holder"] == {"id_type": "111", "id": licence["holder"]["id"], "name": "张*试"}
    assert licence["holder"]["id"] != person and licence["holder"]["id"].endswith(person[-4:])
    assert licence["holder"]["id"][:3] == person[:3] and "*" in licence["holder"]["id"]
    assert licence["identifier"] == identifier and licence["status"] == "valid"
    assert licence["status_reason"] is None and licence["links"]["pdf"] == ""
    authorisation = given.json()["authorisation"]
    assert authorisation["service_item"] == ITEM and authorisation["business_number"] == ""
    wide = redeem(domain, holder.code(identifier, WIDE_ITEM), "third").json()["licence"]
    assert wide["fields"] == WIDE_FIELDS and wide["holder"]["name"] == "张*试"
    audited = authorisations(domain, identifier)
    assert [d["fields"] for _, d in audited] == [list(ITEM_FIELDS), list(WIDE_FIELDS)]


def test_the_holder_picks_the_item_on_the_present_page(domain: Domain) -> None:
    identifier, holder = new_licence(domain)
    page = holder.client.get(f"/me/licences/{identifier}/present")
    assert page.status_code == 200 and 'value="" selected>仅出示 / show only' in page.text
    assert f'<option value="{ITEM}">' in page.text and f'<option value="{WIDE_ITEM}">' in page.text
    assert f'data-refresh-url="/me/licences/{identifier}/present/qr"' in page.text
    chosen = holder.client.get(f"/me/licences/{identifier}/present", params={"service_item": ITEM})
    assert chosen.status_code == 200 and f'<option value="{ITEM}" selected>' in chosen.text
    assert "执业类别、执业地点" in chosen.text
    refresh = f"/me/licences/{identifier}/present/qr?service_item={ITEM}"
    assert f'data-refresh-url="{refresh}"' in chosen.text
    renewed = holder.client.get(refresh)  # what present.js fetches: the same choice
    assert renewed.status_code == 200 and renewed.json()["service_item"] == ITEM
    assert redeem(domain, renewed.json()["qr"], 0).status_code == 200
    # an item the licence's type does not declare: said in words, no code made
    wrong = holder.client.get(
        f"/me/licences/{identifier}/present", params={"service_item": "000125006000-01"}
    )
    assert wrong.status_code == 422 and "未声明事项" in wrong.text and 'id="qr"' not in wrong.text
    api = holder.client.post(
        f"/api/v1/holder/licences/{identifier}/presentations", json={"service_item": "X-1"}
    )
    assert api.status_code == 422 and api.json()["field"] == "service_item"


def test_the_holders_usage_log_names_the_department_and_the_item(domain: Domain) -> None:
    identifier, holder = new_licence(domain)
    assert (
        redeem(domain, holder.code(identifier), "third", business_number="RS-77").status_code == 200
    )
    entries = holder.client.get("/api/v1/holder/usage").json()["items"]
    mine = [e for e in entries if e["identifier"] == identifier]
    assert [(e["kind"], e["what"], e["department"], e["service_item"]) for e in mine] == [
        ("pull", "code", THIRD, ITEM)
    ]
    assert mine[0]["department_name"] == "示范市third局" and mine[0]["business_number"] == "RS-77"
    assert mine[0]["what_label"] == "用证授权码 / authorisation code"
    page = holder.client.get("/me/usage")
    assert page.status_code == 200
    assert (
        f'<strong>示范市third局</strong> — 事项 / Service item <span class="mono">{ITEM}</span> — 用证授权码 / authorisation code'
        in page.text
    )
