"""The audit chain is anchored outside the database.

Every audit checkpoint has a continuous number and an RFC 3161 token from the domain's TSA over
its hash; the latest is published in the signed trust list and can be exported. A chain
rewritten whole (checkpoints deleted, hashes recomputed) or truncated with its head moved then
fails ``elicence audit verify --anchor FILE``; a deleted checkpoint fails plain ``audit verify``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, tsp
from sqlmodel import Session, col, select
from typer.testing import CliRunner, Result

from api.cli.main import app
from core.audit import AuditEntry, AuditHead, entry_hash
from core.clock import FixedClock
from core.db import create_db_engine
from tests.conftest import make_settings
from tests.domain import Domain, demo_domain

EVERY = 5  # a checkpoint every five entries, so a demo domain has a good number of them


@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory, clock: FixedClock) -> Domain:
    built = demo_domain(tmp_path_factory, "anchor", clock=clock, audit_checkpoint_every=EVERY)
    for _ in range(3):
        built.issue()
    return built


@pytest.fixture(scope="module")
def saved_list(domain: Domain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trust list an auditor downloaded and kept."""
    path = tmp_path_factory.mktemp("auditor") / "saved-trust-list.json"
    path.write_text(domain.client.get("/pki/trust-list").text, encoding="utf-8")
    return path


def passphrase(domain: Domain) -> str:
    return f"test-passphrase-{Path(domain.settings.data_dir).name}"


def cli(domain: Domain, data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(
        app,
        [*args, "--data-dir", str(data_dir)],
        env={"ELICENCE_KEY_PASSPHRASE": passphrase(domain), "ELICENCE_DATABASE_URL": None},
    )


@pytest.fixture
def copy(domain: Domain, saved_list: Path, tmp_path: Path) -> Path:
    """A copy of the domain's data directory each attack may spoil."""
    source = Path(domain.settings.data_dir)
    target = tmp_path / "copy"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("elicence.db*"))
    with (
        sqlite3.connect(source / "elicence.db") as src,
        sqlite3.connect(target / "elicence.db") as dst,
    ):
        src.backup(dst)
    return target


def sql(data_dir: Path, *statements: str) -> None:
    with sqlite3.connect(data_dir / "elicence.db") as conn:
        for statement in statements:
            conn.execute(statement)


def published(saved_list: Path) -> dict[str, Any]:
    member: dict[str, Any] = json.loads(saved_list.read_text())["audit_checkpoint"]
    return member


def one_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def rewrite_from(data_dir: Path, seq: int) -> None:
    """Change entry ``seq`` and recompute every later hash and the head: a chain that links."""
    engine = create_db_engine(f"sqlite:///{data_dir / 'elicence.db'}")
    with Session(engine) as session, session.begin():
        entries = list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))))
        entries[seq - 1].object_id = "rewritten"
        previous = entries[seq - 2].hash
        for entry in entries[seq - 1 :]:
            entry.prev_hash = previous
            entry.hash = entry_hash(entry)
            previous = entry.hash
            session.add(entry)
        head = session.get(AuditHead, 1)
        assert head is not None
        head.hash = previous
        session.add(head)
    engine.dispose()


# -- what is published ---------------------------------------------------------------------------


