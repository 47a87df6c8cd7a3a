"""The published status list (licences.status_list, ``GET /pki/status-list``).

Attack first: a revoked licence's holder hopes the list that said "valid" is served on; a
poller hopes each request makes the credential key sign; a cache or a peer sends odd
``If-None-Match`` values or writes to the list; two processes sign at once; an issuance reuses
a taken index. Then the contract: the list verifies under the trust list's credential key, has
``docs/status-list.md``'s shape, and each licence's QR index reads its status — revoked 1,
suspended 2, resumed 0, superseded 3 with the new version at 0 under a new index, cancelled 1 —
published within the 60 s check window, not signed again while nothing changes, and signed
anew at least daily. Indexes are random, not in issue order.

The clock is pinned and moved forward by the tests; the daily reissue moves it most, so it is
the last test of the module.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.hazmat.primitives.asymmetric import ec
from httpx import Response
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

import licences.status_index
from api.container.builders import build_status_list
from api.container.foundation import Foundation
from core.audit import AuditEntry, AuditLog
from core.clock import FixedClock
from core.db import create_db_engine, reading
from core.errors import Unavailable
from licences.bitstring import decode, entry
from licences.models import Licence
from licences.payload import decode as decode_code
from licences.status_index import allocate
from licences.status_list import LISTED, StatusListDesk, listed_entries
from licences.status_list_records import StatusListRecord
from migrations.runner import upgrade
from tests.conftest import fresh_schema
from tests.domain import Domain, build_domain, demo_domain, make_settings
from tests.repo_domains import food_body, issue
from tests.sql_trace import statements
from trust.jose import public_key_of, verify_compact
from trust.profiles import Endpoints
from trust.trustlist import verify_trust_list

CLOCK = FixedClock(datetime.now(UTC).replace(microsecond=0))
BASE = "https://licence.example.gov.cn"
LIST_URL = f"{BASE}/pki/status-list"
PAST_WINDOW = timedelta(seconds=61)  # a change is published within 60 s
SMALLEST = 4_194_304  # entries of the smallest list, docs/status-list.md
REASON = {"reason": "测试原因 / test reason"}
VALID, REVOKED, SUSPENDED, SUPERSEDED = 0, 1, 2, 3


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(tmp_path_factory, "status-list", clock=CLOCK)


@dataclass
class Fetched:
    response: Response
    header: dict[str, Any]
    body: dict[str, Any]
    raw: bytes

    @property
    def sequence(self) -> int:
        return int(self.response.headers["etag"].strip('"'))

    def at(self, index: int) -> int:
        return int(entry(self.raw, index))


def credential_keys(domain: Domain) -> dict[str, ec.EllipticCurvePublicKey]:
    """The credential keys as a verifier reaches them: through the signed trust list."""
    listed = domain.client.get("/pki/trust-list").json()
    assert verify_trust_list(listed)
    return {item["kid"]: public_key_of(item["jwk"]) for item in listed["credential_keys"]}


def fetch(domain: Domain) -> Fetched:
    response = domain.client.get("/pki/status-list")
    assert response.status_code == 200, response.text
    keys = credential_keys(domain)
    header, payload = verify_compact(response.text, keys.get, typ="vc+jwt")
    body = json.loads(payload)
    return Fetched(response, header, body, decode(body["credentialSubject"]["encodedList"]))


def later(domain: Domain) -> Fetched:
    """The list once the check window has passed."""
    CLOCK.advance(PAST_WINDOW)
    return fetch(domain)


def index_of(issued: dict[str, Any]) -> int:
    """The status index the licence's printed QR code carries."""
    code = issued["links"]["verify"].rsplit("/", 1)[1]
    index = decode_code(code).claims.status_index
    assert index is not None
    return index


def act(domain: Domain, identifier: str, action: str, body: Any = None) -> dict[str, Any]:
    response = domain.client.post(
        f"/api/v1/licences/{identifier}/{action}",
        json=REASON if body is None else body,
        headers=domain.auth(),
    )
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def fresh(domain: Domain) -> dict[str, Any]:
    return issue(domain, food_body(domain))


