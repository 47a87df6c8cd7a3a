"""PostgreSQL at scale: a mixed load on ``elicence serve --workers N``, and repository lookups
as the licence table grows to 10^4, 10^5, 10^6 synthetic rows (inserted with ``COPY``).

Runs on its own database, ``elicence_bench_<random>`` on 127.0.0.1:5432, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bench.timing import Rate
from bench.web import Call, Row, elicence_server, interleaved, load, passed, process_cpu
from core.clock import SystemClock

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SYNTHETIC = "SYN."


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg", "postgresql")


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    import psycopg

    name = f"elicence_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def database_cpu(url: str) -> Callable[[], float]:
    """CPU seconds so far of the PostgreSQL backends serving ``url``'s database: the work a
    PostgreSQL-backed worker hands to the database server, which its own CPU does not show."""
    name = url.rsplit("/", 1)[1]

    def read() -> float:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            pids = [
                int(row[0])
                for row in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
                ).fetchall()
            ]
        return sum(process_cpu(pid) for pid in pids)

    return read


@dataclass
class PgDomain:
    """The demo domain on a fresh PostgreSQL database, with one licence issued (its QR URL)."""

    url: str
    data_dir: Path
    qr: str
    db_cpu: Callable[[], float]


@contextlib.contextmanager
def pg_domain(
    build: Callable[[Path, str | None], Any], issue_request: Callable[[Any], Any], work: Path
) -> Iterator[PgDomain]:
    with pg_database() as url:
        data_dir = work / "pg-worker"
        data_dir.mkdir(mode=0o700)
        services = build(data_dir, url)
        qr = services.issuance.issue(issue_request(services)).verify_url
        services.engine.dispose()
        yield PgDomain(url, data_dir, qr, database_cpu(url))


WORKERS_CONCURRENCY = 16


def worker_rates(pg: PgDomain, seconds: float, rounds: int, db_cpu: dict[str, float]) -> list[Rate]:
    """QR verification on PostgreSQL, ``elicence serve --workers 1`` and ``--workers 2`` on the
    same database, in turns, 16 concurrent: what a second worker process adds on this machine
    (the load generator shares its cores)."""
    call: Call = ("q", "POST", "/api/v1/verify", {"json": {"qr": pg.qr}})
    one_name = "QR over HTTP, PostgreSQL, --workers 1"
    with (
        elicence_server(pg.data_dir, 1, pg.url) as one,
        elicence_server(pg.data_dir, 2, pg.url) as two,
    ):
        asyncio.run(load(two.base, lambda i: call, 1.0, 4, 50))  # warm both of its workers
        return interleaved(
            [
                Row(one_name, one, call, WORKERS_CONCURRENCY, None, passed, pg.db_cpu),
                Row(
                    "QR over HTTP, PostgreSQL, --workers 2",
                    two,
                    call,
                    WORKERS_CONCURRENCY,
                    one_name,
                    passed,
                    pg.db_cpu,
                ),
            ],
            seconds,
            rounds,
            db_cpu,
        )


def insert_rows(url: str, total: int) -> float:
    """Bring the licence table to ``total`` rows with synthetic licences, each with a holder of
    its own (``SYN<n>``); returns the seconds it took."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(_dsn(url)) as conn:
        have = conn.execute("SELECT count(*) FROM licence").fetchone()[0]  # type: ignore[index]
        template = conn.execute(
            "SELECT type_code, issuer_code, seal_code, seal_certificate_serial FROM licence LIMIT 1"
        ).fetchone()
        assert template is not None
        start = conn.execute("SELECT coalesce(max(id), 0) FROM holder").fetchone()[0]  # type: ignore[index]
        missing = total - have
        if missing <= 0:
            return 0.0
        with conn.cursor() as cur:
            with cur.copy("COPY holder (id, id_type, id_number, name) FROM STDIN") as copy:
                for i in range(missing):
                    copy.write_row((start + 1 + i, "111", f"SYN{have + i:015d}", f"持证人{i}"))
            cur.execute("SELECT setval('holder_id_seq', (SELECT max(id) FROM holder))")
            now = SystemClock().now()
            columns = (
                "identifier, type_code, issuer_code, serial, version, holder_id, fields, "
                "valid_from, valid_until, status, issued_at, verify_code, sha256, seal_code, "
                "type_version, seal_certificate_serial"
            )
            with cur.copy(f"COPY licence ({columns}) FROM STDIN") as copy:
                for i in range(missing):
                    n = have + i
                    copy.write_row(
                        (
                            f"{SYNTHETIC}{n:012d}",
                            template[0],
                            template[1],
                            f"S{n:011d}",
                            1,
                            start + 1 + i,
                            "{}",
                            date(2025, 1, 1),
                            None,
                            "valid",
                            now,
                            f"CODE{n:020d}",
                            hashlib.sha256(str(n).encode()).hexdigest(),
                            template[2],
                            1,
                            template[3],
                        )
                    )
        conn.execute("ANALYZE licence")
        conn.execute("ANALYZE holder")
        conn.commit()
    return time.perf_counter() - started


