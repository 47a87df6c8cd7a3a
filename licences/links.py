"""The verification URL printed in every QR code.

Scheme and host are upper-cased (they are case-insensitive) and the route is ``/V/<CODE>`` with
an upper-case base32 code, so the whole URL fits QR alphanumeric mode, 5.5 bits a character
instead of 8, and the code stays small enough to scan from paper.

``<CODE>`` is the base32 text of a signed payload (``licences.payload``, a few hundred
characters). Licences issued before signed payloads carry a 24-character random code instead;
both forms are accepted, told apart by length.
"""

from __future__ import annotations

import base64
import secrets
from urllib.parse import urlsplit

CODE_BYTES = 15  # 120 bits, 24 base32 characters
LEGACY_MAX = 32  # random codes are at most this long; signed payloads are far longer
MAX_CODE = 1024
CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def new_verify_code() -> str:
    return base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode().rstrip("=")


def is_verify_code(text: str) -> bool:
    """Shaped like a code. Any letters and digits pass, so that a damaged payload reaches the
    payload decoder and is reported as malformed rather than as an unknown code."""
    return 16 <= len(text) <= MAX_CODE and set(text) <= CODE_CHARS


def is_random_code(code: str) -> bool:
    """A random code that only names a licence, looked up in the repository rather than
    verified by a signature: a purpose-stamped copy's (``licences.stamped``) and those of
    licences issued before QR payloads were signed. Signed payloads are far longer."""
    return len(code) <= LEGACY_MAX


def verify_url(base_url: str, code: str) -> str:
    parts = urlsplit(base_url.rstrip("/"))
    return f"{parts.scheme.upper()}://{parts.netloc.upper()}{parts.path}/V/{code}"


def code_from_text(text: str) -> str | None:
    """The verification code in a scanned QR text: a bare code or any URL ending in /v/<code>."""
    candidate = text.strip()
    if "/" in candidate:
        head, _, tail = candidate.rstrip("/").rpartition("/")
        if not head.upper().endswith("/V"):
            return None
        candidate = tail
    candidate = candidate.upper()
    return candidate if is_verify_code(candidate) else None
