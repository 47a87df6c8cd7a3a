"""A use authorisation code end to end over real HTTP: a uvicorn server and the development
identity provider on loopback, a demo holder signed in through the whole OpenID Connect flow,
who makes the code on the present page for one service item; the market department's counter
system redeems it with its API key and gets that item's fields; another department's replay is
refused; the holder's usage page names the department and the item. Also: the migration leaves
the schema exactly as the models declare it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

from migrations.runner import alembic_config
from tests.holder_login import CHEN, HolderSite, sign_in, start_site

ITEM = "000126022000-01"  # the demo physician type's 医疗机构执业登记人员核验: two fields
ITEM_FIELDS = {"category", "workplace"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderSite]:
    with start_site(tmp_path_factory.mktemp("use-codes-e2e") / "data") as built:
        yield built


def test_holder_makes_a_code_on_the_present_page_and_a_department_redeems_it(
    site: HolderSite,
) -> None:
    market, health = site.credentials["departments"][0], site.credentials["departments"][1]
    with (
        closing(sign_in(site.base_url, CHEN)) as chen,
        httpx.Client(base_url=site.base_url, headers=site.auth(0), timeout=60) as counter,
        httpx.Client(base_url=site.base_url, headers=site.auth(1), timeout=60) as other,
    ):
        mine = chen.get("/api/v1/holder/licences").json()["licences"]
        identifier = next(item for item in mine if item["status"] == "valid")["identifier"]

        page = chen.get(f"/me/licences/{identifier}/present", params={"service_item": ITEM})
        assert page.status_code == 200, page.text[:300]
        assert f'<option value="{ITEM}" selected>' in page.text
        refresh = f"/me/licences/{identifier}/present/qr?service_item={ITEM}"
        assert f'data-refresh-url="{refresh}"' in page.text
        shown = chen.get(refresh)  # the QR the page's script puts on screen
        assert shown.status_code == 200 and shown.json()["service_item"] == ITEM
        code = shown.json()["qr"]
        assert code.startswith(site.base_url.upper() + "/V/")

        given = counter.post(
            "/api/v1/presentations:redeem", json={"code": code, "business_number": "SC-E2E-1"}
        )
        assert given.status_code == 200, given.text
        licence = given.json()["licence"]
        assert set(licence["fields"]) == ITEM_FIELDS and licence["holder"]["id"] != CHEN
        assert licence["holder"]["id"].endswith(CHEN[-4:])
        assert given.json()["authorisation"]["service_item"] == ITEM

        # the same code scanned at the health commission's counter: already used
        replay = other.post("/api/v1/presentations:redeem", json={"code": code})
        assert replay.status_code == 409 and replay.json()["refusal"] == "already_used"
        assert health["code"] != market["code"]

        usage = chen.get("/api/v1/holder/usage").json()["items"]
        assert [(e["kind"], e["what"], e["department"], e["service_item"]) for e in usage] == [
            ("pull", "code", market["code"], ITEM)
        ]
        log = chen.get("/me/usage")
        assert log.status_code == 200
        line = (
            f"<strong>{market['name']}</strong> — 事项 / Service item "
            f'<span class="mono">{ITEM}</span> — 用证授权码 / authorisation code'
        )
        assert line in log.text and "SC-E2E-1" in log.text


def test_the_migration_keeps_grant_pulls_and_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0008")  # licence_pull as grants made it (no foreign keys enforced)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO licence_pull (at, identifier, holder_id, grant_id, department_code, "
                "client_id, service_item, business_number, what) VALUES (CURRENT_TIMESTAMP, 'L1', "
                "7, 'G1', 'D', 'C', 'I', 'B', 'record')"
            )
        )
    command.upgrade(config, "heads")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT grant_id, use_code FROM licence_pull")).all() == [
            ("G1", None)
        ]
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    mine = [d for d in diff if "presentation_use" in repr(d) or "licence_pull" in repr(d)]
    assert mine == [], mine
    command.downgrade(config, "0015@-1")
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        assert "presentation_use" not in set(tables.scalars())
        assert conn.execute(text("SELECT grant_id FROM licence_pull")).scalars().all() == ["G1"]
    engine.dispose()
