"""The isolation workers' hex-string reader (``verify.hexstrings``) against pyHanko's own.

A hostile upload decides what the hex strings hold. Whatever it puts there — odd digit counts,
whitespace and NULs between digits, a comment, a stray byte, a ``>`` missing to the end of the
file, a string of megabytes — the fast reader must give pyHanko's value and leave the stream
where pyHanko leaves it, or raise pyHanko's error; a licence's verdict must not depend on which
reader ran. And the workers really use it, so the speed is where uploads are parsed.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfStreamError

from verify import hexstrings


def _both(data: bytes, at: int = 0) -> tuple[object, object]:
    answers = []
    for reader in (hexstrings._original, hexstrings.read_hex_string):
        stream = io.BytesIO(data)
        stream.seek(at)
        try:
            value = reader(stream)
            answers.append(
                ("value", type(value).__name__, bytes(value.original_bytes), stream.tell())
            )
        except PdfStreamError as exc:
            answers.append(("error", type(exc).__name__, str(exc)))
    return answers[0], answers[1]


CASES = [
    b"<>",
    b"<48656C6C6F>",
    b"<48656c6c6f> rest",
    b"<4 8 6\n5\r6C\t6C\x006F\x0c>",
    b"<486>",  # odd: a last digit stands for d0
    b"<FEFF00480069>",  # a UTF-16 text string, as pdf_string guesses it
    b"<EFBBBF48>",
    b"<4865 % a comment inside > the string\n6C6C>",  # pyHanko skips it
    b"<48G5>",  # a stray byte
    b"<48)65>",
    b"<4865",  # the file ends inside the string
    b"<",
    b"<48 65 ",
    b"<<48>>",
]


def test_pyhankos_reader_is_where_it_is_replaced() -> None:
    """A pyHanko release that moves the function leaves the workers on pyHanko's own reader;
    this says so instead of the speed going quietly."""
    assert hexstrings._original is not None
    assert hexstrings._original.__module__ == "pyhanko.pdf_utils.generic"


@pytest.mark.parametrize("data", CASES)
def test_same_value_or_same_error_as_pyhanko(data: bytes) -> None:
    original, fast = _both(data)
    assert fast == original


def test_a_string_longer_than_a_slice_and_one_ending_at_a_slice_boundary() -> None:
    digits = bytes(random.Random(7).choice(b"0123456789abcdef") for _ in range(3 * 64 * 1024))
    for data in (
        b"<" + digits + b">",
        b"<" + digits[: 64 * 1024 - 1] + b">",  # ">" is the last byte of the first slice
        b"<" + digits[: 64 * 1024] + b">",  # ">" is the first byte of the second slice
        b"<" + digits,  # no ">" anywhere: pyHanko's error, after several slices
        b"<" + digits + b"%c\n>",
    ):
        original, fast = _both(data)
        assert fast == original
    original, fast = _both(b"xx<" + digits[:10] + b">yy", at=2)
    assert fast == original and fast[3] == 14  # just past the ">" (at 13)


def test_random_strings_agree() -> None:
    rng = random.Random(21)
    alphabet = b"0123456789abcdefABCDEF \n\r\t\x00\x0c%>G)"
    for _ in range(500):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        original, fast = _both(b"<" + body + b">tail")
        assert fast == original, body


def test_the_isolation_workers_parse_with_it(tmp_path: Path) -> None:
    """A worker's initialiser installs the reader; the server process itself is left as it was."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from verify.isolation import Limits, _initialise

    assert generic.read_hex_string_from_stream is hexstrings._original
    with ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_initialise,
        initargs=(Limits(),),
    ) as pool:
        assert pool.submit(_reader_name).result() == "read_hex_string"


def _reader_name() -> str:
    return generic.read_hex_string_from_stream.__name__
