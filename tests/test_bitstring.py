"""The status list's bits (licences.bitstring): what a hostile list file would try first — a GZIP
bomb, text that is not the multibase form, padding, truncation, trailing bytes, a list too
short to hide an index — each refused with BitstringError; then the two-bit layout at its
edges, with every expectation written out by hand from docs/status-list.md."""

from __future__ import annotations

import base64
import gzip
import tracemalloc
import zlib

import pytest

from licences.bitstring import (
    ENTRY_OF_STATUS,
    MAX_ENTRIES,
    MIN_ENTRIES,
    BitstringError,
    EntryStatus,
    build,
    decode,
    encode,
    entry,
    list_length,
)
from licences.models import LicenceStatus

MIB = 1024 * 1024
SMALLEST = 4_194_304  # 2**22 entries, docs/status-list.md
LARGEST = 67_108_864  # 2**26 entries: what a verifier accepts at most
# The W3C Bitstring Status List v1.0 example encodedList (without its multibase prefix):
# 16 KiB of zero bytes, a list of 131,072 one-bit entries.
W3C_EXAMPLE = "H4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def packed(raw: bytes, level: int = 1) -> bytes:
    return gzip.compress(raw, compresslevel=level, mtime=0)


def text_of(data: bytes) -> str:
    return "u" + b64url(data)


# --- what a hostile list file would try -----------------------------------------------------


