"""Shared fixtures: real data directories, a real PostgreSQL database per run, real tools.

Markers (registered in pyproject.toml): ``browser``, ``postgres``, ``openbao``, ``softhsm`` and
``fuzz`` each imply ``slow``; ``pytest -m "not slow"`` (``make test-fast``) runs the rest, which
needs neither a service nor a browser. Tools and services are required through tests/tools.py.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from tests.domain import make_settings, use_template_root
from tests.pg_replica import fresh_replica, pg_replica  # noqa: F401 (fixtures, tests/pg_replica.py)
from tests.tools import STRICT, requiring

__all__ = ["POSTGRES_ADMIN_URL", "STRICT", "fresh_schema", "make_settings", "reset_postgres_schema"]

POSTGRES_ADMIN_URL = os.environ.get(
    "ELICENCE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# A test with one of these markers is also slow: it waits for a service, a browser or many runs.
SLOW_KINDS = ("browser", "postgres", "openbao", "softhsm", "fuzz")
# A test that uses one of these fixtures (directly or through another) gets its service's marker.
SERVICE_FIXTURES = {
    "postgres_url": "postgres",
    "postgres_database": "postgres",
    "openbao": "openbao",
    "softhsm": "softhsm",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in SERVICE_FIXTURES:
                item.add_marker(SERVICE_FIXTURES[fixture])
        if any(item.get_closest_marker(kind) for kind in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _demo_templates(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Demo-domain templates (tests/domain.py) live in this run's temporary directory."""
    use_template_root(tmp_path_factory.mktemp("templates"))


def postgres_admin() -> str:
    """The administrative PostgreSQL URL as psycopg takes it."""
    return POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped at the end."""
    import psycopg

    plain = postgres_admin()
    name = f"elicence_test_{secrets.token_hex(4)}"
    with requiring(f"PostgreSQL at {plain}", psycopg.OperationalError):
        admin = psycopg.connect(plain, autocommit=True, connect_timeout=5)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_schema(url: str, schema: str) -> str:
    """``url`` working in an empty schema of its own name, made anew: a test file's tables never
    meet another's on the one test database."""
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{url}?options={quote(f'-csearch_path={schema}')}"


def reset_postgres_schema(url: str) -> None:
    """Each demo domain on PostgreSQL starts from an empty schema."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
