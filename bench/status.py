"""The status list's two costs (issue 19): how large the download is, and what a code costs to
check offline once the list is loaded.

* **Size**: a list for 10^6 licences, 1 % revoked. The licences' indexes follow
  ``licences.status_index``'s rule — uniformly random over a list of
  ``licences.bitstring.list_length`` entries, kept at most a quarter full — so the revoked
  entries are scattered as in production, the worst case for GZIP. Built with
  ``licences.bitstring.build`` / ``encode``, wrapped and signed by the domain's credential key as
  the publisher does (``licences.status_list.credential``): the GZIP bytes (the target),
  ``encodedList`` and the whole JWS.
* **Time**: ``verify.offline.verify_offline`` over N codes signed by the domain's QR key (indexes
  into that list, ~1 % revoked), the trust list anchored and the status list loaded once, one
  code a call; in turns with raw ECDSA P-256 verification (``cryptography``, the same curve),
  its baseline.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from bench.timing import Rate, timed_together
from licences.bitstring import MULTIBASE_BASE64URL, EntryStatus, build, list_length
from licences.payload import decode
from licences.status_list import LIFETIME, TYP, credential
from trust.jose import b64url_decode
from trust.profiles import Endpoints
from trust.trustlist import fingerprint, pin_from_text
from verify.offline import TrustedKeys, load_qr_keys, verify_offline
from verify.offline_status import StatusList, load_status_list

LICENCES = 1_000_000
REVOKED_SHARE = 0.01
CODES = 200
SEED = 19  # the same scatter every run, so sizes compare from run to run
RAW_VERIFY = "raw ECDSA P-256 verify"
OFFLINE = "verify QR offline (status list)"


@dataclass(frozen=True)
class Scatter:
    """Where the licences sit in the list and which of them are revoked."""

    length: int
    indexes: list[int]
    revoked: int  # the first ``revoked`` indexes are revoked

    def raw(self) -> bytes:
        entries = ((i, EntryStatus.REVOKED) for i in self.indexes[: self.revoked])
        return build(entries, self.length)


def scatter(licences: int = LICENCES, share: float = REVOKED_SHARE) -> Scatter:
    length = list_length(None)
    while licences > length // 4:  # status_index keeps the list at most a quarter full
        length *= 2
    indexes = random.Random(SEED).sample(range(length), licences)
    return Scatter(length, indexes, round(licences * share))


def status_list_jws(services: Any, raw: bytes) -> str:
    """``raw`` signed as the publisher signs it (``licences.status_list.credential``, the domain's
    credential key), valid from five minutes ago."""
    body = credential(
        endpoints=Endpoints(services.settings.public_base_url.rstrip("/")),
        issuer_name=services.settings.domain_name,
        raw=raw,
        valid_from=services.clock.now() - timedelta(minutes=5),
        lifetime=LIFETIME,
    )
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    token: str = services.credential_keys.sign(
        {"typ": TYP, "cty": "vc"}, payload, purpose="bench", listener=None
    )
    return token


def sizes(spread: Scatter, token: str) -> dict[str, Any]:
    encoded = json.loads(b64url_decode(token.split(".")[1]))["credentialSubject"]["encodedList"]
    assert encoded.startswith(MULTIBASE_BASE64URL)
    return {
        "licences": len(spread.indexes),
        "revoked": spread.revoked,
        "entries": spread.length,
        "raw_bytes": spread.length // 4,
        "gzip_bytes": len(b64url_decode(encoded[1:])),
        "encoded_list_chars": len(encoded),
        "jws_bytes": len(token),
    }


def status_rates(
    seconds: float, rounds: int, services: Any, qr: str, work: Path
) -> tuple[list[Rate], dict[str, Any]]:
    """The two rows, in turns, and the list's sizes, load time and answers for the JSON; ``qr``
    is a printed licence's code, whose claims the measured codes reuse."""
    spread = scatter()
    token = status_list_jws(services, spread.raw())
    figures = sizes(spread, token)
    keys = _anchored(services, work / "trust-list.json")
    started = time.perf_counter()
    status = load_status_list(token, keys.status)
    figures["load_ms"] = round((time.perf_counter() - started) * 1000, 2)
    assert isinstance(status, StatusList), status  # a refused list would measure nothing
    claims = decode(qr.rsplit("/", 1)[1]).claims
    step = len(spread.indexes) // CODES
    codes = [  # evenly over the licences, so ~1 % of them revoked
        services.qr_keys.sign(
            replace(claims, status_index=spread.indexes[i * step]), purpose="bench", listener=None
        )
        for i in range(CODES)
    ]
    now = services.clock.now()
    answers = Counter(verify_offline(c, keys, now, status=status).indication.value for c in codes)
    assert set(answers) == {"PASSED", "FAILED"}, answers
    figures["answers"] = dict(answers)
    cycle = itertools.cycle(codes)

    def offline_once() -> object:
        return verify_offline(next(cycle), keys, now, status=status)

    key = ec.generate_private_key(ec.SECP256R1())
    public, algorithm, message = key.public_key(), ec.ECDSA(hashes.SHA256()), b"bench" * 40
    signature = key.sign(message, algorithm)

    def raw_verify() -> None:
        for _ in range(100):
            public.verify(signature, message, algorithm)

    raw, offline = timed_together(
        [(RAW_VERIFY, raw_verify, None), (OFFLINE, offline_once, RAW_VERIFY)], seconds, rounds
    )
    raw.n *= 100
    raw.latencies = [x / 100 for x in raw.latencies]
    figures["per_code_us"] = round(offline.seconds / offline.n * 1e6, 1)
    figures["raw_verify_us"] = round(raw.seconds / raw.n * 1e6, 1)
    return [raw, offline], figures


def _anchored(services: Any, path: Path) -> TrustedKeys:
    """The domain's signed trust list as a verifier downloads it, pinned to its signer."""
    document = services.trust_services.pki.trust_list()
    path.write_text(json.dumps(document), encoding="utf-8")
    signer = x509.load_pem_x509_certificate(document["signer"]["certificate"].encode())
    keys = load_qr_keys(path, pin_from_text(fingerprint(signer)))
    assert keys.refusal is None, keys.refusal
    return keys
