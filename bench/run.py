"""Throughput of issuance and verification against raw pyHanko and the crypto limit.

Everything is measured in one run, on one rendered licence page and one seal key, so the
ratios compare like with like on a shared machine:

* baselines (``bench/baselines.py``): raw ECDSA P-256, raw pyHanko sealing (key parsed once,
  fixed ``bytes_reserved``, same page, same visible seal, same certification), raw pyHanko
  validation (the seal and the document timestamp, a context of the domain's roots); a trivial
  endpoint over HTTP, both inside the elicence application (same middleware and server options:
  the ceiling a route's ratio is taken against) and as a bare FastAPI app (``bench/trivial.py``);
* ours: issuance in-process at PAdES B-B (``IssuanceService(long_term=None)``) and at B-LTA
  (the product default), issuance over HTTP, PDF and QR verification in-process and over HTTP
  (one uvicorn worker each, SQLite) — each reported as a ratio to its baseline, HTTP rows with
  the server's own CPU time per request (``bench/web.py``); PDF over HTTP in turns with raw
  pyHanko validation of the same file in this process;
* a whole B-LTA issuance over HTTP and in-process against raw pyHanko making a B-LTA seal on
  the same page with the same TSA and OCSP responder (``bench/lta.py``; not ``--smoke``);
* per worker (not ``--smoke``): QR verification over HTTP on PostgreSQL in turns with the same
  on SQLite (one ``elicence serve`` worker each, same load), the database backends' CPU beside
  the server's; then ``--workers 1`` against ``--workers 2`` on PostgreSQL (``bench/scale.py``);
* the status list (``bench/status.py``): its size for 10^6 licences with 1 % revoked, and the
  offline check of a printed code against it, as a ratio to raw ECDSA P-256 verification;
* signed event delivery (``bench/events.py``): events per second from a worker to a loopback
  receiver, as a ratio to bare HTTP POSTs to it, and the commit-to-receipt latency;
* memory (``bench/memory.py``): RSS while issuing many licences in one process, the peak while a
  maximum-size upload is verified, in the service and over HTTP;
* scale (``bench/scale.py``; ``--full``, or ``--pg`` with quick): PostgreSQL, ``elicence serve
  --workers N``, a mixed load, repository lookups at 10^4, 10^5 (10^6 with ``--rows-max``) rows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.baselines import raw_ecdsa, raw_sealer, raw_validator
from bench.domain import Captured, bb_issuance, build, capture_page, issue_request, seal_ref
from bench.events import EVENTS, event_rates
from bench.lta import lta_rates
from bench.memory import rss_while_issuing, upload_over_http, upload_probe
from bench.report import QR_HTTP, QR_HTTP_PG, scale_lines, table, targets
from bench.scale import PgDomain, pg_domain, pg_scale, worker_rates
from bench.status import status_rates
from bench.timing import Rate, settle, timed, timed_together
from bench.web import (
    PY,
    ROOT,
    Local,
    Row,
    elicence_server,
    env_for,
    http_rate,
    interleaved,
    passed,
    trivial_server,
)
from bench.worker_pair import Pair, saturated_rates
from core.clock import SystemClock

RESULTS = Path(__file__).resolve().parent / "results"
TRIVIAL = "trivial endpoint, same stack (HTTP)"
TRIVIAL_BARE = "trivial FastAPI, bare (HTTP)"
RAW_SEAL = "raw pyHanko seal B-B"
RAW_VALIDATE = "raw pyHanko validate (B-LTA file)"
RAW_VALIDATE_TURNS = "raw pyHanko validate, in turns with HTTP"
PDF_HTTP = "verify PDF over HTTP"


@dataclass
class Mode:
    name: str
    seconds: float  # per in-process measurement
    http_seconds: float
    concurrency: int
    rounds: int  # turns of the interleaved HTTP rows
    rss_counts: tuple[int, ...]
    upload_bytes: int
    pg: bool
    pg_seconds: float
    pg_workers: int
    rows: tuple[int, ...]
    per_worker: bool = True  # QR on PostgreSQL beside SQLite, --workers 1 and 2 (a PG database)


MIB = 2**20
MODES = {
    "smoke": Mode("smoke", 0.15, 0.3, 2, 1, (2, 4), MIB, False, 0, 0, (), per_worker=False),
    "quick": Mode("quick", 2.0, 6.0, 8, 6, (50, 200), 10 * MIB, False, 10, 2, (10_000,)),
    "full": Mode(
        "full",
        6.0,
        8.0,
        8,
        4,
        tuple(range(1000, 10_001, 1000)),
        10 * MIB,
        True,
        30,
        2,
        (10_000, 100_000),
    ),
}


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Fixture:
    """What every measurement of a run shares: the demo domain, its B-B issuance, the page the
    seal step receives, one sealed B-LTA licence and the seal's private key."""

    data_dir: Path
    services: Any
    bb: Any  # IssuanceService with long_term=None
    page: Captured
    qr: str  # the sample licence's verification URL
    lta_pdf: bytes
    private_key: Any


