"""``python -m bench.ofd --smoke`` runs end to end: SM2 beside ECDSA, and the product issuing and
verifying the same licence as a PDF and as an OFD (no timing is asserted, only that every row ran
and the documents it measured were what it says)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a demo domain and runs the bench

ROOT = Path(__file__).resolve().parent.parent


def test_the_ofd_bench_smoke_runs_every_row() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ofd", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["smoke"] == "ok"
    primitives = {row["name"]: row for row in result["primitives"]}
    assert set(primitives) == {"sm2_sign", "ecdsa_p256_sign", "sm2_verify", "ecdsa_p256_verify"}
    documents = {row["name"]: row for row in result["documents"]}
    assert set(documents) == {"issue_pdf", "issue_ofd", "verify_pdf", "verify_ofd"}
    assert all(row["n"] >= 1 for row in [*primitives.values(), *documents.values()])
    assert documents["issue_ofd"]["baseline"] == "issue_pdf"
    assert documents["verify_ofd"]["baseline"] == "verify_pdf"
    assert result["sizes"]["ofd_bytes"] > 0 and result["sizes"]["pdf_bytes"] > 0
