"""Throughput of issuance and verification against raw pyHanko and the crypto limit.

Everything is measured in one run, on one rendered licence page and one seal key, so the
ratios compare like with like on a shared machine:

* baselines: raw ECDSA P-256 (``cryptography``), raw pyHanko sealing (key parsed once, fixed
  ``bytes_reserved``, same page, same visible seal, same certification), raw pyHanko validation
  (one ``validate_pdf_signature`` with a context of the domain's roots), a trivial FastAPI
  endpoint served by uvicorn as ours is;
* ours: issuance in-process at PAdES B-B (``IssuanceService(long_term=None)``) and at B-LTA
  (the product default), issuance over HTTP, PDF verification and QR verification in-process
  and over HTTP (one uvicorn worker each, SQLite) — each reported as a ratio to its baseline;
* memory: RSS while issuing many licences in one process, peak RSS of verifying a
  maximum-size upload (in a child process);
* scale (``--full``, or ``--pg`` with quick): PostgreSQL, ``elicence serve --workers N``, a
  mixed load run, repository lookups at 10^4, 10^5 (10^6 with ``--rows-max``) licence rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PY = sys.executable
BIN = Path(sys.executable).parent


@dataclass
class Mode:
    name: str
    seconds: float  # per in-process measurement
    http_seconds: float
    concurrency: int
    rss_counts: tuple[int, ...]
    pg: bool
    pg_seconds: float
    pg_workers: int
    rows: tuple[int, ...]


MODES = {
    "smoke": Mode("smoke", 0.15, 0.3, 2, (2, 4), False, 0, 0, ()),
    "quick": Mode("quick", 2.0, 3.0, 8, (50, 200), False, 10, 2, (10_000,)),
    "full": Mode("full", 6.0, 8.0, 8, (200, 2000), True, 30, 2, (10_000, 100_000)),
}


@dataclass
class Rate:
    name: str
    n: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    baseline: str | None = None

    @property
    def per_second(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "name": self.name,
            "n": self.n,
            "seconds": round(self.seconds, 3),
            "per_second": round(self.per_second, 2),
            "p50_ms": round(_pct(lat, 50) * 1000, 3) if lat else None,
            "p99_ms": round(_pct(lat, 99) * 1000, 3) if lat else None,
            "baseline": self.baseline,
        }


def _pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def timed(name: str, fn: Callable[[], object], seconds: float, baseline: str | None = None) -> Rate:
    fn()  # warm
    latencies: list[float] = []
    start = time.perf_counter()
    end = start + seconds
    while True:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        latencies.append(t1 - t0)
        if t1 >= end and len(latencies) >= 3:
            break
    return Rate(name, len(latencies), time.perf_counter() - start, latencies, baseline)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- the domain ------------------------------------------------------------------------------


def _env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env |= {
        "ELICENCE_DATA_DIR": str(data_dir),
        "ELICENCE_KEY_PASSPHRASE": "bench",
        "ELICENCE_PUBLIC_BASE_URL": "https://licence.example.gov.cn",
        "ELICENCE_PUBLIC_RATE_LIMIT": "10000000/minute",
        "ELICENCE_CLIENT_RATE_LIMIT": "10000000/minute",
    }
    if database_url:
        env["ELICENCE_DATABASE_URL"] = database_url
    env["PYTHONPATH"] = str(ROOT)
    return env


def build(data_dir: Path, database_url: str | None = None) -> Any:
    from api.bootstrap import initialise
    from api.container import build_services
    from api.settings import Settings

    settings = Settings(
        data_dir=data_dir,
        key_passphrase="bench",  # type: ignore[arg-type]
        public_base_url="https://licence.example.gov.cn",
        database_url=database_url,
    )
    services = build_services(settings)
    initialise(services, with_demo=True)
    return services


def issue_request(services: Any, n: int = 0) -> Any:
    from api import demo
    from licences.issuance import IssueRequest

    sample = demo.SAMPLE_LICENCES[0]
    return IssueRequest(
        department_code=sample["department"],
        licence_type=sample["licence_type"],
        holder_id_type=sample["holder"]["id_type"],
        holder_id=sample["holder"]["id"],
        holder_name=sample["holder"]["name"],
        fields=sample["fields"],
        valid_from=date.today(),
        actor="bench",
    )


def bb_issuance(services: Any) -> Any:
    """The product's issuance with ``long_term=None``: PAdES B-B (no timestamp, no LTV)."""
    from licences.issuance import IssuanceService

    live = services.issuance
    return IssuanceService(
        engine=live._engine,
        catalogue=live._catalogue,
        seals=live._seals,
        audit=live._audit,
        clock=live._clock,
        fonts=live._fonts,
        public_base_url=live._base_url,
        qr_codes=live._qr_codes,
        long_term=None,
    )


