"""``python -m bench --smoke`` runs end to end and writes valid JSON (no timing is asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the bench

ROOT = Path(__file__).resolve().parent.parent


def test_bench_smoke_emits_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["smoke"] == "ok"
    result = json.loads(Path(last["result"]).read_text())
    names = {r["name"] for r in result["rates"]}
    assert {"raw pyHanko seal B-B", "issue in-process B-B", "verify QR over HTTP"} <= names
    assert set(result["targets"]) and result["max_upload"]["upload_bytes"] > 0
    Path(last["result"]).unlink()
