"""ZIP archives written byte by byte, for the hostile-package tests: what ``zipfile`` will not
write (lying sizes, encryption flags, hidden bytes, overlapping entries) is written here."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

STORED, DEFLATED = 0, 8


@dataclass
class Raw:
    """One entry as it will be written: ``payload`` is the bytes stored (already compressed when
    ``method`` is DEFLATED); ``size`` and ``crc`` are what the headers claim."""

    name: bytes
    payload: bytes
    size: int
    crc: int
    method: int = DEFLATED
    flags: int = 0
    made_by: int = 20
    external: int = 0
    local_name: bytes | None = None  # a local header naming something else
    offset: int | None = None  # a central record pointing elsewhere


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def entry(name: str | bytes, data: bytes, method: int = DEFLATED, **kw: object) -> Raw:
    raw = name.encode() if isinstance(name, str) else name
    payload = deflate(data) if method == DEFLATED else data
    return Raw(raw, payload, len(data), zlib.crc32(data), method, **kw)  # type: ignore[arg-type]


def zeros_entry(name: str, size: int, chunk: int = 1 << 20) -> Raw:
    """An entry of ``size`` zero bytes, deflated in pieces (a gigabyte is about a megabyte
    compressed and never held in memory)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block, crc, parts, left = bytes(chunk), 0, [], size
    while left:
        piece = block if left >= chunk else bytes(left)
        parts.append(compressor.compress(piece))
        crc = zlib.crc32(piece, crc)
        left -= len(piece)
    parts.append(compressor.flush())
    return Raw(name.encode(), b"".join(parts), size, crc)


def build(
    entries: Iterable[Raw],
    *,
    prefix: bytes = b"",
    gap: bytes = b"",
    suffix: bytes = b"",
    count: int | None = None,
    cd_shift: int = 0,
) -> bytes:
    """Local headers and data, then the central directory and the end record. ``prefix`` goes
    before the first entry, ``gap`` between the data and the central directory, ``suffix``
    after the end record; ``count`` and ``cd_shift`` falsify the end record's claims."""
    body = bytearray(prefix)
    records = bytearray()
    items = list(entries)
    for item in items:
        at = len(body)
        local_name = item.name if item.local_name is None else item.local_name
        body += b"PK\x03\x04" + struct.pack(
            "<5H3I2H",
            20,
            item.flags,
            item.method,
            0,
            0x21,
            item.crc,
            len(item.payload),
            item.size,
            len(local_name),
            0,
        )
        body += local_name + item.payload
        records += b"PK\x01\x02" + struct.pack(
            "<6H3I5H2I",
            item.made_by,
            20,
            item.flags,
            item.method,
            0,
            0x21,
            item.crc,
            len(item.payload),
            item.size,
            len(item.name),
            0,
            0,
            0,
            0,
            item.external,
            at if item.offset is None else item.offset,
        )
        records += item.name
    body += gap
    cd_offset = len(body)
    total = len(items) if count is None else count
    end = b"PK\x05\x06" + struct.pack(
        "<4H2IH", 0, 0, total, total, len(records), cd_offset + cd_shift, 0
    )
    return bytes(body + records + end + suffix)
