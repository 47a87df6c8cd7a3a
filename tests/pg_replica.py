"""A real streaming replica of the local PostgreSQL, for the tests of reads routed to a replica.

Not a second, independent database: ``pg_basebackup -R`` copies the running cluster
(127.0.0.1:5432) into a temporary directory owned by ``postgres`` and a second server is started
there, on a free port, as a hot standby streaming the primary's WAL. Everything a test writes on
the primary (a schema of its own, a new database) reaches it by replication, with a real lag.

- The primary must let a replication connection in from loopback: ``scripts/pg-allow-replication``
  adds that line (idempotent); the fixture runs it first, so ``make test`` works on a developer's
  machine as in CI.
- PostgreSQL refuses to run as root: the tools run as ``postgres`` through ``runuser``.
- A physical replication slot, made by ``pg_basebackup -C`` before it copies and named by the
  test process (``elicence_test_<pid>_<random>``; the directory too). Without one, the primary
  (``wal_keep_size`` 0, other test runs and benchmarks writing beside us) recycled a WAL segment
  the copy still needed ("requested WAL segment ... has already been removed"). A slot pins WAL
  until it is dropped, so ``stop`` drops it, and each start first stops the standbys and drops
  the slots of test processes that no longer exist (a run that was killed). The slot follows
  what the standby has received, not what it replayed: a paused replay pins no WAL.
- A slot made while the primary checkpoints can be invalidated at once: copies are made one at
  a time on this machine (a file lock) and a failed copy is made again (``ATTEMPTS``).
- ``pause()`` stops replay (``pg_wal_replay_pause``): a test then has a deterministic lag.
- Without the tools or the primary the fixture skips, and fails under ``ELICENCE_STRICT_TESTS=1``.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.tools import missing

PG_BIN = Path(os.environ.get("ELICENCE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
ROOT = Path(__file__).resolve().parent.parent
ALLOW = ROOT / "scripts" / "pg-allow-replication"
# A slot made while the primary runs a checkpoint can be invalidated at once ("restart_lsn ...
# exceeds max_slot_wal_keep_size", PostgreSQL 15 even with the limit off); checkpoints are
# frequent on a server other test runs share (every DROP DATABASE, every fast base backup), so a
# failed copy is made again.
ATTEMPTS = 3
LOCK = Path(tempfile.gettempdir()) / "elicence-test-basebackup.lock"
# Hot standby refuses to start when these are lower than the primary's: copied from it.
_MUST_MATCH = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


@contextmanager
def _one_copy_at_a_time() -> Iterator[None]:
    """One base backup at a time on this machine (xdist workers each start a standby): two fast
    checkpoints at once are what invalidates a new slot."""
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    command = list(argv) if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _plain(url: str) -> str:
    """A SQLAlchemy URL as psycopg takes it (search_path options kept)."""
    return url.replace("postgresql+psycopg://", "postgresql://")


@dataclass
class Replica:
    """A hot standby of the primary at ``primary_url``'s server, on ``port``."""

    directory: Path
    port: int
    primary_url: str  # the administrative URL of the primary (database ``test``)
    slot: str  # the primary's replication slot for this standby

    def url(self, primary_url: str | None = None) -> str:
        """``primary_url`` (default: the administrative one) pointed at the replica: same
        database, user and options."""
        return (
            make_url(primary_url or self.primary_url)
            .set(port=self.port)
            .render_as_string(hide_password=False)
        )

    def _one(self, url: str, sql: str) -> object:
        import psycopg

        with psycopg.connect(_plain(url), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql)
            row = cursor.fetchone() if cursor.description else None
        return None if row is None else row[0]

    def on_replica(self, sql: str) -> object:
        return self._one(self.url(), sql)

    def on_primary(self, sql: str) -> object:
        return self._one(self.primary_url, sql)

    def in_recovery(self) -> bool:
        return self.on_replica("SELECT pg_is_in_recovery()") is True

    def sync(self, timeout: float = 30.0) -> float:
        """Wait until the replica has replayed everything the primary had written when called;
        the seconds it took (the lag observed)."""
        target = self.on_primary("SELECT pg_current_wal_lsn()::text")
        started = time.monotonic()
        while True:
            caught = self.on_replica(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
            if caught is True:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"replica did not replay up to {target} in {timeout} s")
            time.sleep(0.005)

    def pause(self) -> None:
        """Stop replaying WAL (it is still received): from now on the replica lags."""
        self.on_replica("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10
        while self.on_replica("SELECT pg_get_wal_replay_pause_state()") != "paused":
            if time.monotonic() > deadline:
                raise AssertionError("replica replay did not pause")
            time.sleep(0.01)

    def resume(self) -> None:
        self.on_replica("SELECT pg_wal_replay_resume()")

    def paused(self) -> bool:
        return self.on_replica("SELECT pg_get_wal_replay_pause_state()") != "not paused"

    def stop(self) -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.directory), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
        _drop_slot(self.primary_url, self.slot)


def _drop_slot(primary_url: str, slot: str) -> None:
    """Drop the slot once its walsender has gone (a few seconds at most after the standby)."""
    import psycopg

    deadline = time.monotonic() + 15
    with psycopg.connect(_plain(primary_url), autocommit=True, connect_timeout=5) as conn:
        while True:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if row is None:
                return
            if not row[0]:
                try:
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                    return
                except psycopg.errors.ObjectInUse:
                    pass
            if time.monotonic() > deadline:
                raise AssertionError(f"replication slot {slot} is still in use")
            time.sleep(0.1)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _stop_orphans() -> None:
    """Standbys left running by a test process that was killed: stopped and removed."""
    for directory in Path(tempfile.gettempdir()).glob("elicence-replica-*-*"):
        owner = directory.name.split("-")[2]
        if owner.isdigit() and _gone(int(owner)):
            if (directory / "postmaster.pid").exists():
                _as_postgres(
                    str(PG_BIN / "pg_ctl"), "-D", str(directory), "-m", "immediate", "stop"
                )
            shutil.rmtree(directory, ignore_errors=True)


