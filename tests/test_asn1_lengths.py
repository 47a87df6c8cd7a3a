"""A definite length ending in 0x80 is read as definite (core/asn1_lengths.py): a timestamp token
inside a structure of such a length dumps as the bytes it was read from, without being parsed
and encoded again; a BER indefinite length is still re-encoded as DER."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asn1crypto import cms, tsp
from asn1crypto import core as asn1_core

import core  # noqa: F401 - importing it installs the correction under test
from core.asn1_lengths import indefinite
from tests.security.support import tsa_unit
from trust.tsa_der import tlv

PAD_TYPE = "1.3.6.1.4.1.99999.21"  # an attribute type no CMS class knows: its values stay Any


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"\x30\x80", True),  # SEQUENCE, indefinite
        (b"\x30\x81\x80", False),  # 128 bytes, long form
        (b"\x30\x82\x01\x80", False),  # 384 bytes
        (b"\x30\x83\x01\x00\x80", False),
        (b"\xa0\x82\x01\x84\x30\x82\x01\x80", False),  # explicit [0] around a definite SEQUENCE
        (b"\xa0\x80\x30\x80", True),  # explicit [0] around an indefinite SEQUENCE
        (b"\x9f\x81\x00\x80", True),  # a high tag number, then indefinite
        (b"\x9f\x81\x00\x81\x80", False),
        (b"\x30\x7f", False),
        (b"\x30", False),  # no length octet: not a header
        (b"\x9f\x81", False),
    ],
)
def test_the_length_octets_decide_not_the_last_byte(header: bytes, expected: bool) -> None:
    assert indefinite(header) is expected


def _token() -> cms.ContentInfo:
    unit, _ = tsa_unit()
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": bytes(range(32)),
            },
            "nonce": 0x0123_4567_89AB_CDEF,
            "cert_req": True,
        }
    )
    token: cms.ContentInfo = unit.respond(request)["time_stamp_token"]
    return token


def _attribute(kind: str, value_der: bytes) -> bytes:
    return tlv(0x30, bytes(cms.CMSAttributeType(kind).dump()) + tlv(0x31, value_der))


def _attributes_of_length(token_der: bytes | None, low_byte: int) -> bytes:
    """A SET OF attributes — the seal's timestamp token (if any) and a padding attribute —
    whose contents' length is long form and ends in ``low_byte``."""
    token = [] if token_der is None else [_attribute("signature_time_stamp_token", token_der)]
    for pad in range(1, 600):
        members = sorted([*token, _attribute(PAD_TYPE, tlv(0x04, bytes(pad)))])
        der = tlv(0x31, b"".join(members))
        size = len(der) - 4  # 31 82 hi lo
        if der[1] == 0x82 and size & 0xFF == low_byte:
            return der
    raise AssertionError("no padding gives that length")


@pytest.fixture
def encodings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every header asn1crypto encodes while the test runs: one per value it re-encodes."""
    seen: list[Any] = []
    original = asn1_core._dump_header

    def counting(*args: Any) -> bytes:
        seen.append(args[:3])
        return original(*args)

    monkeypatch.setattr(asn1_core, "_dump_header", counting)
    yield seen


def test_a_token_under_a_length_ending_in_0x80_is_not_encoded_again(
    encodings: list[Any],
) -> None:
    token_der = bytes(_token().dump())
    der = _attributes_of_length(token_der, 0x80)
    attributes = cms.CMSAttributes.load(der)
    assert der[:2] == b"\x31\x82" and der[3] == 0x80  # the case: a SET, 31 82 xx 80

    stamped = [a for a in attributes if a["type"].native == "signature_time_stamp_token"]
    encodings.clear()
    # pyHanko dumps the attributes several times as it nests them in the SignerInfo.
    dumps = [bytes(attributes.dump()) for _ in range(4)]

    assert dumps == [der] * 4
    # Only the outer header is written again, once a dump. Before the correction the token was
    # parsed, its ESS certificate's DEFAULT hash algorithm built as a new value, and from then
    # on every level above it encoded twice a dump: ~550,000 headers for these four dumps.
    assert len(encodings) <= 4, f"{len(encodings)} values encoded again"
    assert [bytes(a["values"][0].dump()) for a in stamped] == [token_der]
    holder = cms.CMSAttributes(list(attributes))  # a structure built around them, as pyHanko's
    assert bytes(holder.dump()) == der


def test_an_indefinite_length_is_still_written_as_der() -> None:
    definite = _attributes_of_length(None, 0x80)
    ber = b"\x31\x80" + definite[4:] + b"\x00\x00"  # the same members, indefinite length

    parsed = cms.CMSAttributes.load(ber)
    assert parsed.native == cms.CMSAttributes.load(definite).native
    assert bytes(parsed.dump()) == definite
