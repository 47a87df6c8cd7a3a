"""The ``elicence`` command as an operator runs it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each command is a process of its own

ELICENCE = [sys.executable, "-c", "from api.cli.main import main; main()"]


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ELICENCE_KEY_PASSPHRASE": "cli-test",
        "ELICENCE_PUBLIC_BASE_URL": "https://licence.example.gov.cn",
    }
    return subprocess.run(
        [*ELICENCE, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "var"
    result = run(path, "init", "--demo")
    assert result.returncode == 0, result.stderr
    return path


def test_init_is_idempotent_and_says_so(data_dir: Path) -> None:
    before = sorted(p.name for p in (data_dir / "keys").iterdir())
    again = run(data_dir, "init", "--demo")
    assert again.returncode == 0, again.stderr
    assert "nothing changed" in again.stdout
    assert sorted(p.name for p in (data_dir / "keys").iterdir()) == before


def test_key_files_are_private_and_encrypted(data_dir: Path) -> None:
    keys = list((data_dir / "keys").glob("*.p8"))
    assert keys
    for path in keys:
        assert path.stat().st_mode & 0o077 == 0
        assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    creds = data_dir / "demo-credentials.json"
    assert creds.stat().st_mode & 0o077 == 0


def test_issue_then_verify_then_revoke(data_dir: Path, tmp_path: Path) -> None:
    creds = json.loads((data_dir / "demo-credentials.json").read_text())
    sample = creds["departments"][1]["sample_request"]
    out = tmp_path / "licence.pdf"
    fields = [arg for k, v in sample["fields"].items() for arg in ("--field", f"{k}={v}")]
    issued = run(
        data_dir,
        "issue",
        "--type",
        sample["licence_type"],
        "--holder-id",
        sample["holder"]["id"],
        "--holder-name",
        sample["holder"]["name"],
        *fields,
        "--out",
        str(out),
    )
    assert issued.returncode == 0, issued.stderr
    printed = json.loads(issued.stdout)
    assert set(printed) == {"identifier", "version", "sha256", "verify_url"}
    assert out.read_bytes().startswith(b"%PDF-")

    verified = run(data_dir, "verify", str(out), "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["indication"] == "PASSED"
    by_qr = run(data_dir, "verify", "--qr", printed["verify_url"])
    assert by_qr.returncode == 0 and by_qr.stdout.startswith("PASSED")

    revoked = run(data_dir, "revoke", printed["identifier"], "--reason", "持证人申请注销")
    assert revoked.returncode == 0, revoked.stderr
    after = run(data_dir, "verify", str(out), "--json")
    assert after.returncode == 1
    assert json.loads(after.stdout)["sub_indication"] == "REVOKED"


def test_verify_exit_code_for_unreadable_input(data_dir: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"not a pdf")
    assert run(data_dir, "verify", str(junk)).returncode == 3
    assert run(data_dir, "verify", str(tmp_path / "missing.pdf")).returncode == 3


def test_bad_input_gives_one_line_and_non_zero_exit(data_dir: Path, tmp_path: Path) -> None:
    result = run(
        data_dir,
        "issue",
        "--type",
        "1135010000360001XN001",
        "--holder-id",
        "91350100M000100Y44",
        "--holder-name",
        "某公司",
        "--field",
        "premises=x",
        "--out",
        str(tmp_path / "x.pdf"),
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("elicence:"), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.pdf").exists()


@pytest.mark.parametrize(
    ("tamper", "undo", "first_broken"),
    [
        (
            ["UPDATE audit_entry SET outcome = 'tampered' WHERE seq = 3"],
            ["UPDATE audit_entry SET outcome = 'ok' WHERE seq = 3"],
            3,
        ),
        (
            [
                "CREATE TABLE saved AS SELECT * FROM audit_entry WHERE seq = 4",
                "DELETE FROM audit_entry WHERE seq = 4",
            ],
            ["INSERT INTO audit_entry SELECT * FROM saved", "DROP TABLE saved"],
            4,
        ),
        (
            [
                "UPDATE audit_entry SET seq = -5 WHERE seq = 5",
                "UPDATE audit_entry SET seq = 5 WHERE seq = 6",
                "UPDATE audit_entry SET seq = 6 WHERE seq = -5",
            ],
            [
                "UPDATE audit_entry SET seq = -6 WHERE seq = 6",
                "UPDATE audit_entry SET seq = 6 WHERE seq = 5",
                "UPDATE audit_entry SET seq = 5 WHERE seq = -6",
            ],
            5,
        ),
    ],
    ids=["edit", "delete", "reorder"],
)
def test_audit_verify_catches_edit_delete_reorder(
    data_dir: Path, tamper: list[str], undo: list[str], first_broken: int
) -> None:
    import sqlite3

    ok = run(data_dir, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    with sqlite3.connect(data_dir / "elicence.db") as conn:
        for statement in tamper:
            conn.execute(statement)
    broken = run(data_dir, "audit", "verify")
    assert broken.returncode == 1
    assert f"entry {first_broken}" in broken.stderr, broken.stderr
    with sqlite3.connect(data_dir / "elicence.db") as conn:
        for statement in undo:
            conn.execute(statement)
    assert run(data_dir, "audit", "verify").returncode == 0


def test_uninitialised_data_dir_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path / "empty", "verify", "--qr", "X")
    assert result.returncode != 0
    assert "elicence init" in result.stderr


def test_clients_create_list_revoke(data_dir: Path) -> None:
    creds = json.loads((data_dir / "demo-credentials.json").read_text())
    code = creds["departments"][0]["code"]
    created = run(data_dir, "clients", "create", "--department", code, "--name", "case-system")
    assert created.returncode == 0, created.stderr
    client = json.loads(created.stdout)
    assert client["api_key"].startswith("elk_" + client["client_id"])
    listed = run(data_dir, "clients", "list").stdout
    assert f"{client['client_id']}\t{code}\tcase-system\tactive" in listed
    assert client["api_key"] not in listed
    rotated = run(data_dir, "clients", "rotate", client["client_id"])
    assert rotated.returncode == 0, rotated.stderr
    new_key = json.loads(rotated.stdout)["api_key"]
    assert new_key != client["api_key"] and new_key.startswith("elk_" + client["client_id"])
    from core.db import create_db_engine, reading
    from core.errors import Unauthenticated
    from seals.clients import authenticate

    engine = create_db_engine(f"sqlite:///{data_dir / 'elicence.db'}")
    with reading(engine) as session:
        assert authenticate(session, new_key).id == client["client_id"]
        with pytest.raises(Unauthenticated):
            authenticate(session, client["api_key"])
    assert run(data_dir, "clients", "revoke", client["client_id"]).returncode == 0
    assert (
        f"{client['client_id']}\t{code}\tcase-system\trevoked"
        in run(data_dir, "clients", "list").stdout
    )
    unknown = run(
        data_dir, "clients", "create", "--department", "91350100M000100Y43", "--name", "x"
    )
    assert unknown.returncode != 0 and "elicence:" in unknown.stderr


def test_audit_export_filters_by_action(data_dir: Path) -> None:
    result = run(data_dir, "audit", "export", "--action", "licence.issue")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) >= 4
    assert {row["action"] for row in rows} == {"licence.issue"}
    assert all(set(row) >= {"seq", "at", "actor", "object_id", "hash", "prev_hash"} for row in rows)
    creds = json.loads((data_dir / "demo-credentials.json").read_text())
    for dept in creds["departments"]:
        assert dept["sample_request"]["holder"]["name"] not in result.stdout
