"""One error root for the whole service.

Domain code raises these with a *kind*; only ``api/`` turns a kind into an HTTP status or a CLI
exit code, once, in one table. ``message`` is safe to show to a client (Chinese first, English
alongside); ``cause`` is for logs only and never leaves the process.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorKind(str, Enum):
    INVALID = "invalid"  # the request is malformed or breaks a rule
    NOT_FOUND = "not-found"
    CONFLICT = "conflict"  # the state of an object forbids the action
    FORBIDDEN = "forbidden"  # authenticated, but not allowed
    UNAUTHENTICATED = "unauthenticated"
    TOO_LARGE = "too-large"
    UNAVAILABLE = "unavailable"  # a dependency (database, key store) is down


class ElicenceError(Exception):
    """Root of every error the domain raises on purpose."""

    kind: ErrorKind = ErrorKind.INVALID

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind | None = None,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
        cause: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        self.field = field
        self.extra = dict(extra or {})
        self.cause = cause


class InvalidInput(ElicenceError):
    kind = ErrorKind.INVALID


class NotFound(ElicenceError):
    kind = ErrorKind.NOT_FOUND


class Conflict(ElicenceError):
    kind = ErrorKind.CONFLICT


class Forbidden(ElicenceError):
    kind = ErrorKind.FORBIDDEN


class Unauthenticated(ElicenceError):
    kind = ErrorKind.UNAUTHENTICATED


class TooLarge(ElicenceError):
    kind = ErrorKind.TOO_LARGE


class Unavailable(ElicenceError):
    kind = ErrorKind.UNAVAILABLE