def measure(mode: Mode, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mode": mode.name,
        "started": SystemClock().now().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "concurrency": mode.concurrency,
        "load_before": load_avg(),
        "python": sys.version.split()[0],
    }
    fx = fixture(work)
    services = fx.services
    # First, while this process is what a counter's verifier is: no verification pool threads
    # (the PDF rows start them) to take the GIL from the offline check every 5 ms.
    status, out["status_list"] = status_rates(mode.seconds, mode.rounds, services, fx.qr, work)
    # Signed event delivery to a loopback receiver, against bare POSTs to it (bench/events.py).
    events, out["events"] = event_rates(mode.seconds, services, EVENTS[mode.name])
    settle()  # what the fixtures and the phases above left is not walked again
    rates = in_process_rates(mode, fx) + status + events
    db_cpu: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        pg = None
        if mode.per_worker:  # the same demo domain on PostgreSQL, for the per-worker rows
            pg = stack.enter_context(pg_domain(build, issue_request, work))
        settle()
        rates += http_rates(mode, fx, pg, db_cpu)
        if pg is not None:
            rates += worker_rates(pg, mode.http_seconds, mode.rounds, db_cpu)
    out["db_cpu_ms_per_request"] = db_cpu
    if mode.per_worker:  # a whole B-LTA issuance against raw pyHanko B-LTA (bench/lta.py)
        (work / "issuance").mkdir()
        lta, out["issuance_lta"] = lta_rates(work / "issuance", 3 * mode.seconds, mode.rounds)
        rates += lta
    with_ratios(rates, out)
    memory(mode, fx, out)
    services.engine.dispose()
    if mode.pg:
        pg_scale(
            build,
            issue_request,
            work=work,
            seconds=mode.pg_seconds,
            workers=mode.pg_workers,
            rows=mode.rows,
            out=out,
        )
    out["load_after"] = load_avg()
    out["targets"] = targets(out)
    return out


def fixture(work: Path) -> Fixture:
    """A demo domain on SQLite under ``work``, with one page captured and one licence issued."""
    from core.db import reading
    from licences.repository import document

    data_dir = work / "sqlite"
    data_dir.mkdir(mode=0o700)
    services = build(data_dir)
    bb = bb_issuance(services)
    page = capture_page(services, bb)
    sample = services.issuance.issue(issue_request(services))
    with reading(services.engine) as session:
        lta_pdf = document(session, sample.licence.identifier)
    private_key = services.keystore._load(seal_ref(services))
    return Fixture(data_dir, services, bb, page, sample.verify_url, lta_pdf, private_key)