@dataclass
class Captured:
    pdf: bytes
    box: tuple[float, float, float, float]
    image_png: bytes
    reason: str
    location: str
    name: str
    key_label: str
    chain_der: list[bytes]


def capture_page(services: Any, issuance: Any) -> Captured:
    """Issue once and keep the rendered page handed to the seal step (the same input PDF)."""
    import licences.issuance as mod

    original = mod.apply_seal
    seen: dict[str, Any] = {}

    def spy(request: Any, signer: Any, evidence: Any = None) -> bytes:
        seen["request"] = request
        seen["signer"] = signer
        return original(request, signer, evidence)

    mod.apply_seal = spy  # type: ignore[assignment]
    try:
        issuance.issue(issue_request(services))
    finally:
        mod.apply_seal = original
    request, signer = seen["request"], seen["signer"]
    certs = [signer.signing_cert, *signer.cert_registry]
    chain = [c.dump() for c in certs]
    return Captured(
        request.pdf,
        request.box,
        request.image_png,
        request.reason,
        request.location,
        request.name,
        signer._ref.label if hasattr(signer, "_ref") else "",
        chain,
    )


# --- baselines -------------------------------------------------------------------------------


def raw_ecdsa(seconds: float, key: Any) -> Rate:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    data = hashlib.sha256(b"bench").digest()
    algo = ec.ECDSA(hashes.SHA256())

    def once() -> None:
        for _ in range(100):
            key.sign(data, algo)

    rate = timed("raw ECDSA P-256 sign (x100)", once, seconds)
    rate.n *= 100
    rate.latencies = [x / 100 for x in rate.latencies]
    rate.name = "raw ECDSA P-256 sign"
    return rate


