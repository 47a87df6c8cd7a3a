"""Where verifications come from, without keeping the address: a keyed hash of it.

A run of forged codes from one counter, one script or one phone is worth a supervisor's look,
so each verification records its *source*. The client's address is personal data and is never
stored: the source is HMAC-SHA256 of the address under a secret of this trust domain (kept in
the data directory's secrets, made once), truncated to 96 bits. Equal addresses give equal
sources within the domain; without the secret, a source cannot be tested against a guessed
address (the IPv4 space is small enough to hash whole, so a plain hash would hide nothing).
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "src_"
_HEX = 24  # 96 bits: collisions among a domain's sources are negligible
MIN_KEY_BYTES = 32


class SourceKeyer:
    """Turns a client address into its keyed source (``src_`` and 24 hex digits)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError("the source key must hold at least 32 bytes")
        self._key = key

    def source_of(self, address: str | None) -> str | None:
        """The source of ``address`` (None when the server was not told one)."""
        if not address:
            return None
        digest = hmac.digest(self._key, address.strip().lower().encode(), hashlib.sha256)
        return PREFIX + digest.hex()[:_HEX]


def shortened(source: str) -> str:
    """How a page shows a source: enough to tell two apart at a glance."""
    if source.startswith(PREFIX):
        return source[: len(PREFIX) + 8] + "…"
    return source