def in_process_rates(mode: Mode, fx: Fixture) -> list[Rate]:
    """Raw ECDSA; each in-process family with its baseline, in turns (``bench/timing.py``
    ``timed_together``); QR verification."""
    from core.db import reading

    services, bb, lta_pdf, s = fx.services, fx.bb, fx.lta_pdf, mode.seconds
    rates = [raw_ecdsa(s, fx.private_key)]
    pipeline = services.verification._pdf

    def verify_pipeline() -> object:
        with reading(services.engine) as session:
            return pipeline.verify(session, lta_pdf, "upload")

    rates += timed_together(
        [
            (RAW_SEAL, raw_sealer(fx.page, fx.private_key), None),
            ("issue in-process B-B", lambda: bb.issue(issue_request(services)), RAW_SEAL),
            (
                "issue in-process B-LTA",
                lambda: services.issuance.issue(issue_request(services)),
                RAW_SEAL,
            ),
        ],
        1.5 * s,
        mode.rounds,
    )
    rates += timed_together(
        [
            ("raw pyHanko validate seal only", raw_validator(services, lta_pdf, False), None),
            (RAW_VALIDATE, raw_validator(services, lta_pdf), None),
            ("verify PDF pipeline (PdfVerifier)", verify_pipeline, RAW_VALIDATE),
            (
                "verify PDF in-process (B-LTA)",
                lambda: services.verification.verify_pdf(lta_pdf, channel="upload", actor="bench"),
                RAW_VALIDATE,
            ),
        ],
        1.5 * s,
        mode.rounds,
    )
    qr = fx.qr
    rates.append(
        timed(
            "verify QR in-process",
            lambda: services.verification.verify_code(qr, channel="qr", actor="bench"),
            s,
        )
    )
    return rates


def with_ratios(rates: list[Rate], out: dict[str, Any]) -> None:
    """Each rate, with its ratio to its baseline, into ``out``."""
    by_name = {r.name: r for r in rates}
    out["rates"] = [
        r.as_dict()
        | ({"ratio": round(r.per_second / by_name[r.baseline].per_second, 3)} if r.baseline else {})
        for r in rates
    ]
    out["qr_over_http_to_bare_fastapi"] = round(
        by_name[QR_HTTP].per_second / by_name[TRIVIAL_BARE].per_second, 3
    )


