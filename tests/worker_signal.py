"""A verification worker that says when it starts validating, for tests that kill it then.

``announcing(directory)`` stands in for ``verify.isolation.inspect_and_examine`` (the task an
upload sends to a worker). In the worker it wraps ``verify.signature.examine_parsed``, which the
real task calls once the structure inspection has passed, so that entering it creates the file
``<directory>/<worker pid>``; then it runs the real task. A test that sees the file knows the
worker is inside signature validation: no guess from CPU time or the clock.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import verify.signature as signature
from verify.isolation import inspect_and_examine

_real_examine_parsed = signature.examine_parsed


def announcing(directory: Path) -> Any:
    """The task to put in place of ``inspect_and_examine`` (picklable: it runs in a worker)."""
    return functools.partial(_announced_task, str(directory))


def _announced_task(directory: str, data: bytes, limits: Any, **kwargs: Any) -> Any:
    def examine_parsed(*args: Any, **kw: Any) -> Any:
        Path(directory, str(os.getpid())).touch()
        return _real_examine_parsed(*args, **kw)

    signature.examine_parsed = examine_parsed
    try:
        return inspect_and_examine(data, limits, **kwargs)
    finally:
        signature.examine_parsed = _real_examine_parsed
