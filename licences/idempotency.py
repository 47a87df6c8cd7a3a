"""Idempotency-Key: a write sent twice (a retry after a timeout, a crash, a lost response) has
its effect once, and the second answer is the first one.

A key is remembered per department, per *scope* (the route: ``issue``, ``suspend``, ``batch#17``
...) and per key, with the SHA-256 of the request it came with. The record is written in the
same transaction as the effect, so a crash before commit leaves neither and a crash after leaves
both; a concurrent twin loses on the primary key and replays the winner's result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.db import reading, transaction
from core.errors import Conflict, InvalidInput
from licences.models import IdempotencyRecord

T = TypeVar("T")

MAX_KEY = 128
MAX_SCOPE = 32


def fingerprint(body: Any) -> str:
    """SHA-256 of a canonical JSON form: the same request always has the same fingerprint."""

    def default(value: object) -> str:
        if isinstance(value, date | datetime):
            return value.isoformat()
        raise TypeError(f"not JSON: {type(value).__name__}")

    text = json.dumps(body, sort_keys=True, ensure_ascii=False, default=default)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class IdempotencyKey:
    """One write's key: who sent it, on which route, and a fingerprint of what was sent."""

    department_code: str
    scope: str
    key: str
    request_sha256: str

    def __post_init__(self) -> None:
        key = self.key
        if not 1 <= len(key) <= MAX_KEY or not all(33 <= ord(c) < 127 for c in key):
            raise InvalidInput(
                f"幂等键须为 1-{MAX_KEY} 个可见 ASCII 字符 / Idempotency-Key must be 1-{MAX_KEY} "
                "visible ASCII characters",
                field="Idempotency-Key",
            )
        if not 1 <= len(self.scope) <= MAX_SCOPE:
            raise ValueError(f"scope must be 1-{MAX_SCOPE} characters")

    @classmethod
    def of(
        cls, department_code: str | None, scope: str, key: str | None, body: Any
    ) -> IdempotencyKey | None:
        """None when no key was sent (or for the operator, who has no department to scope by)."""
        if key is None or department_code is None:
            return None
        return cls(department_code, scope, key, fingerprint(body))


def replay(session: Session, key: IdempotencyKey | None) -> str | None:
    """What the first request with this key produced, or None if there was none. The same key
    with another request is refused: silently answering with the first result would hide the
    caller's bug and lose their second request."""
    if key is None:
        return None
    record = session.get(IdempotencyRecord, (key.department_code, key.scope, key.key))
    if record is None:
        return None
    if record.request_sha256 != key.request_sha256:
        raise Conflict(
            "同一幂等键已用于不同的请求 / this Idempotency-Key was used with a different request",
            field="Idempotency-Key",
        )
    return record.identifier


def remember(session: Session, key: IdempotencyKey | None, result: str, at: datetime) -> None:
    """Record the result in the caller's transaction (call it in the same one as the effect)."""
    if key is None:
        return
    session.add(
        IdempotencyRecord(
            department_code=key.department_code,
            scope=key.scope,
            key=key.key,
            request_sha256=key.request_sha256,
            identifier=result,
            created_at=at,
        )
    )


def once(
    engine: Engine,
    key: IdempotencyKey | None,
    now: Callable[[], datetime],
    write: Callable[[Session], str],
    load: Callable[[Session, str], T],
) -> tuple[T, bool]:
    """Run ``write`` (which returns a reference to what it produced) in one transaction with
    the key's record, unless the key was already used; ``load`` turns the reference into the
    answer. Returns (answer, replayed)."""
    try:
        with transaction(engine) as session:
            done = replay(session, key)
            if done is not None:
                return load(session, done), True
            result = write(session)
            remember(session, key, result, now())
            answer = load(session, result)
        return answer, False
    except IntegrityError:
        # A concurrent twin with the same key committed first: answer as it did.
        with reading(engine) as session:
            done = replay(session, key)
            if done is None:
                raise
            return load(session, done), True