def memory(mode: Mode, fx: Fixture, out: dict[str, Any]) -> None:
    """RSS while issuing in one process (B-B: the same code path without the TSA), and the
    peak while a maximum-size upload is verified, in the service and over HTTP."""
    out["rss_while_issuing"] = rss_while_issuing(
        lambda: fx.bb.issue(issue_request(fx.services)), mode.rss_counts
    )
    if mode.name == "smoke":  # in this process: checks the code path, not the figure
        out["max_upload"] = upload_probe(fx.services, fx.lta_pdf, mode.upload_bytes)
        return
    data_dir = fx.data_dir  # a fresh process, so its RSS is the upload's alone
    probe = subprocess.run(
        [PY, "-m", "bench", "--upload-probe", str(data_dir), "--size", str(mode.upload_bytes)],
        env=env_for(data_dir, None),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    out["max_upload"] = json.loads(probe.stdout.strip().splitlines()[-1])
    out["max_upload_http"] = upload_over_http(data_dir, fx.lta_pdf, mode.upload_bytes)


def http_rates(
    mode: Mode, fx: Fixture, pg: PgDomain | None, db_cpu: dict[str, float]
) -> list[Rate]:
    """One uvicorn worker each, the same concurrency: the trivial endpoint bare and inside the
    elicence application, and QR verification on SQLite and (``pg``) on PostgreSQL, in turns;
    then PDF verification in turns with raw pyHanko validation of the same file in this
    process; then issuance."""
    data_dir, qr, pdf = fx.data_dir, fx.qr, fx.lta_pdf
    creds = json.loads((data_dir / "demo-credentials.json").read_text())
    department = issue_request(fx.services).department_code
    dept = next(d for d in creds["departments"] if d["code"] == department)
    headers = {"Authorization": f"Bearer {dept['api_key']}"}
    c, hs = mode.concurrency, mode.http_seconds
    trivial = ("t", "POST", "/trivial", {"json": {"qr": qr}})
    qr_call = ("q", "POST", "/api/v1/verify", {"json": {"qr": qr}})
    with contextlib.ExitStack() as stack:
        bare = stack.enter_context(trivial_server(data_dir, stacked=False))
        stack_srv = stack.enter_context(trivial_server(data_dir, stacked=True))
        srv = stack.enter_context(elicence_server(data_dir))
        # The QR rows and their ceilings take turns, so load drift falls on all of them alike.
        rows: list[Row | Local] = [
            Row(TRIVIAL_BARE, bare, trivial, c),
            Row(TRIVIAL, stack_srv, trivial, c),
            Row(QR_HTTP, srv, qr_call, c, TRIVIAL, passed),
        ]
        if pg is not None:
            on_pg = stack.enter_context(elicence_server(pg.data_dir, 1, pg.url))
            pg_call = ("q", "POST", "/api/v1/verify", {"json": {"qr": pg.qr}})
            rows.append(Row(QR_HTTP_PG, on_pg, pg_call, c, QR_HTTP, passed, pg.db_cpu))
        rates = interleaved(rows, hs, mode.rounds, db_cpu)
        if pg is not None:  # the same two workers at capacity: the per-worker target
            rates += saturated_rates(Pair(srv, qr, on_pg, pg), hs, mode.rounds, db_cpu)
        files = {"file": ("l.pdf", pdf, "application/pdf")}
        pdf_call = ("p", "POST", "/api/v1/verify", {"files": files})
        rates += interleaved(
            [
                Local(RAW_VALIDATE_TURNS, raw_validator(fx.services, pdf)),
                Row(PDF_HTTP, srv, pdf_call, c, RAW_VALIDATE_TURNS),
            ],
            hs,
            mode.rounds,
        )
        issue = (
            "i",
            "POST",
            "/api/v1/licences",
            {"json": dept["sample_request"], "headers": headers},
        )
        rates.append(http_rate("issue over HTTP (B-LTA)", srv, issue, hs, min(c, 4), RAW_SEAL))
    return rates


def scale_only(mode: Mode, work: Path) -> dict[str, Any]:
    """``--scale-only``: the PostgreSQL part alone (e.g. lookups at 10^6 rows)."""
    out: dict[str, Any] = {
        "mode": "scale",
        "started": SystemClock().now().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_before": load_avg(),
    }
    pg_scale(
        build,
        issue_request,
        work=work,
        seconds=mode.pg_seconds,
        workers=mode.pg_workers,
        rows=mode.rows,
        out=out,
        mixed_load=mode.pg_seconds > 0,
    )
    out["load_after"] = load_avg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="elicence benchmarks")
    parser.add_argument(
        "--full", action="store_true", help="longer runs, RSS to 10,000, PostgreSQL"
    )
    parser.add_argument("--smoke", action="store_true", help="seconds only: checks the harness")
    parser.add_argument("--pg", action="store_true", help="add the PostgreSQL scale run to quick")
    parser.add_argument("--rows-max", type=int, default=0, help="also measure lookups at this size")
    parser.add_argument("--rss-to", type=int, default=0, help="issue this many for the RSS run")
    parser.add_argument(
        "--scale-only", action="store_true", help="only the PostgreSQL part (load and lookups)"
    )
    parser.add_argument(
        "--no-load", action="store_true", help="with --scale-only: lookups only, no mixed load"
    )
    parser.add_argument("--upload-probe", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=10 * MIB, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upload_probe:
        print(json.dumps(_fresh_upload_probe(Path(args.upload_probe), args.size)))
        return
    mode = MODES["full" if args.full else "smoke" if args.smoke else "quick"]
    if args.pg:
        mode.pg = True
    if args.rows_max:
        mode.rows = (*mode.rows, args.rows_max)
    if args.rss_to:
        step = max(1, args.rss_to // 10)
        mode.rss_counts = (*range(step, args.rss_to, step), args.rss_to)
    if args.no_load:
        mode.pg_seconds = 0
    with tempfile.TemporaryDirectory(prefix="elicence-bench-") as tmp:
        out = scale_only(mode, Path(tmp)) if args.scale_only else measure(mode, Path(tmp))
    RESULTS.mkdir(exist_ok=True)
    stamp = SystemClock().now().strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{out['mode']}-{stamp}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print("\n".join(scale_lines(out)) if args.scale_only else table(out))
    print(f"written {path.relative_to(ROOT)}")
    if args.smoke:
        print(json.dumps({"smoke": "ok", "result": str(path)}))


def _fresh_upload_probe(data_dir: Path, size: int) -> dict[str, Any]:
    from sqlmodel import select

    from core.db import reading
    from licences.models import Licence
    from licences.repository import document

    services = build(data_dir)
    with reading(services.engine) as session:
        licence = session.exec(select(Licence)).first()
        assert licence is not None
        pdf = document(session, licence.identifier)
    return upload_probe(services, pdf, size)