def _drop_stale_slots(primary_url: str) -> None:
    """The inactive slots of test processes that are gone (a killed run) pin WAL for nothing."""
    import psycopg

    with psycopg.connect(_plain(primary_url), autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE NOT active "
            "AND slot_name LIKE 'elicence\\_test\\_%'"
        ).fetchall()
        for (name,) in rows:
            owner = str(name).split("_")[2]
            # A slot whose process still runs may be between its copy and its standby's start.
            if owner.isdigit() and _gone(int(owner)):
                conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))


def _settings(primary_url: str) -> dict[str, str]:
    import psycopg

    names = ", ".join(f"'{name}'" for name in _MUST_MATCH)
    with psycopg.connect(_plain(primary_url), autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(f"SELECT name, setting FROM pg_settings WHERE name IN ({names})")
        return {str(name): str(value) for name, value in rows}


def start_replica(primary_url: str) -> Replica:
    """Copy the primary's cluster and start it as a hot standby; the caller stops it."""
    import psycopg

    url = make_url(primary_url)
    host, port = url.host or "127.0.0.1", url.port or 5432
    if host not in ("127.0.0.1", "localhost"):
        missing(f"a replica can only be made of a local PostgreSQL, not {host}")
    for tool in ("pg_basebackup", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            missing(f"PostgreSQL tool {PG_BIN / tool} is not installed")
    try:
        settings = _settings(primary_url)
    except psycopg.OperationalError as exc:
        missing(f"PostgreSQL at {host}:{port} is not available: {exc}")
    allowed = subprocess.run(
        [str(ALLOW)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PGHOST": host, "PGPORT": str(port)},
    )
    if allowed.returncode != 0:
        missing(f"replication connections are not allowed: {allowed.stderr.strip()}")
    _stop_orphans()
    _drop_stale_slots(primary_url)
    slot = f"elicence_test_{os.getpid()}_{secrets.token_hex(3)}"
    directory = Path(tempfile.mkdtemp(prefix=f"elicence-replica-{os.getpid()}-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    directory.chmod(0o700)
    for attempt in range(1, ATTEMPTS + 1):
        with _one_copy_at_a_time():
            backup = _as_postgres(
                str(PG_BIN / "pg_basebackup"),
                *("-h", host, "-p", str(port), "-U", url.username or "postgres"),
                *("-D", str(directory), "-R", "-X", "stream", "-c", "fast", "--no-sync"),
                *("-C", "-S", slot),
            )
        if backup.returncode == 0:
            break
        _drop_slot(primary_url, slot)
        for item in directory.iterdir():  # pg_basebackup wants an empty directory
            if item.is_dir():
                shutil.rmtree(item)
            else:
                item.unlink()
        if attempt == ATTEMPTS:
            shutil.rmtree(directory, ignore_errors=True)
            missing(f"pg_basebackup failed {ATTEMPTS} times: {backup.stderr.strip()}")
        time.sleep(1)
    replica_port = _free_port()
    conf = [
        f"port = {replica_port}",
        "listen_addresses = '127.0.0.1'",
        f"unix_socket_directories = '{directory}'",
        "hot_standby = on",
        "hot_standby_feedback = on",
        "wal_receiver_status_interval = 1s",
        "shared_buffers = 32MB",
        "fsync = off",  # a throwaway copy: its durability is not what the tests are about
        "logging_collector = off",
        *(f"{name} = {value}" for name, value in settings.items()),
    ]
    (directory / "postgresql.conf").write_text("\n".join(conf) + "\n")
    (directory / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    if os.geteuid() == 0:
        for name in ("postgresql.conf", "pg_hba.conf"):
            shutil.chown(directory / name, "postgres", "postgres")
    started = _as_postgres(
        str(PG_BIN / "pg_ctl"),
        *("-D", str(directory), "-l", str(directory / "server.log"), "-w", "-t", "60", "start"),
    )
    admin = make_url(primary_url).set(database="test").render_as_string(hide_password=False)
    replica = Replica(directory=directory, port=replica_port, primary_url=admin, slot=slot)
    if started.returncode != 0:
        log = (directory / "server.log").read_text(errors="replace")[-2000:]
        replica.stop()
        missing(f"the replica did not start: {started.stderr.strip()} {log}")
    try:
        deadline = time.monotonic() + 60
        while not _answers(replica):
            if time.monotonic() > deadline:
                raise AssertionError("the replica does not answer")
            time.sleep(0.1)
        assert replica.in_recovery(), "the copy is not a standby"
        replica.sync()
    except BaseException:
        replica.stop()
        raise
    return replica


def _answers(replica: Replica) -> bool:
    import psycopg

    try:
        replica.on_replica("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture(scope="session")
def pg_replica() -> Iterator[Replica]:
    """One hot standby of the test PostgreSQL for the whole session (per xdist worker)."""
    from tests.conftest import POSTGRES_ADMIN_URL

    replica = start_replica(POSTGRES_ADMIN_URL)
    try:
        yield replica
    finally:
        replica.stop()


@pytest.fixture
def fresh_replica(pg_replica: Replica) -> Iterator[Replica]:
    """The session's replica, caught up and replaying; replay is resumed after the test."""
    pg_replica.sync()
    try:
        yield pg_replica
    finally:
        if pg_replica.paused():
            pg_replica.resume()