def test_a_gzip_bomb_is_refused_before_it_inflates_past_the_bound() -> None:
    """256 MiB of zeros compress to ~350 KB: a verifier must stop at the 16 MiB bound (its
    output buffer at most doubles past it), not fill its memory with the whole list first."""
    bomb = text_of(packed(bytes(256 * MIB), level=9))
    assert len(bomb) < 400_000
    tracemalloc.start()
    try:
        with pytest.raises(BitstringError, match="larger than"):
            decode(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * MIB, f"inflated {peak / MIB:.1f} MiB for a 16 MiB bound"


def test_a_list_just_past_the_bound_is_refused_and_one_at_it_is_read() -> None:
    at_bound = bytes(LARGEST * 2 // 8)
    assert len(decode(text_of(packed(at_bound)))) == 16 * MIB
    with pytest.raises(BitstringError, match="larger than"):
        decode(text_of(packed(at_bound + b"\x00")))
    with pytest.raises(BitstringError, match="larger than"):  # a verifier's tighter bound
        decode(text_of(packed(bytes(SMALLEST // 2))), max_entries=SMALLEST - 4)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "multibase"),
        ("H4sIAAAAAAAAA", "multibase"),  # base64url without the multibase prefix
        ("z" + W3C_EXAMPLE, "multibase"),  # base58btc prefix
        ("U" + W3C_EXAMPLE, "multibase"),  # upper case is base64url *padded* in multibase
        ("u", "unpadded"),
        ("u" + W3C_EXAMPLE + "=", "unpadded"),
        ("u" + W3C_EXAMPLE[:-1] + "==", "unpadded"),
        ("uA", "unpadded"),  # one character left over is no whole byte
        ("u" + b64url(zlib.compress(bytes(SMALLEST // 4))), "GZIP"),  # zlib framing, not GZIP
        ("u" + b64url(bytes(SMALLEST // 4)), "GZIP"),  # not compressed at all
    ],
    ids=[
        "empty",
        "no-prefix",
        "base58-prefix",
        "padded-prefix",
        "prefix-only",
        "padded",
        "padded-twice",
        "lone-char",
        "zlib",
        "raw",
    ],
)
def test_text_that_is_not_the_multibase_gzip_form_is_refused(text: str, why: str) -> None:
    with pytest.raises(BitstringError, match=why):
        decode(text)


def test_a_truncated_list_is_refused() -> None:
    whole = packed(bytes(SMALLEST // 4))
    for cut in (4, 8, len(whole) // 2):
        with pytest.raises(BitstringError, match=r"truncated|not GZIP"):
            decode(text_of(whole[:-cut]))


def test_trailing_bytes_after_the_list_are_refused() -> None:
    whole = packed(bytes(SMALLEST // 4))
    for tail in (b"\x00", b"junk", packed(b"second member")):
        with pytest.raises(BitstringError, match="trailing"):
            decode(text_of(whole + tail))


def test_a_list_too_short_to_hide_an_index_is_refused() -> None:
    """The specification's own example (131,072 one-bit entries) is a valid Bitstring Status
    List, but not one this domain publishes: fewer than 2**22 entries would let an index say
    something about its holder."""
    with pytest.raises(BitstringError, match="shorter"):
        decode("u" + W3C_EXAMPLE)
    with pytest.raises(BitstringError, match="shorter"):
        decode(text_of(packed(bytes(SMALLEST // 4 - 1))))


def test_build_refuses_entries_outside_the_list() -> None:
    with pytest.raises(BitstringError, match="outside"):
        build([(SMALLEST, EntryStatus.REVOKED)], SMALLEST)
    with pytest.raises(BitstringError, match="outside"):
        build([(-1, EntryStatus.REVOKED)], SMALLEST)
    with pytest.raises(BitstringError, match="multiple of 4"):
        build([], SMALLEST + 2)


def test_entry_refuses_an_index_outside_the_list() -> None:
    raw = build([], SMALLEST)
    for index in (SMALLEST, SMALLEST * 2, -1):
        with pytest.raises(IndexError):
            entry(raw, index)


# --- the layout ------------------------------------------------------------------------------


def test_the_bounds_are_those_the_contract_names() -> None:
    assert (MIN_ENTRIES, MAX_ENTRIES) == (SMALLEST, LARGEST)


def test_entries_sit_two_bits_each_from_the_most_significant_bit() -> None:
    """Entry i is bits 2i and 2i+1 from the first byte's most significant bit, big-endian:
    entries 0..3 = 2, 1, 0, 3 make the byte 10 01 00 11 = 0x93."""
    raw = build(
        [
            (0, EntryStatus.SUSPENDED),
            (1, EntryStatus.REVOKED),
            (3, EntryStatus.SUPERSEDED),
            (5, EntryStatus.REVOKED),
        ],
        SMALLEST,
    )
    assert len(raw) == SMALLEST // 4
    assert raw[:2] == bytes([0b10_01_00_11, 0b00_01_00_00])
    assert raw[2:] == bytes(len(raw) - 2)


def test_entries_round_trip_at_both_ends_of_the_list() -> None:
    last = SMALLEST - 1
    given = {
        0: EntryStatus.SUSPENDED,
        1: EntryStatus.REVOKED,
        last - 1: EntryStatus.REVOKED,
        last: EntryStatus.SUPERSEDED,
    }
    text = encode(build(given.items(), SMALLEST))
    assert text.startswith("uH4sI")  # multibase base64url of a GZIP member
    raw = decode(text)
    assert raw[-1] == 0b00_00_01_11  # the last byte holds entries last-3 .. last
    for index in (0, 1, 2, 3, last - 2, last - 1, last, SMALLEST // 2):
        assert entry(raw, index) == given.get(index, EntryStatus.VALID), index


def test_the_same_list_encodes_to_the_same_text() -> None:
    """GZIP's timestamp is zero, so an unchanged list is byte for byte the same document."""
    raw = build([(7, EntryStatus.REVOKED)], SMALLEST)
    assert encode(raw) == encode(bytes(raw))
    assert base64.urlsafe_b64decode(encode(raw)[1:] + "==")[4:8] == b"\x00\x00\x00\x00"


def test_a_list_is_a_power_of_two_never_below_the_smallest() -> None:
    assert list_length(None) == SMALLEST
    assert list_length(0) == SMALLEST
    assert list_length(SMALLEST - 1) == SMALLEST
    assert list_length(SMALLEST) == 8_388_608
    assert list_length(8_388_608) == 16_777_216


def test_each_status_is_published_as_the_contract_says() -> None:
    """docs/status-list.md: 0 valid (expiry comes from the QR's dates), 1 revoked or cancelled,
    2 suspended, 3 superseded or void."""
    expected = {
        "valid": 0,
        "expired": 0,
        "revoked": 1,
        "cancelled": 1,
        "suspended": 2,
        "superseded": 3,
        "void": 3,
    }
    assert {status.value: int(ENTRY_OF_STATUS[status]) for status in LicenceStatus} == expected
