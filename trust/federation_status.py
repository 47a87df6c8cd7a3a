"""The licence-status answer of another domain (``GET /pki/licence-status/{key}``), checked.

The issuing domain answers "what is the status of this licence now" with a JSON document
signed by its trust-list key (``trust.federation_jws``, ``typ`` = licence status). We ask with a
fresh random nonce and believe the answer only when it is signed by the pinned signer of that
domain's stored trust list, names that domain, answers exactly our question (key and nonce)
and was produced just now. Nothing is cached: every verification asks again, so a revocation
at the issuing domain is seen at the next verification.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from core.errors import InvalidInput
from trust.federation_http import Peers, fetch_json
from trust.federation_jws import STATUS_FORMAT, STATUS_TYPE, verify_document
from trust.federation_list import TrustList, parse_time

MAX_STATUS_BYTES = 64 * 1024
SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class StatusAnswer:
    document: dict[str, Any]
    found: bool
    licence: dict[str, Any] | None
    seal: dict[str, Any] | None
    produced_at: datetime


class StatusRefused(InvalidInput):
    """An answer we cannot believe: unsigned, signed by another key, about something else."""


def query_status(trust_list: TrustList, key: str, now: datetime, peers: Peers) -> StatusAnswer:
    """Ask the issuing domain about the licence with this PDF SHA-256 or identifier."""
    nonce = secrets.token_hex(16)
    url = f"{trust_list.base_url}/pki/licence-status/{quote(key, safe='')}?nonce={nonce}"
    document = fetch_json(
        url, peers=peers, max_bytes=MAX_STATUS_BYTES, what="证照状态", field="licence-status"
    )
    return check_answer(document, trust_list, key, nonce, now)


def check_answer(
    document: Any, trust_list: TrustList, key: str, nonce: str, now: datetime
) -> StatusAnswer:
    if not verify_document(document, trust_list.signer, typ=STATUS_TYPE):
        raise _refused(
            "证照状态应答签名无效或非该域签发 / the status answer is not signed by the domain's "
            "pinned trust-list signer"
        )
    try:
        if document.get("format") != STATUS_FORMAT:
            raise _refused(f"证照状态格式不符 / format {document.get('format')!r}")
        if (document.get("domain") or {}).get("name") != trust_list.name:
            raise _refused("证照状态应答来自另一信任域 / the status answer names another domain")
        if document.get("query") != key or document.get("nonce") != nonce:
            raise _refused("证照状态应答不是对本次询问的回答 / the answer is not to this question")
        produced_at = parse_time(document.get("produced_at"), "produced_at")
        if not now - SKEW <= produced_at <= now + SKEW:
            raise _refused("证照状态应答时间不符 / the status answer was not produced just now")
        found = document.get("found") is True
        licence = document.get("licence") if found else None
        seal = document.get("seal") if found else None
        if found and not (isinstance(licence, dict) and isinstance(seal, dict)):
            raise _refused("证照状态应答不完整 / the status answer has no licence or seal")
    except (TypeError, AttributeError):
        raise _refused("证照状态应答格式错误 / the status answer is malformed") from None
    return StatusAnswer(document, found, licence, seal, produced_at)


def _refused(message: str) -> StatusRefused:
    return StatusRefused(message, field="licence-status")
