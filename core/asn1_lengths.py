"""asn1crypto mistakes a definite length whose last octet is 0x80 for BER's indefinite length.

asn1crypto 1.5.1 (the latest release) decides that a parsed value was BER-encoded with an
indefinite length when the last byte of its header is 0x80 (``Sequence.dump``,
``SequenceOf.dump``, ``Choice.dump``), and then encodes it and everything under it again
(wbond/asn1crypto#249, open). A definite long-form length such as ``82 01 80`` (384 bytes) ends
in 0x80 too. The forced encoding parses every nested value, and a field left at its DEFAULT —
the hash algorithm of the ESS signing-certificate in every timestamp token — is then built as a
new value, which asn1crypto counts as a change. From then on each dump of any structure holding
it encodes the changed levels again, twice per level (``Asn1Value.dump`` reads ``contents``
twice): 2^depth encodings. A seal whose timestamp token, or a structure around it, had such a
length took 1–1.6 s instead of ~35 ms, whenever a length around the token (which varies with
its serial's and signature's sizes, and with the domain's certificates) landed on one: in one
demo domain in six, most of its seals.

:func:`install` makes those three ``dump`` methods read the header for what it is: when its
length octets are a definite long form, the stored header is dropped before asn1crypto's own
method runs, which then writes the same header again from the unchanged contents. A true
indefinite length still forces a DER re-encoding, as before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asn1crypto import core as asn1_core

_MARK = "_elicence_definite_lengths"
# The classes whose ``dump`` reads the last header byte (asn1crypto 1.5.1); ``Asn1Value`` and
# ``Primitive`` read it too, but there it only writes a header or one primitive again.
CLASSES = (asn1_core.Sequence, asn1_core.SequenceOf, asn1_core.Choice)


def indefinite(header: bytes) -> bool:
    """Whether the last length in ``header`` — one or more identifier and length pairs, an
    explicit tag's first — is the indefinite form (the single octet 0x80)."""
    i, last = 0, False
    while i < len(header):
        if header[i] & 0x1F == 0x1F:  # a high tag number: base-128 octets follow
            i += 1
            while i < len(header) and header[i] & 0x80:
                i += 1
        i += 1
        if i >= len(header):
            return False  # no length octet: not a header asn1crypto wrote or read
        length = header[i]
        i += 1
        last = length == 0x80
        if length > 0x80:
            i += length & 0x7F
    return last


def _reading_lengths_right(dump: Callable[..., bytes]) -> Callable[..., bytes]:
    @functools.wraps(dump)
    def reading(self: Any, force: bool = False) -> bytes:
        header = self._header
        if header is not None and header[-1:] == b"\x80" and not indefinite(header):
            self._header = None  # asn1crypto writes it again, unchanged, from the contents
        return dump(self, force)

    setattr(reading, _MARK, True)
    return reading


def install() -> None:
    """Once per process; imported with ``core``, so before anything seals or verifies."""
    for cls in CLASSES:
        dump = cls.__dict__["dump"]
        if not getattr(dump, _MARK, False):
            cls.dump = _reading_lengths_right(dump)
