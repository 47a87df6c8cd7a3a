"""What a test needs from outside the Python code under test: command-line tools, optional Python
modules, services (PostgreSQL, OpenBao, SoftHSM, Chromium).

One rule for all of them, in ``missing``: without ``ELICENCE_STRICT_TESTS=1`` a test whose tool
or service is missing is skipped (a developer's laptop); with it the test fails (CI must not pass
by skipping). No test may skip on its own terms: each goes through these helpers.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import NoReturn

import pytest

STRICT = os.environ.get("ELICENCE_STRICT_TESTS") == "1"


def missing(reason: str) -> NoReturn:
    """Something the test needs is not there: skip it, or fail it in strict mode."""
    if STRICT:
        pytest.fail(f"{reason} (ELICENCE_STRICT_TESTS=1)")
    pytest.skip(reason)


def require(tool: str) -> str:
    """The path of the command-line tool ``tool`` (e.g. ``pdftotext``, ``qpdf``, ``openssl``)."""
    path = shutil.which(tool)
    if path is None:
        missing(f"required tool {tool!r} is not installed")
    return path


def require_module(name: str) -> ModuleType:
    """An optional Python module (a dev dependency such as ``zxingcpp`` or ``playwright``)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"Python module {name} is not installed (pip install -e '.[dev]')")


@contextmanager
def requiring(what: str, *errors: type[BaseException]) -> Iterator[None]:
    """A service started or reached in the block: one of ``errors`` means it is not available
    (PostgreSQL not listening, a back end's binary not installed), and the rule applies."""
    try:
        yield
    except errors as exc:
        missing(f"{what} is not available: {exc}")


def gmssl_checker(x: int, y: int) -> object:
    """gmssl's SM2 verifier for the public point (x, y), the independent implementation the SM2
    tests check against. Its constructor ``lstrip("04")``s a key text that starts with "04" to
    drop an uncompressed-point prefix, and so also eats the leading digits of an x coordinate
    that begins with 04 (one key in 256): its point arithmetic then fails on a short key. The
    key is set after construction, as the 128 hex digits gmssl reads."""
    checker = require_module("gmssl.sm2").CryptSM2(private_key=None, public_key="", asn1=True)
    checker.public_key = f"{x:064x}{y:064x}"
    return checker