def lookups(services: Any, url: str, total: int, samples: int = 300) -> dict[str, Any]:
    """Median and p99 of each lookup over ``samples`` random synthetic licences, one read
    session (the ORM round trip on loopback included), and the plan PostgreSQL chose."""
    import psycopg

    from core.db import reading

    with psycopg.connect(_dsn(url)) as conn:
        ns, holder_ids = _sample(conn, total, samples)
        plans = {name: _plan(conn, sql, arg) for name, sql, arg in PLANNED}
    out: dict[str, Any] = {"rows": total, "plans": plans}
    with reading(services.engine) as session:
        for name, probe in _probes(holder_ids).items():
            times = []
            for n in ns:
                t0 = time.perf_counter()
                found = probe(session, n)
                times.append(time.perf_counter() - t0)
                if not found:
                    raise RuntimeError(f"{name}: nothing found for synthetic licence {n}")
                session.expunge_all()
            times.sort()
            out[name + "_p50_ms"] = round(statistics.median(times) * 1000, 3)
            out[name + "_p99_ms"] = round(
                times[min(len(times) - 1, round(0.99 * len(times)))] * 1000, 3
            )
    return out


# The lookups whose plans are reported: name, SQL, an argument of the right type.
PLANNED: tuple[tuple[str, str, object], ...] = (
    ("by_identifier", "SELECT * FROM licence WHERE identifier = %s", "SYN.000000000042"),
    ("by_sha256", "SELECT * FROM licence WHERE sha256 = %s", "0" * 64),
    ("by_verify_code", "SELECT * FROM licence WHERE verify_code = %s", "CODE0"),
    ("by_holder_id", "SELECT * FROM licence WHERE holder_id = %s LIMIT 20", 42),
    (
        "holder_by_identity",
        "SELECT * FROM holder WHERE id_type = '111' AND id_number = %s",
        "SYN000000000000042",
    ),
)


def _sample(conn: Any, total: int, samples: int) -> tuple[list[int], dict[str, int]]:
    """``samples`` synthetic licence numbers drawn (seeded by ``total``) from the synthetic
    rows, and the holder row id of each one's holder, by ID number."""
    first = conn.execute(
        "SELECT min(identifier) FROM licence WHERE identifier LIKE %s", (SYNTHETIC + "%",)
    ).fetchone()[0]
    lowest = int(first[len(SYNTHETIC) :])
    rng = random.Random(total)
    ns = [rng.randrange(lowest, total) for _ in range(samples)]
    holder_ids: dict[str, int] = dict(
        conn.execute(
            "SELECT id_number, id FROM holder WHERE id_number = ANY(%s)",
            ([f"SYN{n:015d}" for n in ns],),
        ).fetchall()
    )
    return ns, holder_ids


def _probes(holder_ids: dict[str, int]) -> dict[str, Callable[[Any, int], object]]:
    """Each lookup as the product makes it, of synthetic licence ``n``, in a read session."""
    from sqlmodel import select

    from licences.models import Holder, Licence
    from licences.repository import licence_by_code, licence_by_sha256

    def holder_identity(session: Any, n: int) -> object:
        holder = session.exec(
            select(Holder).where(Holder.id_type == "111", Holder.id_number == f"SYN{n:015d}")
        ).first()
        return session.exec(select(Licence).where(Licence.holder_id == holder.id).limit(20)).all()

    return {
        "by_identifier": lambda s, n: s.get(Licence, f"{SYNTHETIC}{n:012d}"),
        "by_sha256": lambda s, n: licence_by_sha256(s, hashlib.sha256(str(n).encode()).hexdigest()),
        "by_verify_code": lambda s, n: licence_by_code(s, f"CODE{n:020d}"),
        "by_holder_id": lambda s, n: s.exec(
            select(Licence).where(Licence.holder_id == holder_ids[f"SYN{n:015d}"]).limit(20)
        ).all(),
        "by_holder_identity": holder_identity,
    }


