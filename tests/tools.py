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
