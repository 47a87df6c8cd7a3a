"""What the national form costs beside the PDF: ``python -m bench.ofd [--smoke] [--seconds S]
[--rounds R]``.

Two groups of rows, each group measured in interleaved turns (``timing.timed_together``: A B A B
…) so that a figure and the one it is compared with share whatever the shared machine was doing:

* ``primitives``: an SM2 signature (GB/T 32918; ``keys.sm2``, OpenSSL 3 through ctypes, Z and
  e = SM3(Z || M) computed for each message, as a seal does) and its verification, beside ECDSA
  P-256 with SHA-256 (``cryptography``), over the same 3 KB message — about the size of an OFD
  seal's DER(toSign);
* ``documents``: the product's issuance of one licence of the demo's first type as a PDF only
  (PAdES, as configured) and as an OFD only (GB/T 38540 seal, SM2), through
  ``services.issuance.issue`` with the type's ``document_formats`` switched between turns, and the
  verification of each document through ``services.verifier`` — the work ``POST /api/v1/verify``
  does, without HTTP.

``--smoke`` runs each row for a fraction of a second (the path is checked, no figure is meant).
The JSON printed last is the result; figures go to bench/README.md through a person.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.timing import Rate, timed_together

MESSAGE = os.urandom(3072)


def primitive_rows() -> list[tuple[str, Callable[[], object], str | None]]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from keys.sm2 import Sm2PrivateKey

    sm2 = Sm2PrivateKey.generate()
    sm2_public = sm2.public_key()
    sm2_signature = sm2.sign_digest(sm2_public.digest(MESSAGE))
    p256 = ec.generate_private_key(ec.SECP256R1())
    p256_public = p256.public_key()
    algorithm = ec.ECDSA(hashes.SHA256())
    p256_signature = p256.sign(MESSAGE, algorithm)

    def sm2_sign() -> bytes:
        return sm2.sign_digest(sm2_public.digest(MESSAGE))

    def sm2_verify() -> None:
        if not sm2_public.verify(sm2_signature, MESSAGE):
            raise AssertionError("SM2 signature did not verify")

    def p256_sign() -> bytes:
        return p256.sign(MESSAGE, algorithm)

    def p256_verify() -> None:
        p256_public.verify(p256_signature, MESSAGE, algorithm)

    return [
        ("sm2_sign", sm2_sign, "ecdsa_p256_sign"),
        ("ecdsa_p256_sign", p256_sign, None),
        ("sm2_verify", sm2_verify, "ecdsa_p256_verify"),
        ("ecdsa_p256_verify", p256_verify, None),
    ]


def document_rows(bench: Any) -> list[tuple[str, Callable[[], object], str | None]]:
    """Issue and verify a PDF-only and an OFD-only licence of the demo's first type."""
    return [
        ("issue_pdf", bench.issue_pdf, None),
        ("issue_ofd", bench.issue_ofd, "issue_pdf"),
        ("verify_pdf", bench.verify_pdf, None),
        ("verify_ofd", bench.verify_ofd, "verify_pdf"),
    ]


def _rows(rates: list[Rate]) -> list[dict[str, Any]]:
    return [rate.as_dict() for rate in rates]


def run(seconds: float, rounds: int, *, with_documents: bool = True) -> dict[str, Any]:
    result: dict[str, Any] = {
        "seconds_per_row": seconds,
        "rounds": rounds,
        # the machine is shared: the load before and after says how much of it the run had
        "load_average_before": round(os.getloadavg()[0], 2),
        "primitives": _rows(timed_together(primitive_rows(), seconds, rounds)),
    }
    if with_documents:
        from bench.domain import build

        with tempfile.TemporaryDirectory(prefix="bench-ofd-") as tmp:
            from bench.ofd_documents import DocumentBench

            bench = DocumentBench(build(Path(tmp) / "data"))
            result["documents"] = _rows(timed_together(document_rows(bench), seconds, rounds))
            result["sizes"] = bench.sizes()
    result["load_average_after"] = round(os.getloadavg()[0], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a fraction of a second per row")
    parser.add_argument("--seconds", type=float, default=10.0, help="per row, over all rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--primitives-only", action="store_true", help="SM2 and ECDSA only, no demo domain"
    )
    args = parser.parse_args()
    seconds, rounds = (0.2, 2) if args.smoke else (args.seconds, args.rounds)
    result = run(seconds, rounds, with_documents=not args.primitives_only)
    if args.smoke:
        result["smoke"] = "ok"
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
