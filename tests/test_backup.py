"""Backup and restore on SQLite and PostgreSQL: licences issued before the backup verify PASSED
in the restored domain, the audit chain holds, and a damaged archive or a used target is
refused before anything is written."""

from __future__ import annotations

import io
import secrets
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.main import app
from api.container import build_services
from api.ops.backup import read_archive
from core.audit import verify_chain
from core.db import reading
from core.errors import InvalidInput
from tests.conftest import POSTGRES_ADMIN_URL, make_settings, reset_postgres_schema
from tests.domain import build_domain


def _restored_services(data_dir: Path, passphrase_of: Path, database_url: str | None = None):  # type: ignore[no-untyped-def]
    settings = make_settings(data_dir, database_url=database_url)
    # The passphrase is not in the backup: the operator supplies the original one.
    settings.key_passphrase = make_settings(passphrase_of).key_passphrase
    return build_services(settings)


def _check_restored(services, pdfs: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    for pdf in pdfs:
        report = services.verification.verify_pdf(pdf, channel="cli", actor="test")
        assert report.indication.value == "PASSED", report.checks
    with reading(services.engine) as session:
        assert verify_chain(session).intact
        assert services.checkpoints.verify(session)[1] is None


@pytest.mark.slow
def test_sqlite_backup_and_restore(tmp_path: Path) -> None:
    original = tmp_path / "original"
    domain = build_domain(make_settings(original))
    pdfs = [domain.pdf(domain.issue()) for _ in range(2)]
    archive = tmp_path / "backup.tar.gz"
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["backup", "--out", str(archive), "--data-dir", str(original)],
        env={"ELICENCE_KEY_PASSPHRASE": "test-passphrase-original"},
    )
    assert result.exit_code == 0, result.output
    _, members = read_archive(archive)
    assert "database.sqlite" in members and any(m.startswith("keys/") for m in members)
    assert "test-passphrase" not in members["config.json"].decode()
    assert not any(name.startswith("secrets/") or "credentials" in name for name in members)

    target = tmp_path / "restored"
    result = runner.invoke(app, ["restore", "--from", str(archive), "--data-dir", str(target)])
    assert result.exit_code == 0, result.output
    # A licence issued after the backup is not in the restored domain; earlier ones are.
    _check_restored(_restored_services(target, original), pdfs)

    again = runner.invoke(app, ["restore", "--from", str(archive), "--data-dir", str(target)])
    assert again.exit_code != 0 and "not empty" in str(again.exception)


def test_damaged_archive_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        manifest = b'{"format": "elicence-backup/1", "members": {"config.json": {"sha256": "00"}}}'
        for name, data in (("manifest.json", manifest), ("config.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(InvalidInput, match="SHA-256"):
        read_archive(archive)
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(InvalidInput):
        read_archive(tmp_path / "junk.tar.gz")


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    import psycopg

    plain = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"elicence_restore_{secrets.token_hex(4)}"
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_postgres_backup_and_restore(
    tmp_path: Path, postgres_url: str, empty_postgres: str
) -> None:
    from api.ops.backup import backup, restore

    reset_postgres_schema(postgres_url)
    original = tmp_path / "pg-original"
    domain = build_domain(make_settings(original, database_url=postgres_url))
    pdfs = [domain.pdf(domain.issue()) for _ in range(2)]
    archive = tmp_path / "pg.tar.gz"
    manifest = backup(domain.settings, archive)
    assert manifest["database"] == "postgresql"
    assert "database/licence_document.jsonl" in manifest["members"]
    assert postgres_url.rsplit("/", 1)[1] not in archive.read_bytes().decode("latin-1")
    domain.services.engine.dispose()

    target = tmp_path / "pg-restored"
    restore(archive, target, empty_postgres)
    services = _restored_services(target, original, database_url=empty_postgres)
    _check_restored(services, pdfs)
    # The restored domain keeps issuing (sequences continue after the restored rows).
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.domain import Domain

    client = TestClient(create_app(services=services))
    restored = Domain(services.settings, services, client, domain.credentials)
    assert restored.verify_pdf(restored.pdf(restored.issue()))["indication"] == "PASSED"
    with pytest.raises(InvalidInput, match="already has tables"):
        restore(archive, tmp_path / "third", empty_postgres)