def test_trust_list_publishes_the_latest_checkpoint_with_a_tsa_token(
    domain: Domain, saved_list: Path
) -> None:
    checkpoint = published(saved_list)
    assert set(checkpoint) == {"sequence", "entry", "hash", "at", "timestamp"}
    assert checkpoint["entry"] % EVERY == 0 and checkpoint["sequence"] >= 3
    engine = domain.services.engine
    with Session(engine) as session:
        entry = session.get(AuditEntry, checkpoint["entry"])
    assert entry is not None and entry.hash == checkpoint["hash"]
    token = cms.ContentInfo.load(base64.b64decode(checkpoint["timestamp"]))
    info = tsp.TSTInfo.load(token["content"]["encap_content_info"]["content"].parsed.dump())
    message = (
        f"elicence-audit-checkpoint/2:{checkpoint['sequence']}:{checkpoint['entry']}:"
        f"{checkpoint['hash']}"
    ).encode()
    assert info["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(message).digest()


# -- untouched -----------------------------------------------------------------------------------


def test_untouched_chain_is_intact_against_every_anchor(
    domain: Domain, saved_list: Path, copy: Path, tmp_path: Path
) -> None:
    plain = cli(domain, copy, "audit", "verify")
    assert plain.exit_code == 0, plain.output
    assert "audit chain intact" in plain.stdout
    anchored = cli(domain, copy, "audit", "verify", "--anchor", str(saved_list))
    assert anchored.exit_code == 0, anchored.output
    assert f"checkpoint {published(saved_list)['sequence']}" in anchored.stdout
    exported = tmp_path / "checkpoint.json"
    made = cli(domain, copy, "audit", "checkpoint", "--out", str(exported))
    assert made.exit_code == 0, made.output
    document = json.loads(exported.read_text())
    assert document["format"] == "elicence-audit-checkpoint/1"
    assert document["sequence"] >= published(saved_list)["sequence"]
    again = cli(domain, copy, "audit", "verify", "--anchor", str(exported))
    assert again.exit_code == 0, again.output


# -- attacks -------------------------------------------------------------------------------------


def test_checkpoints_deleted_and_chain_rewritten_fails_the_anchor(
    domain: Domain, saved_list: Path, copy: Path
) -> None:
    sql(copy, "DELETE FROM audit_checkpoint")
    rewrite_from(copy, 3)
    result = cli(domain, copy, "audit", "verify", "--anchor", str(saved_list))
    assert result.exit_code == 1, result.output
    anchor = published(saved_list)
    line = one_line(result)
    assert f"checkpoint {anchor['sequence']}" in line and f"entry {anchor['entry']}" in line
    assert "rewritten" in line


def test_checkpoints_deleted_and_chain_rewritten_fails_an_exported_anchor(
    domain: Domain, saved_list: Path, copy: Path, tmp_path: Path
) -> None:
    exported = tmp_path / "checkpoint.json"
    assert cli(domain, copy, "audit", "checkpoint", "--out", str(exported)).exit_code == 0
    sql(copy, "DELETE FROM audit_checkpoint")
    rewrite_from(copy, 3)
    result = cli(domain, copy, "audit", "verify", "--anchor", str(exported))
    assert result.exit_code == 1, result.output
    assert "rewritten" in one_line(result)


def test_truncated_chain_with_its_head_moved_fails_the_anchor(
    domain: Domain, saved_list: Path, copy: Path
) -> None:
    anchor = published(saved_list)
    keep = anchor["entry"] - 2
    sql(
        copy,
        f"DELETE FROM audit_entry WHERE seq > {keep}",
        f"DELETE FROM audit_checkpoint WHERE seq > {keep}",
        f"UPDATE audit_head SET seq = {keep}, "
        f"hash = (SELECT hash FROM audit_entry WHERE seq = {keep})",
    )
    assert cli(domain, copy, "audit", "verify").exit_code == 0  # consistent, but shorter
    result = cli(domain, copy, "audit", "verify", "--anchor", str(saved_list))
    assert result.exit_code == 1, result.output
    line = one_line(result)
    assert f"entry {anchor['entry']}" in line and "no longer" in line


def test_deleting_one_middle_checkpoint_breaks_plain_verify(domain: Domain, copy: Path) -> None:
    with sqlite3.connect(copy / "elicence.db") as conn:
        numbers = [row[0] for row in conn.execute("SELECT number FROM audit_checkpoint")]
    assert len(numbers) >= 3
    middle = sorted(numbers)[len(numbers) // 2]
    sql(copy, f"DELETE FROM audit_checkpoint WHERE number = {middle}")
    result = cli(domain, copy, "audit", "verify")
    assert result.exit_code == 1, result.output
    line = one_line(result)
    assert f"checkpoint {middle} is missing" in line


def test_a_checkpoint_timestamp_from_another_checkpoint_is_refused(
    domain: Domain, copy: Path
) -> None:
    """Tokens are bound to their checkpoint's hash: moving one onto another is caught."""
    sql(
        copy,
        "UPDATE audit_checkpoint SET timestamp_token = "
        "(SELECT timestamp_token FROM audit_checkpoint WHERE number = 1) WHERE number = 2",
    )
    result = cli(domain, copy, "audit", "verify")
    assert result.exit_code == 1, result.output
    line = one_line(result)
    assert "the timestamp of checkpoint 2" in line and "message imprint" in line


def test_a_stripped_checkpoint_timestamp_is_refused(domain: Domain, copy: Path) -> None:
    """A numbered checkpoint without its token does not pass as one made before numbering."""
    sql(copy, "UPDATE audit_checkpoint SET timestamp_token = NULL WHERE number = 2")
    result = cli(domain, copy, "audit", "verify")
    assert result.exit_code == 1, result.output
    assert "checkpoint 2 (entry " in one_line(result)
    assert "has no timestamp" in one_line(result)


def test_an_altered_anchor_file_is_refused(
    domain: Domain, saved_list: Path, copy: Path, tmp_path: Path
) -> None:
    """A saved list whose checkpoint was edited no longer verifies; it is no anchor."""
    document = json.loads(saved_list.read_text())
    document["audit_checkpoint"]["hash"] = "0" * 64
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document, ensure_ascii=False))
    result = cli(domain, copy, "audit", "verify", "--anchor", str(edited))
    assert result.exit_code == 1, result.output
    assert "signature" in one_line(result)


