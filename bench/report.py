"""What a run reports: whether the targets hold, and the table printed at the end.

The figures themselves are measured by ``bench/run.py`` (and the modules it calls); this turns
the run's result (the JSON written to ``bench/results/``) into the targets and the text table.
"""

from __future__ import annotations

from typing import Any

from bench.worker_pair import PG_SATURATED, SATURATING

# The shared-core QR rows, as ``bench/run.py`` names them (it takes the names from here).
QR_HTTP, QR_HTTP_PG = "verify QR over HTTP", "verify QR over HTTP, PostgreSQL"


def targets(out: dict[str, Any]) -> dict[str, Any]:
    by = {r["name"]: r for r in out["rates"]}

    def ratio(value: float, goal: float) -> dict[str, Any]:
        return {"ratio": value, "target": goal, "holds": value >= goal}

    status = out["status_list"]
    per_worker = {}
    if "issuance_lta" in out:  # bench/lta.py: a whole B-LTA issuance over HTTP, one at a time
        per_worker["issue B-LTA over HTTP / raw pyHanko B-LTA seal"] = ratio(
            out["issuance_lta"]["http_to_raw_lta"], out["issuance_lta"]["target"]
        )
    if PG_SATURATED in by:  # one worker each at capacity, in turns (bench/worker_pair.py)
        per_worker["verify QR per worker at capacity, PostgreSQL / SQLite"] = (
            ratio(by[PG_SATURATED]["ratio"], 0.9)
            | {"shared_cores": by[QR_HTTP_PG]["ratio"], "in_flight": out.get("concurrency")}
            | cpu_accounting(by, out.get("db_cpu_ms_per_request", {}))
        )
    return per_worker | {
        "issue B-B in-process / raw pyHanko seal": ratio(by["issue in-process B-B"]["ratio"], 0.5),
        "verify PDF in-process / raw pyHanko validate": ratio(
            by["verify PDF in-process (B-LTA)"]["ratio"], 0.7
        ),
        "verify PDF pipeline (no isolation, no log) / raw": ratio(
            by["verify PDF pipeline (PdfVerifier)"]["ratio"], 0.7
        ),
        "verify QR over HTTP / trivial endpoint, same stack": ratio(
            by["verify QR over HTTP"]["ratio"], 0.7
        ),
        "verify PDF over HTTP / raw pyHanko validate (in turns)": ratio(
            by["verify PDF over HTTP"]["ratio"], 0.8
        ),
        "verify QR over HTTP / trivial FastAPI, bare": ratio(
            out["qr_over_http_to_bare_fastapi"], 0.5
        ),
        # An offline check is one ECDSA verification, a ~200-byte decode and a bit lookup.
        "verify QR offline (status list) / raw ECDSA verify": ratio(
            by["verify QR offline (status list)"]["ratio"], 0.25
        ),
        # The download a counter refreshes: 10^6 licences, 1 % revoked, GZIP as published.
        "status list GZIP bytes (10^6 licences, 1 % revoked)": {
            "value": status["gzip_bytes"],
            "at_most": 32 * 1024,
            "holds": status["gzip_bytes"] <= 32 * 1024,
        },
    }


def cpu_accounting(by: dict[str, Any], db_ms: dict[str, float]) -> dict[str, Any]:
    """The PostgreSQL / SQLite ratio the run's CPU figures predict: a request's CPU all told —
    load generator, worker and (PostgreSQL) the database's backends — on SQLite over the same on
    PostgreSQL. The parties share the machine's cores, so when the run is bound by CPU this is
    what the measured ratio comes to. The worker's own part is the ratio of the server CPU
    alone: what the database's backends and the load generator do not touch."""
    sqlite, pg = by[QR_HTTP], by[QR_HTTP_PG]
    keys = ("client_cpu_ms_per_request", "server_cpu_ms_per_request")
    if not all(key in row for key in keys for row in (sqlite, pg)):
        return {}
    backends = db_ms.get(QR_HTTP_PG, 0.0)
    on_sqlite = sum(sqlite[key] for key in keys)
    on_pg = sum(pg[key] for key in keys) + backends
    return {
        "cpu_all_told": round(on_sqlite / on_pg, 3),
        "cpu_of_the_worker": round(sqlite[keys[1]] / pg[keys[1]], 3),
        "ms_per_request": {
            "load generator": [sqlite[keys[0]], pg[keys[0]]],
            "worker": [sqlite[keys[1]], pg[keys[1]]],
            "database backends": [0.0, backends],
        },
    }