def _plan(conn: Any, sql: str, arg: object) -> str:
    """The access path of the plan's innermost scan (an index scan keeps lookups flat)."""
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql, (arg,)).fetchone()[0][0]["Plan"]
    while plan.get("Plans"):
        plan = plan["Plans"][0]
    index = plan.get("Index Name")
    return f"{plan['Node Type']}" + (f" using {index}" if index else "")


def indexes(url: str) -> dict[str, bool]:
    import psycopg

    with psycopg.connect(_dsn(url)) as conn:
        rows = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'licence'"
        ).fetchall()
    defs = [r[0] for r in rows]

    def has(column: str) -> bool:
        return any(f"({column})" in d for d in defs)

    return {c: has(c) for c in ("sha256", "verify_code", "holder_id")}


def pg_scale(
    build: Callable[[Path, str | None], Any],
    issue_request: Callable[[Any], Any],
    *,
    work: Path,
    seconds: float,
    workers: int,
    rows: tuple[int, ...],
    out: dict[str, Any],
    mixed_load: bool = True,
) -> list[Rate]:
    with pg_database() as url:
        data_dir = work / "pg"
        data_dir.mkdir(mode=0o700)
        services = build(data_dir, url)
        out["pg_indexes"] = indexes(url)
        rates: dict[str, Rate] = {}
        if mixed_load:
            for key, only_qr in (("pg_load", False), ("pg_qr_load", True)):
                found = _load_run(services, issue_request, data_dir, url, seconds, workers, only_qr)
                out[key] = {
                    "workers": workers,
                    "concurrency": 16,
                    "seconds": seconds,
                    "endpoints": {k: v.as_dict() for k, v in found.items()},
                    "total_per_second": round(sum(r.per_second for r in found.values()), 1),
                }
                rates |= {f"{k} ({key})": v for k, v in found.items()}
        out["pg_lookups"] = []
        for total in rows:
            inserted = insert_rows(url, total)
            print(f"bench: {total} licence rows ({inserted:.0f} s to insert)", file=sys.stderr)
            row = lookups(services, url, total)
            row["insert_seconds"] = round(inserted, 1)
            out["pg_lookups"].append(row)
        services.engine.dispose()
        return list(rates.values())


def _load_run(
    services: Any,
    issue_request: Callable[[Any], Any],
    data_dir: Path,
    url: str,
    seconds: float,
    workers: int,
    only_qr: bool,
) -> dict[str, Rate]:
    """10 % issuance, 20 % PDF verification, 70 % QR verification, 16 concurrent; or QR
    verification alone (every one an audited write: the audit head's throughput)."""
    from core.db import reading
    from licences.repository import document

    creds = json.loads((data_dir / "demo-credentials.json").read_text())
    department = issue_request(services).department_code
    dept = next(d for d in creds["departments"] if d["code"] == department)
    issued = services.issuance.issue(issue_request(services))
    with reading(services.engine) as session:
        pdf = document(session, issued.licence.identifier)
    qr = issued.verify_url
    headers = {"Authorization": f"Bearer {dept['api_key']}"}
    body = dept["sample_request"]

    def call(i: int) -> Call:
        k = 5 if only_qr else i % 10
        if k == 0:
            return ("issue", "POST", "/api/v1/licences", {"json": body, "headers": headers})
        if k in (1, 2):
            files = {"file": ("l.pdf", pdf, "application/pdf")}
            return ("verify_pdf", "POST", "/api/v1/verify", {"files": files})
        return ("verify_qr", "POST", "/api/v1/verify", {"json": {"qr": qr}})

    with elicence_server(data_dir, workers, url) as srv:
        asyncio.run(load(srv.base, call, 1.0, 4, 50))  # warm every worker
        return asyncio.run(load(srv.base, call, seconds, 16, 200_000))
