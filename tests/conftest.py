"""Shared fixtures: real data directories, a real PostgreSQL database per run, real tools."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

STRICT = os.environ.get("ELICENCE_STRICT_TESTS") == "1"
POSTGRES_ADMIN_URL = os.environ.get(
    "ELICENCE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def require_tool(name: str) -> str:
    """The path of a command-line tool; in strict mode (CI) a missing tool fails the test."""
    path = shutil.which(name)
    if path is None:
        message = f"required tool {name!r} is not installed"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped at the end."""
    import psycopg

    plain = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"elicence_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(plain, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if STRICT:
            pytest.fail(f"PostgreSQL is not reachable at {plain}: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(data_dir: Path, database_url: str | None = None, **extra: object):  # type: ignore[no-untyped-def]
    from api.settings import Settings

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        key_passphrase="test-passphrase-" + data_dir.name,  # type: ignore[arg-type]
        public_base_url="https://licence.example.gov.cn",
        **{"public_rate_limit": "100000/minute", **extra},  # type: ignore[arg-type]
    )


def reset_postgres_schema(url: str) -> None:
    """Each demo domain on PostgreSQL starts from an empty schema."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