def table(out: dict[str, Any]) -> str:
    lines = [
        f"elicence bench ({out['mode']}), {out['cpus']} CPUs, load {out['load_before']} -> "
        f"{out['load_after']}",
        f"{'measurement':<38} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8} {'srv ms':>7} "
        f"{'srv %':>5} {'ratio':>6}  baseline",
    ]
    for r in out["rates"]:
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else ""
        srv_ms = f"{r['server_cpu_ms_per_request']:.2f}" if "server_cpu_percent" in r else ""
        srv_pct = f"{r['server_cpu_percent']:.0f}" if "server_cpu_percent" in r else ""
        p50, p99 = (f"{r[k]:.2f}" if r[k] is not None else "" for k in ("p50_ms", "p99_ms"))
        lines.append(
            f"{r['name']:<38} {r['per_second']:9.1f} {p50:>8} {p99:>8} "
            f"{srv_ms:>7} {srv_pct:>5} {ratio:>6}  {r['baseline'] or ''}"
        )
    lines.append(
        "(srv ms: server CPU per request — for a row in this process taking turns with HTTP rows,"
        " its own CPU per call; srv %: CPU over the run, 100 = one core)"
    )
    for name, ms in out.get("db_cpu_ms_per_request", {}).items():
        lines.append(f"  + PostgreSQL backends' CPU: {ms:.2f} ms a request ({name})")
    lines += target_lines(out["targets"])
    lines.append(status_line(out["status_list"]))
    lines.append(f"RSS while issuing (MB): {out['rss_while_issuing']['rss_mb']}")
    lines.append(f"max-size upload, service: {out['max_upload']}")
    if "max_upload_http" in out:
        lines.append(f"max-size upload, HTTP: {out['max_upload_http']}")
    lines += scale_lines(out)
    return "\n".join(lines)


def target_lines(found: dict[str, Any]) -> list[str]:
    """The targets as printed: each with its figure, and the per-worker one with its context."""
    lines = ["targets:"]
    for name, t in found.items():
        held = "HOLDS" if t["holds"] else "MISSED"
        if "at_most" in t:
            lines.append(f"  {name:<52} {t['value']} <= {t['at_most']}  {held}")
        else:
            lines.append(f"  {name:<52} {t['ratio']:.3f} >= {t['target']}  {held}")
        if "shared_cores" in t:
            lines.append(
                f"    ({SATURATING} in flight, light load; with the bench's httpx load,"
                f" {t['in_flight']} in flight, on cores it shares with the worker and PostgreSQL:"
                f" {t['shared_cores']:.3f})"
            )
        if "cpu_all_told" in t:
            lines.append(
                f"    CPU a request, SQLite / PostgreSQL: {t['cpu_all_told']:.3f} all told, "
                f"{t['cpu_of_the_worker']:.3f} the worker's own (ms, SQLite vs PostgreSQL: "
                + ", ".join(f"{k} {a:.2f} vs {b:.2f}" for k, (a, b) in t["ms_per_request"].items())
                + ")"
            )
    return lines


def status_line(status: dict[str, Any]) -> str:
    return (
        f"status list, {status['licences']:,} licences, {status['revoked']:,} revoked, "
        f"{status['entries']:,} entries: GZIP {status['gzip_bytes']:,} B, encodedList "
        f"{status['encoded_list_chars']:,} chars, JWS {status['jws_bytes']:,} B, loaded in "
        f"{status['load_ms']} ms; offline check {status['per_code_us']} us a code (raw ECDSA "
        f"verify {status['raw_verify_us']} us), answers {status['answers']}"
    )


def scale_lines(out: dict[str, Any]) -> list[str]:
    lines = []
    for key, what in (("pg_load", "mixed load"), ("pg_qr_load", "QR verification only")):
        if key not in out:
            continue
        load = out[key]
        lines.append(
            f"PostgreSQL {what}, {load['workers']} workers, concurrency {load['concurrency']}, "
            f"{load['seconds']} s: {load['total_per_second']} req/s"
        )
        for name, r in load["endpoints"].items():
            lines.append(
                f"  {name:<12} {r['per_second']:8.1f}/s  p50 {r['p50_ms']:.1f} ms  "
                f"p99 {r['p99_ms']:.1f} ms  (n={r['n']})"
            )
    if "pg_indexes" in out:
        lines.append(f"  indexes: {out['pg_indexes']}")
    for row in out.get("pg_lookups", []):
        figures = {k: v for k, v in row.items() if k.endswith("_ms")}
        lines.append(f"  lookups at {row['rows']:,} rows (ms): {figures}")
        lines.append(f"    plans: {row['plans']}")
    return lines
