"""Request limits at the edge: per-address and per-client rates (429 + Retry-After), body size.

Counters live in the worker's memory: with N workers a client gets up to N times the rate.
That is the documented trade-off until a shared store (Redis) is wired in.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
PUBLIC_PREFIXES = ("/api/v1/verify", "/v/", "/V/", "/verify", "/h/", "/pki/licence-status/")
BODY_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour|day)\s*", text)
        if match is None or int(match.group(1)) < 1:
            raise ValueError(f"rate must look like '60/minute', got {text!r}")
        return cls(int(match.group(1)), _UNITS[match.group(2)])


class SlidingWindow:
    """Remembers each key's hits within the window; refuses the hit that would exceed the rate."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = Lock()

    def hit(self, key: str) -> float | None:
        """None when allowed; otherwise the seconds until the next hit would be."""
        now = self._clock()
        horizon = now - self._rate.seconds
        with self._lock:
            if len(self._hits) > 50_000:
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > horizon}
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= horizon:
                hits.popleft()
            if len(hits) >= self._rate.count:
                return max(hits[0] - horizon, 0.001)
            hits.append(now)
            return None


@dataclass(frozen=True)
class Refusal:
    status: int
    detail: str
    retry_after: int | None = None


class EdgeLimits:
    """The limits every request meets before routing (``api.edge`` answers a refusal with a
    problem+json): a declared body larger than the upload limit, then the per-address rate on the
    public routes or the per-client rate on authenticated API calls."""

    def __init__(self, *, public_rate: str, client_rate: str, max_body: int) -> None:
        self.public = SlidingWindow(Rate.parse(public_rate))
        self.clients = SlidingWindow(Rate.parse(client_rate))
        self.max_body = max_body

    def refuse(
        self, path: str, *, length: bytes | None, authorization: bytes | None, address: str
    ) -> Refusal | None:
        if length is not None and (
            not length.isdigit() or int(length) > self.max_body + BODY_OVERHEAD
        ):
            return Refusal(
                413,
                f"请求体超过 {self.max_body} 字节 / request body larger than {self.max_body} bytes",
            )
        retry: float | None = None
        if path.startswith(PUBLIC_PREFIXES):
            retry = self.public.hit(address)
        elif path.startswith("/api/") and authorization:
            token = authorization.decode("latin-1").encode()
            retry = self.clients.hit(hashlib.sha256(token).hexdigest()[:32])
        if retry is None:
            return None
        return Refusal(
            429, "请求过于频繁，请稍后再试 / too many requests, retry later", math.ceil(retry)
        )
