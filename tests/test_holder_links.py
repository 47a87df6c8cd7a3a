"""Holder links: every link expires, is listed to the signed-in holder it was made for (page and
API), and can be revoked by them at once; a revoked, expired, unknown or wrong link gets one and
the same answer (404 page and problem, 401 as a bearer credential), and each refused use of a
revoked or expired link, like each revocation, is audited. Revision 0012 gives existing links an
expiry and existing licences their holder name."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel, col, select

import licences.holder_links
import licences.models  # noqa: F401  (the tables compared below)
from api.edge.holder_session import COOKIE, HolderPrincipal
from core.audit import AuditEntry
from core.clock import FixedClock
from core.db import reading
from migrations.runner import alembic_config
from tests.conftest import fresh_schema
from tests.domain import Domain, demo_domain
from tests.repo_domains import BACKENDS, new_person

UNUSABLE = "持证人链接无效、已撤销或已过期"


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    return demo_domain(tmp_path_factory, "links", clock=clock)


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
        sessions = domain.services.holder_sessions
        now = domain.services.clock.now()
        value = sessions.seal(principal, now)
        _, self.csrf = sessions.open(value, now)
        self.client = TestClient(domain.client.app)
        self.client.cookies.set(COOKIE, value)
        self.actor = principal.actor
        self.id_number = id_number

    def links(self) -> list[dict[str, Any]]:
        response = self.client.get("/api/v1/holder/links")
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        return response.json()["items"]  # type: ignore[no-any-return]

    def revoke(self, link_id: str, csrf: str | None = None) -> httpx.Response:
        token = self.csrf if csrf is None else csrf
        return self.client.delete(
            f"/api/v1/holder/links/{link_id}", headers={"X-CSRF-Token": token} if token else {}
        )


def licence_for_new_person(domain: Domain) -> tuple[str, Holder]:
    person = new_person()
    body = dict(domain.department(1)["sample_request"])
    body.pop("valid_from", None)
    body["holder"] = {"id_type": "111", "id": person, "name": "张测试"}
    issued = domain.client.post("/api/v1/licences", json=body, headers=domain.auth(1))
    assert issued.status_code == 201, issued.text
    return issued.json()["identifier"], Holder(domain, person)


def make_link(domain: Domain, identifier: str, **body: Any) -> dict[str, Any]:
    response = domain.client.post(
        f"/api/v1/licences/{identifier}/holder-links",
        json=body or None,
        headers=domain.auth(1),
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    made["secret"] = made["url"].rsplit("/", 1)[1]
    return made


def bearer_mint(domain: Domain, identifier: str, secret: str) -> httpx.Response:
    return domain.client.post(
        f"/api/v1/licences/{identifier}/presentations",
        headers={"Authorization": f"Bearer {secret}"},
    )


def assert_unusable(domain: Domain, identifier: str, secret: str) -> None:
    """The answers to a link that does not work: the same whatever the reason."""
    page = domain.client.get(f"/h/present/{secret}")
    assert page.status_code == 404 and UNUSABLE in page.text
    assert 'id="qr"' not in page.text and identifier not in page.text
    refresh = domain.client.get(f"/h/present/{secret}/qr")
    assert refresh.status_code == 404
    assert refresh.headers["content-type"].startswith("application/problem+json")
    assert UNUSABLE in refresh.json()["detail"] and identifier not in refresh.text
    minted = bearer_mint(domain, identifier, secret)
    assert minted.status_code == 401 and UNUSABLE in minted.json()["detail"]


def audit(domain: Domain, action: str, object_id: str) -> list[AuditEntry]:
    with reading(domain.services.engine) as session:
        return list(
            session.exec(
                select(AuditEntry)
                .where(AuditEntry.action == action, AuditEntry.object_id == object_id)
                .order_by(col(AuditEntry.seq))
            )
        )


def test_a_link_is_listed_to_its_holder_and_revoked_by_them(domain: Domain) -> None:
    identifier, holder = licence_for_new_person(domain)
    made = make_link(domain, identifier)
    now = domain.services.clock.now()
    assert datetime.fromisoformat(made["expires_at"]) == now + timedelta(days=30)
    assert bearer_mint(domain, identifier, made["secret"]).status_code == 201
    assert domain.client.get(f"/h/present/{made['secret']}").status_code == 200

    listed = holder.links()
    assert [(item["id"], item["identifier"], item["status"]) for item in listed] == [
        (made["id"], identifier, "active")
    ]
    assert listed[0]["expires_at"] == made["expires_at"]
    assert listed[0]["type_name"] == "医师执业证书"
    secret_part = made["secret"].split("_", 2)[2]  # hl_<id>_<secret>; the secret may hold "_"
    assert len(secret_part) >= 32
    assert made["secret"] not in str(listed) and secret_part not in str(listed)
    # another holder neither sees nor revokes it
    _, stranger = licence_for_new_person(domain)
    assert stranger.links() == []
    assert stranger.revoke(made["id"]).status_code == 404
    # without the session's CSRF token, or with a department's key: refused, nothing changes
    assert holder.revoke(made["id"], csrf="").status_code == 403
    assert holder.revoke(made["id"], csrf=holder.csrf + "x").status_code == 403
    department = domain.client.delete(f"/api/v1/holder/links/{made['id']}", headers=domain.auth(1))
    assert department.status_code == 403
    assert holder.links()[0]["status"] == "active"

    revoked = holder.revoke(made["id"])
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    assert_unusable(domain, identifier, made["secret"])
    assert holder.links()[0]["status"] == "revoked"
    again = holder.revoke(made["id"])
    assert again.status_code == 409 and again.json()["current_status"] == "revoked"
    # the revocation is audited under the holder; each refused use of the dead link too
    entries = audit(domain, "holder_link.revoke", made["id"])
    assert [(e.actor, e.outcome) for e in entries] == [(holder.actor, "ok")]
    uses = audit(domain, "holder_link.use", made["id"])
    assert [(e.outcome, e.detail["status"]) for e in uses] == [("refused", "revoked")] * 3
    # an unknown link and a wrong secret for a live link get the very same answers, unaudited
    live = make_link(domain, identifier)
    assert_unusable(domain, identifier, "hl_0123456789abcdef_" + "x" * 32)
    assert_unusable(domain, identifier, live["secret"][:-2] + "xx")
    assert audit(domain, "holder_link.use", live["id"]) == []


def test_links_expire(domain: Domain, clock: FixedClock) -> None:
    identifier, holder = licence_for_new_person(domain)
    short = make_link(domain, identifier, valid_days=1)
    default = make_link(domain, identifier)
    for days in (0, 367):
        refused = domain.client.post(
            f"/api/v1/licences/{identifier}/holder-links",
            json={"valid_days": days},
            headers=domain.auth(1),
        )
        assert refused.status_code == 422 and refused.json()["field"] == "valid_days"
    clock.advance(timedelta(days=1) - timedelta(seconds=1))
    try:
        assert bearer_mint(domain, identifier, short["secret"]).status_code == 201
        clock.advance(timedelta(seconds=1))  # the moment it expires
        assert_unusable(domain, identifier, short["secret"])
        assert bearer_mint(domain, identifier, default["secret"]).status_code == 201
        clock.advance(timedelta(days=29))
        assert_unusable(domain, identifier, default["secret"])
        statuses = {
            item["id"]: item["status"] for item in Holder(domain, holder.id_number).links()
        }
        assert statuses == {short["id"]: "expired", default["id"]: "expired"}
        assert Holder(domain, holder.id_number).revoke(short["id"]).status_code == 409
        uses = audit(domain, "holder_link.use", short["id"])
        assert {e.detail["status"] for e in uses} == {"expired"}
    finally:
        clock.advance(-timedelta(days=30))


def test_the_holder_page_lists_links_and_revokes_with_the_form_token(domain: Domain) -> None:
    identifier, holder = licence_for_new_person(domain)
    made = make_link(domain, identifier)
    page = holder.client.get("/me")
    assert page.status_code == 200
    assert f'id="link-{made["id"]}"' in page.text
    action = f'action="/me/links/{made["id"]}/revoke"'
    assert action in page.text and f'name="csrf" value="{holder.csrf}"' in page.text
    assert made["secret"] not in page.text
    assert holder.client.post(f"/me/links/{made['id']}/revoke").status_code == 403
    assert bearer_mint(domain, identifier, made["secret"]).status_code == 201
    done = holder.client.post(
        f"/me/links/{made['id']}/revoke", data={"csrf": holder.csrf}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/me?done=link-revoked#links"
    after = holder.client.get("/me?done=link-revoked")
    item = re.search(rf'id="link-{made["id"]}" data-status="(\w+)"', after.text)
    assert item is not None and item.group(1) == "revoked"
    assert action not in after.text and "已撤销链接" in after.text
    assert_unusable(domain, identifier, made["secret"])


# --- revision 0012 ------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    base: str = request.getfixturevalue("postgres_url")
    return fresh_schema(base, "t_links")


def test_revision_0012_fills_names_and_expiries_and_matches_the_models(
    database_url: str,
) -> None:
    config = alembic_config(database_url)
    command.upgrade(config, "0005")  # the initial schema and the holder_link table
    engine = create_engine(database_url)
    authority = "1135010000360001XN"
    rows = [
        ("INSERT INTO department VALUES (:c, '机构', '350100', 'municipal')", {}),
        (
            "INSERT INTO seal (code, department_code, seal_type, name, certificate_serial, "
            "key_ref, status, valid_from, valid_until, width_mm, image_png) VALUES ('S1', :c, "
            "'02', '章', '01', 'soft:x:v1', 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
            "42.0, :png)",
            {"png": b"\x00"},
        ),
        (
            "INSERT INTO licence_type (code, name, authority_code, authority_name, "
            "authority_level, holder_category, holder_id_type, validity_years, field_schema, "
            "issuer_codes, version, status) VALUES (:t, '证', :c, '机构', 'municipal', "
            "'natural_person', '111', NULL, '{}', '[]', 1, 'active')",
            {},
        ),
        ("INSERT INTO holder (id, id_type, id_number, name) VALUES (7, '111', '1', '李四')", {}),
        (
            "INSERT INTO licence (identifier, type_code, issuer_code, serial, version, "
            "holder_id, fields, valid_from, status, issued_at, verify_code, sha256, seal_code) "
            "VALUES ('L1', :t, :c, 'S', 1, 7, '{}', '2024-01-01', 'valid', CURRENT_TIMESTAMP, "
            "'CODE', :sha, 'S1')",
            {},
        ),
        (
            "INSERT INTO holder_link (id, identifier, secret_sha256, created_at, created_by) "
            "VALUES ('abc', 'L1', :sha, CURRENT_TIMESTAMP, 'test')",
            {},
        ),
    ]
    with engine.begin() as conn:
        for sql, extra in rows:
            conn.execute(
                text(sql), {"c": authority, "t": authority + "001", "sha": "0" * 64, **extra}
            )
    before = datetime.now(UTC)
    command.upgrade(config, "heads")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT holder_name FROM licence")).scalar_one() == "李四"
        expires = conn.execute(text("SELECT expires_at FROM holder_link")).scalar_one()
        expires = datetime.fromisoformat(expires) if isinstance(expires, str) else expires
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        assert before + timedelta(days=30) <= expires <= datetime.now(UTC) + timedelta(days=30)
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    mine = [d for d in diff if "holder_link" in repr(d) or "holder_name" in repr(d)]
    assert mine == [], mine
    engine.dispose()
