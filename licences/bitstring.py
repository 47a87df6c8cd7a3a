"""The status list's bits: W3C Bitstring Status List v1.0 encoding, two bits an entry.

One list serves every licence of the domain. Each entry holds a 2-bit status (statusSize 2,
statusPurpose ``message``), so revoked, suspended and superseded licences are told apart
offline with one download instead of one list per purpose:

====  =========================================  ==================
bits  licence status                              offline answer
====  =========================================  ==================
0     valid (or expired: the QR carries the date) by the QR's dates
1     revoked 吊销, cancelled 注销                 FAILED / REVOKED
2     suspended 暂停                              FAILED / SUSPENDED
3     superseded 已变更, void 作废                 FAILED / SUPERSEDED
====  =========================================  ==================

Entry ``i`` is bits ``2i`` and ``2i+1`` counted from the most significant bit of the first byte
(the specification's "leftmost bit is index 0"), read as a big-endian two-bit number. The
encoded form is the multibase base64url (prefix ``u``, no padding) of the GZIP of the bytes.
Nothing here touches the database or a key: the publisher (``licences.status_list``), the
offline verifier and the tests all use these functions, and the browser verifier
(``api/pages/static/offline``) implements the same reading.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Iterable, Mapping
from enum import IntEnum

from licences.models import LicenceStatus

STATUS_SIZE = 2  # bits an entry
MIN_ENTRIES = 1 << 22  # 4,194,304 entries (1 MiB): a large list, so an index says nothing
MAX_ENTRIES = 1 << 26  # what a verifier accepts before it inflates anything (16 MiB)
MULTIBASE_BASE64URL = "u"


class EntryStatus(IntEnum):
    VALID = 0
    REVOKED = 1
    SUSPENDED = 2
    SUPERSEDED = 3

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    EntryStatus.VALID: "有效 / valid",
    EntryStatus.REVOKED: "已吊销或注销 / revoked or cancelled",
    EntryStatus.SUSPENDED: "已暂停 / suspended",
    EntryStatus.SUPERSEDED: "已变更或作废 / superseded or void",
}

# How each stored status is published. Expiry is not published: it is computed from the
# validity dates, which the signed QR payload carries.
ENTRY_OF_STATUS: Mapping[LicenceStatus, EntryStatus] = {
    LicenceStatus.VALID: EntryStatus.VALID,
    LicenceStatus.EXPIRED: EntryStatus.VALID,
    LicenceStatus.REVOKED: EntryStatus.REVOKED,
    LicenceStatus.CANCELLED: EntryStatus.REVOKED,
    LicenceStatus.SUSPENDED: EntryStatus.SUSPENDED,
    LicenceStatus.SUPERSEDED: EntryStatus.SUPERSEDED,
    LicenceStatus.VOID: EntryStatus.SUPERSEDED,
}


class BitstringError(ValueError):
    """An encoded list that is not one this module would have written, or is too large."""


def list_length(highest_index: int | None) -> int:
    """The number of entries a list holding ``highest_index`` has: a power of two, never below
    :data:`MIN_ENTRIES`. Fixed sizes mean the length changes rarely and says little."""
    needed = 0 if highest_index is None else highest_index + 1
    length = MIN_ENTRIES
    while length < needed:
        length *= 2
    return length


def build(entries: Iterable[tuple[int, EntryStatus]], length: int) -> bytes:
    """The raw list: ``length`` entries, all valid but those given."""
    if length % 4:
        raise BitstringError("length must be a multiple of 4 entries")
    data = bytearray(length * STATUS_SIZE // 8)
    for index, status in entries:
        if not 0 <= index < length:
            raise BitstringError(f"index {index} outside a list of {length}")
        bit = index * STATUS_SIZE
        shift = 8 - STATUS_SIZE - bit % 8
        data[bit // 8] = (data[bit // 8] & ~(0b11 << shift)) | (int(status) << shift)
    return bytes(data)


def entry(raw: bytes, index: int) -> EntryStatus:
    """The status at ``index``; IndexError when the list has no such entry."""
    if index < 0 or index >= len(raw) * 8 // STATUS_SIZE:
        raise IndexError(f"status index {index} outside a list of {len(raw) * 4} entries")
    bit = index * STATUS_SIZE
    shift = 8 - STATUS_SIZE - bit % 8
    return EntryStatus((raw[bit // 8] >> shift) & 0b11)


def encode(raw: bytes) -> str:
    """``encodedList``: multibase base64url, no padding, of the GZIP (mtime 0, so the same list
    always encodes to the same text)."""
    packed = gzip.compress(raw, compresslevel=9, mtime=0)
    return MULTIBASE_BASE64URL + base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode(text: str, *, max_entries: int = MAX_ENTRIES) -> bytes:
    """The raw list from ``encodedList``, inflated with a bound: a list that would inflate past
    ``max_entries`` is refused before it fills memory (a GZIP bomb is a small download)."""
    if not text.startswith(MULTIBASE_BASE64URL):
        raise BitstringError("encodedList is not multibase base64url (prefix u)")
    body = text[1:]
    if not body or len(body) % 4 == 1 or "=" in body:
        raise BitstringError("encodedList is not unpadded base64url")
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise BitstringError("encodedList is not base64url") from None
    limit = max_entries * STATUS_SIZE // 8
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # GZIP framing only
    try:
        raw = inflater.decompress(packed, limit + 1)
    except zlib.error as exc:
        raise BitstringError(f"encodedList is not GZIP: {exc}") from None
    if len(raw) > limit or inflater.unconsumed_tail:
        raise BitstringError(f"the list is larger than {max_entries} entries")
    if not inflater.eof or inflater.unused_data:
        raise BitstringError("encodedList is truncated or has trailing bytes")
    if len(raw) < MIN_ENTRIES * STATUS_SIZE // 8:
        raise BitstringError(f"the list is shorter than {MIN_ENTRIES} entries")
    return raw
