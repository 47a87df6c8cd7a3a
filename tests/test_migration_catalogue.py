"""Revision 0002 on a database that already holds 0001 data: entries become version 1 of
themselves with their GB/T 36902 fields derived, idempotency keys keep working under the
``issue`` scope, and the migrated tables match the models, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

import licences.models  # noqa: F401  (the tables compared below)
import seals.models  # noqa: F401
from migrations.runner import alembic_config
from tests.conftest import fresh_schema
from tests.repo_domains import BACKENDS

MINE = {"licence_type", "licence_type_version", "licence", "idempotency_record", "holder"}
AUTHORITY = "1135010000360001XN"


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    base: str = request.getfixturevalue("postgres_url")
    return fresh_schema(base, "t_migration")


def test_0002_upgrades_existing_rows_and_matches_the_models(url: str) -> None:
    config = alembic_config(url)
    command.upgrade(config, "0001")
    engine = create_engine(url)
    schema = {"type": "object", "properties": {"a": {"type": "string", "title": "甲"}}}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO licence_type (code, name, authority_code, authority_name, "
                "authority_level, holder_category, holder_id_type, validity_years, field_schema, "
                "issuer_codes, version, status) VALUES "
                "(:code, '旧证', :auth, '旧机构', 'county', 'legal_person', '001', NULL, :schema, "
                "'[]', 1, 'active')"
            ),
            {"code": AUTHORITY + "009", "auth": AUTHORITY, "schema": json.dumps(schema)},
        )
        conn.execute(
            text(
                "INSERT INTO idempotency_record VALUES "
                "('1135010000360001XN', 'k-1', :sha, 'some-id', CURRENT_TIMESTAMP)"
            ),
            {"sha": "0" * 64},
        )
    command.upgrade(config, "heads")
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT validity_rule, issuing_level, version FROM licence_type")
        ).one()
        assert tuple(row) == ("indefinite", "county", 1)
        (definition,) = conn.execute(
            text("SELECT definition FROM licence_type_version WHERE version = 1")
        ).one()
        definition = json.loads(definition) if isinstance(definition, str) else definition
        assert definition["field_schema"] == schema and definition["validity_rule"] == "indefinite"
        assert conn.execute(text("SELECT scope, key FROM idempotency_record")).one() == (
            "issue",
            "k-1",
        )
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    # licence.verify_code is widened by revision 0005 on PostgreSQL only (SQLite has no lengths)
    theirs = ("modify_type", None, "licence", "verify_code")
    ours = [d for d in _flatten(diff) if _table_of(d) in MINE and tuple(d[:4]) != theirs]
    assert ours == [], ours
    engine.dispose()


def _flatten(diff: list) -> list:  # type: ignore[type-arg]
    for item in diff:
        if isinstance(item, list):
            yield from item
        else:
            yield item


def _table_of(item: tuple) -> str | None:  # type: ignore[type-arg]
    for part in item[1:]:
        name = getattr(part, "name", None)
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        if isinstance(part, str) and part in MINE:
            return part
        if name in MINE:
            return str(name)
    return None