def test_an_altered_exported_checkpoint_is_refused(
    domain: Domain, copy: Path, tmp_path: Path
) -> None:
    """Moved to an earlier entry of the same chain: the audit key did not sign that."""
    exported = tmp_path / "checkpoint.json"
    assert cli(domain, copy, "audit", "checkpoint", "--out", str(exported)).exit_code == 0
    document = json.loads(exported.read_text())
    engine = create_db_engine(f"sqlite:///{copy / 'elicence.db'}")
    with Session(engine) as session:
        earlier = session.get(AuditEntry, document["entry"] - 1)
    engine.dispose()
    assert earlier is not None
    document.update(entry=earlier.seq, hash=earlier.hash)
    exported.write_text(json.dumps(document))
    result = cli(domain, copy, "audit", "verify", "--anchor", str(exported))
    assert result.exit_code == 1, result.output
    assert "audit-key signature does not verify" in one_line(result)


def test_no_anchor_without_a_timestamped_checkpoint(tmp_path: Path) -> None:
    """A fresh domain before its first checkpoint has nothing to export, and says so."""
    settings = make_settings(tmp_path / "fresh", audit_checkpoint_every=10_000)
    from api.container import build_services
    from api.ops.bootstrap import initialise

    initialise(build_services(settings), with_demo=False)
    result = CliRunner().invoke(
        app,
        [
            "audit",
            "checkpoint",
            "--out",
            str(tmp_path / "c.json"),
            "--data-dir",
            str(tmp_path / "fresh"),
        ],
        env={"ELICENCE_KEY_PASSPHRASE": "test-passphrase-fresh", "ELICENCE_DATABASE_URL": None},
    )
    assert result.exit_code == 1
    assert "no timestamped audit checkpoint" in one_line(result)
    assert not (tmp_path / "c.json").exists()


def test_a_newer_checkpoint_is_published_once_the_list_is_an_hour_old(
    domain: Domain, clock: FixedClock, saved_list: Path
) -> None:
    """Checkpoints come with every few audited actions; the list does not change with each."""
    first = json.loads(saved_list.read_text())
    for _ in range(2):
        domain.issue()
    from core.audit import latest_checkpoint

    with Session(domain.services.engine) as session:
        newest = latest_checkpoint(session)
    assert newest is not None and newest.number > first["audit_checkpoint"]["sequence"]
    again = domain.client.get("/pki/trust-list").json()
    assert again["sequence"] == first["sequence"]
    assert again["audit_checkpoint"] == first["audit_checkpoint"]
    clock.advance(timedelta(minutes=61))
    later = domain.client.get("/pki/trust-list").json()
    assert later["sequence"] == first["sequence"] + 1
    assert later["audit_checkpoint"]["sequence"] >= newest.number