def raw_sealer(page: Captured, private_key: Any) -> Callable[[], bytes]:
    """pyHanko used well: key and certificates parsed once, fixed signature size, the same
    certification seal with the same visible image, B-B."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization
    from PIL import Image
    from pyhanko.pdf_utils import layout
    from pyhanko.pdf_utils.images import PdfImage
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.fields import MDPPerm
    from pyhanko.stamp import StaticStampStyle
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    certs = [asn1_x509.Certificate.load(der) for der in page.chain_der]
    key_info = asn1_keys.PrivateKeyInfo.load(
        private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = signers.SimpleSigner(
        signing_cert=certs[0],
        signing_key=key_info,
        cert_registry=SimpleCertificateStore.from_certs(certs[1:]),
        embed_roots=False,
    )
    image = Image.open(io.BytesIO(page.image_png))
    image.load()
    meta = signers.PdfSignatureMetadata(
        field_name="Seal",
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES,
        reason=page.reason,
        location=page.location,
        name=page.name,
    )
    style = StaticStampStyle(
        background=PdfImage(image),
        border_width=0,
        background_opacity=1.0,
        background_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MID,
            y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins(0, 0, 0, 0),
            inner_content_scaling=layout.InnerScaling.SHRINK_TO_FIT,
        ),
    )
    spec = fields.SigFieldSpec(
        sig_field_name="Seal",
        on_page=0,
        box=tuple(round(v) for v in page.box),  # type: ignore[arg-type]
    )
    pdf_signer = signers.PdfSigner(meta, signer, stamp_style=style, new_field_spec=spec)

    def seal() -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(page.pdf), strict=True)
        out = io.BytesIO()
        pdf_signer.sign_pdf(writer, bytes_reserved=12288, output=out)
        return out.getvalue()

    return seal


def raw_validator(services: Any, pdf: bytes, archive: bool = True) -> Callable[[], object]:
    """pyHanko's own validation of the same sealed file: ``validate_pdf_signature`` (with the
    seal's timestamp) with a context of the domain's roots and CAs (parsed once), no fetching;
    with ``archive``, also ``validate_pdf_timestamp`` of the document timestamp, which a B-LTA
    file carries and our verifier checks too (like for like)."""
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
    from pyhanko_certvalidator import ValidationContext

    from core.db import reading

    with reading(services.engine) as session:
        roots = services.trust.roots(session)
        inter = services.trust.intermediates(session)

    def asn1(c: Any) -> Any:
        return asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))

    roots_a, inter_a = [asn1(c) for c in roots], [asn1(c) for c in inter]

    def validate() -> object:
        context = ValidationContext(
            trust_roots=roots_a,
            other_certs=inter_a,
            allow_fetching=False,
            revocation_mode="soft-fail",
        )
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signature = reader.embedded_regular_signatures[0]
        status = validate_pdf_signature(
            signature, signer_validation_context=context, ts_validation_context=context
        )
        assert status.intact and status.valid
        if archive:
            for stamp in reader.embedded_timestamp_signatures:
                ts = validate_pdf_timestamp(stamp, context)
                assert ts.intact and ts.valid
        return status

    return validate


# --- HTTP ------------------------------------------------------------------------------------


@contextlib.contextmanager
def server(args: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(log.read().decode(errors="replace")[-2000:])
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code in (200, 404):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def elicence_server(data_dir: Path, port: int, workers: int = 1, db: str | None = None) -> Any:
    return server(
        [
            str(BIN / "elicence"),
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        _env(data_dir, db),
        port,
    )


def trivial_server(port: int) -> Any:
    return server(
        [
            PY,
            "-m",
            "uvicorn",
            "bench.trivial:app",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        _env(Path("."), None),
        port,
    )


Call = tuple[str, str, str, dict[str, Any]]  # label, method, path, httpx kwargs


async def _load(
    base: str,
    calls: Callable[[int], Call],
    seconds: float,
    concurrency: int,
    max_requests: int,
    check: Callable[[str, Any], None] | None = None,
) -> dict[str, Rate]:
    import httpx

    rates: dict[str, Rate] = {}
    counter = 0
    errors: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        start = time.perf_counter()
        end = start + seconds

        async def worker() -> None:
            nonlocal counter
            while time.perf_counter() < end and counter < max_requests:
                i = counter
                counter += 1
                label, method, path, kwargs = calls(i)
                t0 = time.perf_counter()
                response = await client.request(method, path, **kwargs)
                elapsed = time.perf_counter() - t0
                if response.status_code >= 400:
                    errors.append(f"{label}: {response.status_code} {response.text[:200]}")
                    continue
                if check is not None:
                    check(label, response)
                rates.setdefault(label, Rate(label, 0, 0.0)).latencies.append(elapsed)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        total = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    for rate in rates.values():
        rate.n, rate.seconds = len(rate.latencies), total
    return rates


def http_rate(
    name: str, base: str, call: Call, seconds: float, concurrency: int, baseline: str | None = None
) -> Rate:
    asyncio.run(_load(base, lambda i: call, 0.3, concurrency, 10**9))  # warm
    rates = asyncio.run(_load(base, lambda i: call, seconds, concurrency, 10**9))
    rate = rates[call[0]]
    rate.name, rate.baseline = name, baseline
    return rate


# --- memory ----------------------------------------------------------------------------------


def upload_probe(data_dir: str, size: int) -> dict[str, Any]:
    """Verify a small licence, then one padded to ``size``; the RSS figures (run it in a fresh
    process for a meaningful peak: ``--upload-probe``)."""
    import gc

    services = build(Path(data_dir))
    from sqlmodel import select

    from core.db import reading
    from licences.models import Licence
    from licences.repository import document

    with reading(services.engine) as session:
        licence = session.exec(select(Licence)).first()
        assert licence is not None
        pdf = document(session, licence.identifier)
    services.verification.verify_pdf(pdf, channel="upload", actor="bench")
    # A maximum-size upload: the sealed licence with a comment of padding after it (which makes
    # it fail as modified, after the whole file has been parsed and hashed).
    big = pdf + b"\n%" + b"x" * (size - len(pdf) - 3) + b"\n"
    import threading

    gc.collect()
    before = rss_mb()
    peak = before
    running = True

    def sample() -> None:
        nonlocal peak
        while running:
            peak = max(peak, rss_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    report = services.verification.verify_pdf(big, channel="upload", actor="bench")
    seconds = time.perf_counter() - t0
    running = False
    sampler.join()
    return {
        "upload_bytes": len(big),
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(peak, 1),
        "peak_delta_mb": round(peak - before, 1),
        "multiple_of_upload": round((peak - before) * 2**20 / len(big), 2),
        "seconds": round(seconds, 2),
        "indication": report.indication.value,
        "sub_indication": report.sub_indication.value if report.sub_indication else None,
    }


# --- PostgreSQL scale ------------------------------------------------------------------------

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    import secrets

    import psycopg

    name = f"elicence_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def insert_rows(url: str, total: int) -> None:
    """Bring the licence table to ``total`` rows with synthetic licences (COPY)."""
    import psycopg

    dsn = url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn) as conn:
        have = conn.execute("SELECT count(*) FROM licence").fetchone()[0]  # type: ignore[index]
        template = conn.execute(
            "SELECT type_code, issuer_code, seal_code, seal_certificate_serial FROM licence LIMIT 1"
        ).fetchone()
        assert template is not None
        start = conn.execute("SELECT coalesce(max(id), 0) FROM holder").fetchone()[0]  # type: ignore[index]
        missing = total - have
        if missing <= 0:
            return
        with conn.cursor() as cur:
            with cur.copy("COPY holder (id, id_type, id_number, name) FROM STDIN") as copy:
                for i in range(missing):
                    copy.write_row((start + 1 + i, "111", f"SYN{have + i:015d}", f"持证人{i}"))
            cur.execute("SELECT setval('holder_id_seq', (SELECT max(id) FROM holder))")
            now = datetime.now(UTC)
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
                            f"SYN.{n:012d}",
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


def lookups(services: Any, total: int, samples: int = 300) -> dict[str, Any]:
    import random

    from sqlmodel import select

    from core.db import reading
    from licences.models import Licence
    from licences.repository import licence_by_code, licence_by_sha256

    rng = random.Random(total)
    ns = [rng.randrange(total - 10) for _ in range(samples)]
    out: dict[str, Any] = {"rows": total}
    probes: dict[str, Callable[[Any, int], object]] = {
        "by_identifier": lambda s, n: s.get(Licence, f"SYN.{n:012d}"),
        "by_sha256": lambda s, n: licence_by_sha256(s, hashlib.sha256(str(n).encode()).hexdigest()),
        "by_verify_code": lambda s, n: licence_by_code(s, f"CODE{n:020d}"),
        "by_holder": lambda s, n: s.exec(
            select(Licence).where(Licence.holder_id == n + 1).limit(20)
        ).all(),
    }
    with reading(services.engine) as session:
        for name, probe in probes.items():
            times = []
            for n in ns:
                t0 = time.perf_counter()
                probe(session, n)
                times.append(time.perf_counter() - t0)
                session.expunge_all()
            out[name + "_p50_ms"] = round(statistics.median(times) * 1000, 3)
    return out


def indexes(url: str) -> dict[str, bool]:
    import psycopg

    dsn = url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'licence'"
        ).fetchall()
    defs = [r[0] for r in rows]

    def has(column: str) -> bool:
        return any(f"({column})" in d for d in defs)

    return {c: has(c) for c in ("sha256", "verify_code", "holder_id")}


def pg_scale(mode: Mode, work: Path, out: dict[str, Any]) -> list[Rate]:
    with pg_database() as url:
        data_dir = work / "pg"
        data_dir.mkdir(mode=0o700)
        services = build(data_dir, url)
        out["pg_indexes"] = indexes(url)
        creds = json.loads((data_dir / "demo-credentials.json").read_text())
        dept = next(
            d for d in creds["departments"] if d["code"] == issue_request(services).department_code
        )
        issued = services.issuance.issue(issue_request(services))
        from core.db import reading
        from licences.repository import document

        with reading(services.engine) as session:
            pdf = document(session, issued.licence.identifier)
        qr = issued.verify_url
        headers = {"Authorization": f"Bearer {dept['api_key']}"}
        body = dept["sample_request"]

        def call(i: int) -> Call:
            k = i % 10
            if k == 0:
                return ("issue", "POST", "/api/v1/licences", {"json": body, "headers": headers})
            if k in (1, 2):
                return (
                    "verify_pdf",
                    "POST",
                    "/api/v1/verify",
                    {"files": {"file": ("l.pdf", pdf, "application/pdf")}},
                )
            return ("verify_qr", "POST", "/api/v1/verify", {"json": {"qr": qr}})

        port = free_port()
        with elicence_server(data_dir, port, mode.pg_workers, url) as base:
            asyncio.run(_load(base, call, 1.0, 4, 50))  # warm every worker
            rates = asyncio.run(_load(base, call, mode.pg_seconds, 16, 200_000))
        out["pg_load"] = {
            "workers": mode.pg_workers,
            "concurrency": 16,
            "seconds": mode.pg_seconds,
            "endpoints": {k: v.as_dict() for k, v in rates.items()},
            "total_per_second": round(sum(r.per_second for r in rates.values()), 1),
        }
        out["pg_lookups"] = []
        for total in mode.rows:
            insert_rows(url, total)
            out["pg_lookups"].append(lookups(services, total))
        services.engine.dispose()
        return list(rates.values())


# --- the run ---------------------------------------------------------------------------------


def measure(mode: Mode, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mode": mode.name,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_before": load_avg(),
        "python": sys.version.split()[0],
    }
    data_dir = work / "sqlite"
    data_dir.mkdir(mode=0o700)
    services = build(data_dir)
    bb = bb_issuance(services)
    page = capture_page(services, bb)
    sample = services.issuance.issue(issue_request(services))
    from core.db import reading
    from licences.repository import document

    with reading(services.engine) as session:
        lta_pdf = document(session, sample.licence.identifier)
    seal_ref = _seal_ref(services)
    private_key = services.keystore._load(seal_ref)
    s = mode.seconds
    rates: list[Rate] = []
    rates.append(raw_ecdsa(s, private_key))
    seal = raw_sealer(page, private_key)
    rates.append(timed("raw pyHanko seal B-B", seal, s))
    rates.append(
        timed(
            "issue in-process B-B",
            lambda: bb.issue(issue_request(services)),
            s,
            "raw pyHanko seal B-B",
        )
    )
    rates.append(
        timed(
            "issue in-process B-LTA",
            lambda: services.issuance.issue(issue_request(services)),
            s,
            "raw pyHanko seal B-B",
        )
    )
    rates.append(
        timed("raw pyHanko validate seal only", raw_validator(services, lta_pdf, False), s)
    )
    rates.append(timed("raw pyHanko validate (B-LTA file)", raw_validator(services, lta_pdf), s))
    pipeline = services.verification._pdf

    def verify_pipeline() -> object:
        with reading(services.engine) as session:
            return pipeline.verify(session, lta_pdf, "upload")

    rates.append(
        timed(
            "verify PDF pipeline (PdfVerifier)",
            verify_pipeline,
            s,
            "raw pyHanko validate (B-LTA file)",
        )
    )
    rates.append(
        timed(
            "verify PDF in-process (B-LTA)",
            lambda: services.verification.verify_pdf(lta_pdf, channel="upload", actor="bench"),
            s,
            "raw pyHanko validate (B-LTA file)",
        )
    )
    qr = sample.verify_url
    rates.append(
        timed(
            "verify QR in-process",
            lambda: services.verification.verify_code(qr, channel="qr", actor="bench"),
            s,
        )
    )
    # HTTP, one worker each, the same concurrency.
    creds = json.loads((data_dir / "demo-credentials.json").read_text())
    dept = next(
        d for d in creds["departments"] if d["code"] == issue_request(services).department_code
    )
    headers = {"Authorization": f"Bearer {dept['api_key']}"}
    c, hs = mode.concurrency, mode.http_seconds
    with trivial_server(free_port()) as base:
        rates.append(
            http_rate(
                "trivial FastAPI (HTTP)",
                base,
                ("t", "POST", "/trivial", {"json": {"qr": qr}}),
                hs,
                c,
            )
        )
    with elicence_server(data_dir, free_port()) as base:
        rates.append(
            http_rate(
                "verify QR over HTTP",
                base,
                ("q", "POST", "/api/v1/verify", {"json": {"qr": qr}}),
                hs,
                c,
                "trivial FastAPI (HTTP)",
            )
        )
        rates.append(
            http_rate(
                "verify PDF over HTTP",
                base,
                (
                    "p",
                    "POST",
                    "/api/v1/verify",
                    {"files": {"file": ("l.pdf", lta_pdf, "application/pdf")}},
                ),
                hs,
                c,
                "raw pyHanko validate (B-LTA file)",
            )
        )
        rates.append(
            http_rate(
                "issue over HTTP (B-LTA)",
                base,
                (
                    "i",
                    "POST",
                    "/api/v1/licences",
                    {"json": dept["sample_request"], "headers": headers},
                ),
                hs,
                min(c, 4),
                "raw pyHanko seal B-B",
            )
        )
    by_name = {r.name: r for r in rates}
    out["rates"] = [
        r.as_dict()
        | ({"ratio": round(r.per_second / by_name[r.baseline].per_second, 3)} if r.baseline else {})
        for r in rates
    ]
    # Memory: RSS while issuing in one process (B-B: the same code path without the TSA).
    import gc

    gc.collect()
    rss: dict[str, float] = {"start": round(rss_mb(), 1)}
    done = 0
    for count in mode.rss_counts:
        while done < count:
            bb.issue(issue_request(services))
            done += 1
        gc.collect()
        rss[str(count)] = round(rss_mb(), 1)
    out["rss_mb_after_issuing"] = rss
    if mode.name == "smoke":  # in this process: checks the code path, not the figure
        out["max_upload"] = upload_probe(str(data_dir), 1024 * 1024)
    else:  # a fresh process, so its RSS is the upload's alone
        probe = subprocess.run(
            [PY, "-m", "bench", "--upload-probe", str(data_dir), "--size", str(10 * 2**20)],
            env=_env(data_dir, None),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        out["max_upload"] = json.loads(probe.stdout.strip().splitlines()[-1])
    services.engine.dispose()
    if mode.pg:
        pg_scale(mode, work, out)
    out["load_after"] = load_avg()
    out["targets"] = targets(out)
    return out


def _seal_ref(services: Any) -> Any:
    from core.db import reading

    department = issue_request(services).department_code
    with reading(services.engine) as session:
        context = services.seals.seal_for_issuance(session, department)
    return services.seals.signer(context, None)._ref


def targets(out: dict[str, Any]) -> dict[str, Any]:
    by = {r["name"]: r for r in out["rates"]}

    def ratio(name: str, goal: float) -> dict[str, Any]:
        value = by[name]["ratio"]
        return {"ratio": value, "target": goal, "holds": value >= goal}

    return {
        "issue B-B in-process / raw pyHanko seal": ratio("issue in-process B-B", 0.5),
        "verify PDF in-process / raw pyHanko validate": ratio("verify PDF in-process (B-LTA)", 0.7),
        "verify PDF pipeline (no isolation, no log) / raw": ratio(
            "verify PDF pipeline (PdfVerifier)", 0.7
        ),
        "verify QR over HTTP / trivial endpoint": ratio("verify QR over HTTP", 0.5),
    }


def table(out: dict[str, Any]) -> str:
    lines = [
        f"elicence bench ({out['mode']}), {out['cpus']} CPUs, load {out['load_before']} -> "
        f"{out['load_after']}",
        f"{'measurement':<36} {'per s':>10} {'p50 ms':>9} {'p99 ms':>9} {'ratio':>7}  baseline",
    ]
    for r in out["rates"]:
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else ""
        lines.append(
            f"{r['name']:<36} {r['per_second']:10.1f} {r['p50_ms'] or 0:9.2f} "
            f"{r['p99_ms'] or 0:9.2f} {ratio:>7}  {r['baseline'] or ''}"
        )
    lines.append("targets:")
    for name, t in out["targets"].items():
        lines.append(
            f"  {name:<48} {t['ratio']:.3f} >= {t['target']}  {'HOLDS' if t['holds'] else 'MISSED'}"
        )
    lines.append(f"RSS after issuing (MB): {out['rss_mb_after_issuing']}")
    lines.append(f"max-size upload: {out['max_upload']}")
    if "pg_load" in out:
        load = out["pg_load"]
        lines.append(
            f"PostgreSQL, {load['workers']} workers, concurrency {load['concurrency']}, "
            f"{load['seconds']} s: {load['total_per_second']} req/s; indexes {out['pg_indexes']}"
        )
        for name, r in load["endpoints"].items():
            lines.append(
                f"  {name:<12} {r['per_second']:8.1f}/s  p50 {r['p50_ms']:.1f} ms  "
                f"p99 {r['p99_ms']:.1f} ms  (n={r['n']})"
            )
        for row in out["pg_lookups"]:
            lines.append(f"  lookups: {row}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="elicence benchmarks")
    parser.add_argument("--full", action="store_true", help="longer runs, RSS to 2,000, PostgreSQL")
    parser.add_argument("--smoke", action="store_true", help="seconds only: checks the harness")
    parser.add_argument("--pg", action="store_true", help="add the PostgreSQL scale run to quick")
    parser.add_argument("--rows-max", type=int, default=0, help="also measure lookups at this size")
    parser.add_argument("--upload-probe", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=10 * 1024 * 1024, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upload_probe:
        print(json.dumps(upload_probe(args.upload_probe, args.size)))
        return
    mode = MODES["full" if args.full else "smoke" if args.smoke else "quick"]
    if args.pg:
        mode.pg = True
    if args.rows_max:
        mode.rows = (*mode.rows, args.rows_max)
    with tempfile.TemporaryDirectory(prefix="elicence-bench-") as tmp:
        out = measure(mode, Path(tmp))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{mode.name}-{stamp}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print(table(out))
    print(f"written {path.relative_to(ROOT)}")
    if args.smoke:
        print(json.dumps({"smoke": "ok", "result": str(path)}))
