"""A faster reader of PDF hex strings for pyHanko, with pyHanko's own answers.

pyHanko reads a hex string (``<...>``) one byte at a time through a generator. A sealed licence
carries its CMS signatures as hex strings in the signature dictionaries' ``/Contents`` — tens of
thousands of digits for the seal and as many for each document timestamp — so that loop was
three quarters of parsing an upload (~7 of ~9 ms a B-LTA licence, measured here) and a sixth of
a whole PDF verification. This reader takes the digits up to the closing ``>`` in slices.

It answers only where the answer is plainly the same as pyHanko's: digits and PDF whitespace up
to a ``>``. Anything else — a comment inside the string, a byte that is neither, a stream that
ends before the ``>`` — rewinds the stream and hands it to pyHanko's own reader, so every error
(and every oddity pyHanko tolerates) stays exactly pyHanko's. ``tests/test_verify_hexstrings.py``
compares the two on well-formed and hostile strings.

Installed in the isolation workers only (``verify.isolation``), which is where uploads are
parsed; a process that never calls :func:`install` runs pyHanko unchanged.
"""

from __future__ import annotations

import binascii
from typing import Any

from pyhanko.pdf_utils import generic

_WHITESPACE = b" \n\r\t\f\x00"  # pyhanko.pdf_utils.misc.PDF_WHITESPACE
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_CHUNK = 64 * 1024

# None if a pyHanko release renames it: then nothing is replaced (and the test fails).
_original: Any = getattr(generic, "read_hex_string_from_stream", None)


def read_hex_string(stream: Any) -> Any:
    """``generic.read_hex_string_from_stream``: the stream is at the ``<``."""
    start = stream.tell()
    stream.read(1)
    pieces: list[bytes] = []
    while True:
        chunk = stream.read(_CHUNK)
        end = chunk.find(b">")
        if end < 0:
            if len(chunk) < _CHUNK:  # the stream ended inside the string: pyHanko's error
                return _fallback(stream, start)
            pieces.append(chunk)
            continue
        pieces.append(chunk[:end])
        stream.seek(end + 1 - len(chunk), 1)  # just past the ">"
        break
    digits = b"".join(pieces).translate(None, _WHITESPACE)
    if digits.translate(None, _HEX_DIGITS):  # a comment or a stray byte: pyHanko decides
        return _fallback(stream, start)
    if len(digits) % 2:
        digits += b"0"
    return generic.pdf_string(binascii.unhexlify(digits))


def _fallback(stream: Any, start: int) -> Any:
    stream.seek(start)
    return _original(stream)


def install() -> None:
    """pyHanko's object reader uses this module's reader from now on, in this process."""
    if _original is not None:
        generic.read_hex_string_from_stream = read_hex_string