def count_audit(domain: Domain, action: str, purpose: str | None = None) -> int:
    with reading(domain.services.engine) as session:
        rows = session.exec(select(AuditEntry).where(AuditEntry.action == action)).all()
    return sum(1 for row in rows if purpose is None or (row.detail or {}).get("purpose") == purpose)


def count(domain: Domain, model: type[SQLModel]) -> int:
    with reading(domain.services.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


# --- what a holder, poller, cache or peer would try -----------------------------------------


def test_a_revoked_licence_is_not_left_valid_past_the_check_window(domain: Domain) -> None:
    issued = fresh(domain)
    index = index_of(issued)
    before = fetch(domain)
    assert before.at(index) == VALID
    act(domain, issued["identifier"], "revoke")
    revoked_at = CLOCK.now()
    # Within the window the process has not looked again: the same list, not a new signature.
    assert fetch(domain).sequence == before.sequence
    after = later(domain)
    assert after.at(index) == REVOKED
    assert after.sequence > before.sequence
    valid_from = datetime.fromisoformat(after.body["validFrom"].replace("Z", "+00:00"))
    assert revoked_at < valid_from <= revoked_at + PAST_WINDOW  # it states the status after


def test_polling_never_makes_the_key_sign_while_nothing_changes(domain: Domain) -> None:
    first = later(domain)
    signed = count_audit(domain, "key.sign", "status-list")
    for _ in range(20):
        assert fetch(domain).sequence == first.sequence
    for _ in range(3):  # and past the window, with nothing changed, the same list
        assert later(domain).sequence == first.sequence
    assert count_audit(domain, "key.sign", "status-list") == signed


def test_if_none_match_gives_304_only_for_the_current_list(domain: Domain) -> None:
    current = fetch(domain)
    tag = current.response.headers["etag"]
    assert tag == f'"{current.sequence}"'
    for sent in (tag, f"W/{tag}", "*", f'"0", {tag}', f' "x" ,W/{tag} '):
        response = domain.client.get("/pki/status-list", headers={"If-None-Match": sent})
        assert response.status_code == 304, sent
        assert response.content == b""
        assert response.headers["etag"] == tag
        assert response.headers["cache-control"] == "public, max-age=60"
    for sent in (f'"{current.sequence - 1}"', f'"{current.sequence}0"', str(current.sequence), ""):
        response = domain.client.get("/pki/status-list", headers={"If-None-Match": sent})
        assert response.status_code == 200, sent
        assert response.text == current.response.text


def test_nobody_writes_to_the_list(domain: Domain) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = domain.client.request(
            method, "/pki/status-list", content=b"x", headers=domain.auth()
        )
        assert response.status_code == 405, (method, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_two_processes_due_at_once_store_one_list_and_audit_both_signatures(
    domain: Domain,
) -> None:
    """Each desk reads, finds a list due and signs; the second to store loses on the sequence
    and serves the winner's list. Its key use is still in the audit chain."""
    services = domain.services
    CLOCK.advance(timedelta(seconds=5))

    def desk(keys: Any) -> StatusListDesk:
        return StatusListDesk(
            engine=services.engine,
            keys=keys,
            clock=CLOCK,
            audit=services.audit,
            endpoints=Endpoints(BASE),
            issuer_name="示范省电子证照信任域",
            refresh=timedelta(seconds=1),  # so both find the newest list due
            check_every=timedelta(0),
        )

    other = desk(services.credential_keys)
    answers: dict[str, Any] = {}

    class SignsWhileTheOtherStores:
        """The credential keys, but the other process stores its list while this one signs."""

        def sign(self, *args: Any, **kwargs: Any) -> str:
            signed = services.credential_keys.sign(*args, **kwargs)
            answers["other"] = other.current()
            return signed

    lists, signed = count(domain, StatusListRecord), count_audit(domain, "key.sign", "status-list")
    published = count_audit(domain, "status_list.publish")
    mine = desk(SignsWhileTheOtherStores()).current()
    assert mine.sequence == answers["other"].sequence
    assert mine.token == answers["other"].token
    assert count(domain, StatusListRecord) == lists + 1
    assert count_audit(domain, "key.sign", "status-list") == signed + 2  # both signatures
    assert count_audit(domain, "status_list.publish") == published + 1  # one list


class KeyStoreDown:
    """Credential keys whose store cannot be reached (a sealed Vault, an absent token)."""

    def sign(self, *args: Any, **kwargs: Any) -> str:
        raise Unavailable("密钥库不可用 / the key store is unavailable")


def desk_over(engine: Engine, keys: Any, audit: AuditLog) -> StatusListDesk:
    return StatusListDesk(
        engine=engine,
        keys=keys,
        clock=CLOCK,
        audit=audit,
        endpoints=Endpoints(BASE),
        issuer_name="示范省电子证照信任域",
        refresh=timedelta(seconds=1),
        check_every=timedelta(0),
    )


def test_while_the_key_store_is_down_the_newest_list_is_served(domain: Domain) -> None:
    """A revocation made while the credential key cannot sign is not published, but the list
    served is still a true statement as of its validFrom, until its validUntil."""
    newest = later(domain)
    act(domain, fresh(domain)["identifier"], "revoke")
    CLOCK.advance(timedelta(seconds=5))
    served = desk_over(domain.services.engine, KeyStoreDown(), domain.services.audit).current()
    assert (served.sequence, served.token) == (newest.sequence, newest.response.text)


def test_with_no_list_to_fall_back_on_the_key_store_being_down_is_a_503(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    try:
        with pytest.raises(Unavailable):
            desk_over(engine, KeyStoreDown(), AuditLog(CLOCK)).current()
    finally:
        engine.dispose()


def test_an_issuance_given_a_taken_index_is_refused_with_nothing_written(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = fresh(domain)
    taken = index_of(holder)
    monkeypatch.setattr(licences.status_index, "allocate", lambda session: taken)
    licences_before, issued_before = count(domain, Licence), count_audit(domain, "licence.issue")
    body = food_body(domain)
    response = domain.client.post("/api/v1/licences", json=body, headers=domain.auth())
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert count(domain, Licence) == licences_before
    assert count_audit(domain, "licence.issue") == issued_before
    with reading(domain.services.engine) as session:
        owners = session.exec(select(Licence).where(Licence.status_index == taken)).all()
    assert [row.identifier for row in owners] == [holder["identifier"]]


def test_the_allocator_never_returns_a_taken_index_and_grows_the_list_when_full(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session in which every candidate of the first round of draws is taken: the allocator
    must look in a list twice as long, and return a free entry from there."""
    taken = [11 + 1000 * i for i in range(8)]
    draws: list[int] = []
    second_round = iter([taken[0], SMALLEST + 9, taken[1], SMALLEST + 5, *taken[2:6]])

    def scripted(bound: int) -> int:
        draws.append(bound)
        if bound == SMALLEST:
            return taken[(len(draws) - 1) % len(taken)]
        if bound == 2 * SMALLEST:
            return next(second_round)
        return 0  # the choice among the free candidates: the smallest

    with Session(domain.services.engine) as session:
        template = session.exec(select(Licence).limit(1)).one()
        for n, index in enumerate(taken):
            row = template.model_dump()
            row.update(
                identifier=f"{template.identifier}-T{n}",
                verify_code=f"TAKEN{n}",
                status_index=index,
                previous=None,
                superseded_by=None,
            )
            session.add(Licence(**row))
        session.flush()
        monkeypatch.setattr("licences.status_index.secrets.randbelow", scripted)
        chosen = allocate(session)
        session.rollback()  # nothing of this stays
    assert chosen == SMALLEST + 5  # the smaller of the two free candidates, past the old end
    assert draws[:8] == [SMALLEST] * 8  # the first round, all taken
    assert draws[8:16] == [2 * SMALLEST] * 8  # then the list doubled


def test_the_allocator_picks_only_among_free_candidates(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    with reading(domain.services.engine) as session:
        used = [
            i
            for i in session.exec(
                select(Licence.status_index).where(col(Licence.status_index).is_not(None))
            ).all()
            if i is not None
        ][:7]
    assert len(used) >= 4  # the demo data's licences at least
    free = next(i for i in range(SMALLEST) if i not in used)
    candidates = iter([*used, *[free] * (8 - len(used))])
    monkeypatch.setattr(
        "licences.status_index.secrets.randbelow",
        lambda bound: next(candidates) if bound == SMALLEST else 0,
    )
    with reading(domain.services.engine) as session:
        assert allocate(session) == free


# --- the contract ----------------------------------------------------------------------------


def test_the_list_verifies_under_the_trust_lists_key_and_has_the_contracts_shape(
    domain: Domain,
) -> None:
    fetched = later(domain)
    headers = fetched.response.headers
    assert headers["content-type"] == "application/vc+jwt"
    assert headers["cache-control"] == "public, max-age=60"
    trust_list = domain.client.get("/pki/trust-list").json()
    assert trust_list["status_list"] == {"url": LIST_URL, "media_type": "application/vc+jwt"}
    kids = [item["kid"] for item in trust_list["credential_keys"]]
    assert fetched.header == {"alg": "ES256", "kid": kids[0], "typ": "vc+jwt", "cty": "vc"}
    body = fetched.body
    subject = body["credentialSubject"]
    valid_from = datetime.strptime(body["validFrom"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert CLOCK.now() - timedelta(hours=24) < valid_from <= CLOCK.now()
    assert body == {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": LIST_URL,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": {"id": BASE, "name": "示范省电子证照信任域"},
        "validFrom": body["validFrom"],
        "validUntil": (valid_from + timedelta(hours=48)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "credentialSubject": {
            "id": f"{LIST_URL}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "message",
            "encodedList": subject["encodedList"],
            "ttl": 60000,
        },
    }
    assert len(fetched.raw) * 4 == SMALLEST  # a few licences, the smallest list: says nothing


def test_each_status_change_is_published_as_its_entry(domain: Domain) -> None:
    names = ("revoke", "suspend", "amend", "cancel", "renew", "reissue", "untouched")
    issued = {name: fresh(domain) for name in names}
    index = {name: index_of(licence) for name, licence in issued.items()}
    assert len(set(index.values())) == len(names)
    start = later(domain)
    assert {name: start.at(i) for name, i in index.items()} == dict.fromkeys(names, VALID)

    act(domain, issued["revoke"]["identifier"], "revoke")
    act(domain, issued["suspend"]["identifier"], "suspend")
    amended = act(domain, issued["amend"]["identifier"], "amend", {"fields": {"premises": "新址"}})
    act(domain, issued["cancel"]["identifier"], "cancel")
    renewed = act(domain, issued["renew"]["identifier"], "renew", {})
    reissued = act(domain, issued["reissue"]["identifier"], "reissue", {"reason": "遗失"})
    new = {"amend": index_of(amended), "renew": index_of(renewed), "reissue": index_of(reissued)}
    assert not set(new.values()) & set(index.values())  # a new version, a new index

    changed = later(domain)
    assert changed.sequence > start.sequence
    assert {name: changed.at(i) for name, i in index.items()} == {
        "revoke": REVOKED,
        "suspend": SUSPENDED,
        "amend": SUPERSEDED,
        "cancel": REVOKED,
        "renew": SUPERSEDED,
        "reissue": SUPERSEDED,  # void: the lost licence
        "untouched": VALID,
    }
    assert {name: changed.at(i) for name, i in new.items()} == dict.fromkeys(new, VALID)

    act(domain, issued["suspend"]["identifier"], "resume", {})
    resumed = later(domain)
    assert resumed.at(index["suspend"]) == VALID
    assert resumed.at(index["revoke"]) == REVOKED
    assert resumed.sequence > changed.sequence


def test_the_list_grows_to_hold_an_index_past_its_end(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    far = SMALLEST + 12_345
    monkeypatch.setattr(licences.status_index, "allocate", lambda session: far)
    issued = fresh(domain)
    monkeypatch.undo()
    assert index_of(issued) == far
    act(domain, issued["identifier"], "suspend")
    grown = later(domain)
    assert len(grown.raw) * 4 == 2 * SMALLEST
    assert grown.at(far) == SUSPENDED


def test_every_list_published_is_audited(domain: Domain) -> None:
    with reading(domain.services.engine) as session:
        sequences = session.exec(select(StatusListRecord.sequence)).all()
        published = session.exec(
            select(AuditEntry).where(AuditEntry.action == "status_list.publish")
        ).all()
        signatures = session.exec(
            select(AuditEntry).where(
                AuditEntry.action == "key.sign", AuditEntry.actor == "public:status-list"
            )
        ).all()
    assert sorted(int(row.object_id) for row in published) == sorted(sequences)
    assert len(signatures) >= len(sequences)
    assert {(row.detail or {}).get("purpose") for row in signatures} == {"status-list"}


def test_the_list_is_read_through_its_partial_index(domain: Domain) -> None:
    """A million licences with 1% revoked: the list reads the index of the ~10,000 listed rows
    (9 ms) instead of scanning the table (375 ms, measured on SQLite)."""
    engine = domain.services.engine
    revoked = fresh(domain)
    act(domain, revoked["identifier"], "revoke")
    with reading(engine) as session:
        assert (index_of(revoked), REVOKED) in listed_entries(session)
    statement, parameters = listing_statement(engine)
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    assert LISTED.name == "ix_licence_status_listed"
    assert any(LISTED.name in str(row) for row in plan), plan
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        created = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'ix_licence_status_listed'")
        ).scalar()
    assert [d for d in diff if "ix_licence_status_listed" in repr(d)] == []
    assert "WHERE status != 'valid'" in str(created)


@pytest.mark.slow
def test_indexes_are_not_in_issue_order_and_spread_over_the_list(domain: Domain) -> None:
    """200 issuances: a sequential or clustered allocator would give a rank correlation near 1,
    long increasing runs and every index small. Random draws over the whole list give |rho| <
    0.5 (about 7 standard deviations), runs under 20 and about half in the list's upper half, each
    with a probability of failing below 10**-9."""
    length = len(later(domain).raw) * 4  # grown past the smallest by a test above
    indexes = [index_of(fresh(domain)) for _ in range(200)]
    assert len(set(indexes)) == len(indexes)
    ranks = {value: rank for rank, value in enumerate(sorted(indexes))}
    n = len(indexes)
    d2 = sum((order - ranks[value]) ** 2 for order, value in enumerate(indexes))
    rho = 1 - 6 * d2 / (n * (n * n - 1))
    assert abs(rho) < 0.5, rho
    longest = run = 1
    for previous, current in itertools.pairwise(indexes):
        run = run + 1 if current > previous else 1
        longest = max(longest, run)
    assert longest < 20, longest
    assert max(indexes) > 10_000
    above_middle = sum(1 for value in indexes if value >= length // 2)
    assert 60 <= above_middle <= 140, above_middle


def listing_statement(engine: Engine) -> tuple[str, Any]:
    """The statement (and its parameters) ``listed_entries`` sends to the database."""
    with statements(engine) as seen, reading(engine) as session:
        listed_entries(session)
    return next(s for s in seen if "status_index" in s[0])


@pytest.mark.postgres
def test_on_postgresql_a_change_is_published_and_one_of_two_signers_wins(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same desk on PostgreSQL: the partial index is there with its condition and the
    planner can read the list from it; a revocation reaches the list after the window; of two
    processes storing the same sequence one loses on the primary key and serves the winner."""
    schema = "t_status_list"
    url = fresh_schema(postgres_url, schema)
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    pg = build_domain(
        make_settings(tmp_path_factory.mktemp("status-list-pg") / "data", database_url=url),
        clock=clock,
    )
    try:
        engine = pg.services.engine
        statement, parameters = listing_statement(engine)
        with engine.connect() as conn:
            definition = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_licence_status_listed'")
            ).scalar()
            conn.exec_driver_sql("SET enable_seqscan = off")  # a few rows: force the choice
            plan = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
        assert "WHERE ((status)::text <> 'valid'::text)" in str(definition)
        assert any("ix_licence_status_listed" in str(row) for row in plan), plan

        issued = issue(pg, food_body(pg))
        before = pg.client.get("/pki/status-list")
        act(pg, issued["identifier"], "revoke")
        clock.advance(PAST_WINDOW)
        after = pg.client.get("/pki/status-list")
        _, payload = verify_compact(after.text, credential_keys(pg).get, typ="vc+jwt")
        raw = decode(json.loads(payload)["credentialSubject"]["encodedList"])
        assert entry(raw, index_of(issued)) == REVOKED
        assert after.headers["etag"] != before.headers["etag"]

        services = pg.services

        def desk(keys: Any) -> StatusListDesk:
            return StatusListDesk(
                engine=engine,
                keys=keys,
                clock=clock,
                audit=services.audit,
                endpoints=Endpoints(BASE),
                issuer_name="示范省电子证照信任域",
                refresh=timedelta(seconds=1),
                check_every=timedelta(0),
            )

        other = desk(services.credential_keys)
        answers: dict[str, Any] = {}

        class SignsWhileTheOtherStores:
            def sign(self, *args: Any, **kwargs: Any) -> str:
                signed = services.credential_keys.sign(*args, **kwargs)
                answers["other"] = other.current()
                return signed

        clock.advance(timedelta(seconds=5))
        lists = count(pg, StatusListRecord)
        mine = desk(SignsWhileTheOtherStores()).current()
        assert (mine.sequence, mine.token) == (answers["other"].sequence, answers["other"].token)
        assert count(pg, StatusListRecord) == lists + 1
    finally:
        pg.services.close()


# --- last: the clock moves by days -----------------------------------------------------------


def test_a_list_is_signed_anew_at_least_daily_and_lives_two_days(domain: Domain) -> None:
    newest = later(domain)
    issued_at = datetime.fromisoformat(newest.body["validFrom"].replace("Z", "+00:00"))
    CLOCK.advance(issued_at + timedelta(hours=23, minutes=58) - CLOCK.now())
    assert later(domain).sequence == newest.sequence  # 23 h 59 min: nothing changed, not due
    CLOCK.advance(timedelta(minutes=2))  # 24 h and a minute after it was signed
    daily = fetch(domain)
    assert daily.sequence == newest.sequence + 1
    assert daily.raw == newest.raw
    assert daily.body["validFrom"] == CLOCK.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    until = CLOCK.now() + timedelta(hours=48)
    assert daily.body["validUntil"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")

    # The settings choose both periods: a desk built as the container builds it, with a 12 h
    # refresh and 72 h lifetime, finds this list due after 12 h.
    services = domain.services
    settings = services.settings.model_copy(
        update={"status_list_lifetime_hours": 72, "status_list_refresh_hours": 12}
    )
    parts = SimpleNamespace(
        engine=services.engine,
        credential_keys=services.credential_keys,
        clock=CLOCK,
        audit=services.audit,
        base_url=BASE,
        settings=settings,
    )
    desk = build_status_list(cast(Foundation, parts))
    CLOCK.advance(timedelta(hours=11))
    assert desk.current().sequence == daily.sequence
    CLOCK.advance(timedelta(hours=1, seconds=1))
    twelve = desk.current()
    assert twelve.sequence == daily.sequence + 1
    assert twelve.valid_until - twelve.valid_from == timedelta(hours=72)
