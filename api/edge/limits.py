"""Request limits at the edge, in one table: per-address and per-client rates (429 +
``Retry-After``), the body each route may send (413), and which writes must show a credential
before their body is read (401).

With ``ELICENCE_REDIS_URL`` the windows are shared by every worker (``core.shared_state``:
one Lua script per request over a sorted set in Redis), so N workers together give a client its
allowance once. Keys hold what the memory version keys on, pseudonymised: an address becomes
an HMAC under a key derived from the holder-session key (which every worker of a fleet holds
already, or its cookies would not open), a credential its SHA-256. When Redis
does not answer, each window falls back to the worker's own (fail open: public verification
keeps answering, each worker still limits); without Redis the windows are the worker's own and
the service runs as one node.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Protocol

from api.edge.holder_session import COOKIE, NOT_FOR_DEPARTMENTS, SIGN_IN_FIRST, load_key
from api.settings import Settings
from core.shared_state import SharedState, StoreUnavailable, connect

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
PUBLIC_PREFIXES = (
    "/api/v1/verify",
    "/v/",
    "/V/",
    "/verify",
    "/h/",
    "/pki/licence-status/",
    "/supervise/sign-in",  # a guessed API key costs a guess from the address's public budget
)
KIB = 1024
PKI_BODY = 16 * KIB  # an RFC 3161 TimeStampReq or RFC 6960 OCSPRequest is a few hundred bytes
FORM_BODY = 64 * KIB  # a page's form: a handful of short fields
MULTIPART_OVERHEAD = 64 * KIB  # part headers and boundaries around an uploaded file
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Writes under /api/v1 that anyone may send; every other one needs a credential.
PUBLIC_WRITES = frozenset({"/api/v1/verify"})
HOLDER_API = "/api/v1/holder/"
_BEARER = re.compile(rb"[Bb][Ee][Aa][Rr][Ee][Rr] +[A-Za-z0-9._~+/-]{1,4096}=*")
_ADDRESS_LABEL = b"elicence rate-window address"
DEPARTMENT_CREDENTIALS = "需要部门凭证 / department credentials required (Authorization: Bearer)"


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


class Window(Protocol):
    def hit(self, key: str) -> float | None: ...


class SharedWindow:
    """A window every worker shares (one round trip to the store per hit); while the store is
    down, the worker's own window answers instead, so limits fail open but still limit."""

    def __init__(self, name: str, rate: Rate, store: SharedState) -> None:
        self._name = name
        self._rate = rate
        self._store = store
        self.fallback = SlidingWindow(rate)

    def hit(self, key: str) -> float | None:
        try:
            return self._store.hit(f"rate:{self._name}:{key}", self._rate.count, self._rate.seconds)
        except StoreUnavailable:
            return self.fallback.hit(key)


@dataclass(frozen=True)
class Refusal:
    status: int
    detail: str
    retry_after: int | None = None
    field: str | None = None


@dataclass(frozen=True)
class BodyRule:
    """How many body bytes a route may send: ``other`` for most content, ``json`` when the
    body is JSON (or has no content type, which the framework also reads as JSON);
    ``json_scanned``: whether such a body is checked for nesting before the route reads it."""

    limit: int
    json_limit: int
    json_scanned: bool = True

    def for_content(self, is_json: bool) -> int:
        return self.json_limit if is_json else self.limit


def body_table(settings: Settings) -> tuple[tuple[re.Pattern[str], BodyRule], ...]:
    """The body limit of every route, first match wins; the last line is everything else."""
    upload = settings.max_upload_bytes
    json = settings.max_json_bytes
    return tuple(
        (re.compile(pattern), rule)
        for pattern, rule in (
            (r"/pki/(tsa|ocsp)", BodyRule(PKI_BODY, PKI_BODY, json_scanned=False)),
            # a PDF upload (multipart) or a scanned code as JSON
            (r"/(api/v1/)?verify", BodyRule(upload + MULTIPART_OVERHEAD, json)),
            # up to 1,000 licences in one request (convert: NDJSON or CSV, licences/legacy.py)
            (r"/api/v1/licences:(batch|import|convert)", BodyRule(upload, upload)),
            (r"/api/v1/seals/[^/]+/image", BodyRule(upload, json)),
            (r"/(me|dev-idp|oauth)/.*", BodyRule(FORM_BODY, FORM_BODY)),
            (r".*", BodyRule(json, json)),
        )
    )


def is_json(content_type: bytes | None) -> bool:
    """Whether the framework would read the body as JSON: no content type, ``application/json``
    or ``application/<anything>+json``."""
    if not content_type:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def has_holder_cookie(cookie: bytes | None) -> bool:
    if not cookie:
        return False
    name = COOKIE.encode() + b"="
    return any(
        part.strip().startswith(name) and len(part.strip()) > len(name)
        for part in cookie.split(b";")
    )


def credential_refusal(
    method: str, path: str, authorization: bytes | None, cookie: bytes | None
) -> Refusal | None:
    """A write under ``/api/v1`` without a well-formed credential, refused before its body is
    read: a department's ``Authorization: Bearer`` (or a holder link, also a bearer token), or
    on the holder's own API the session cookie. Whether the credential is valid is the route's
    business; this only spares the service reading bodies nobody may send."""
    if method not in WRITES or not path.startswith("/api/v1/") or path in PUBLIC_WRITES:
        return None
    if path.startswith(HOLDER_API):
        if has_holder_cookie(cookie):
            return None
        return Refusal(403, NOT_FOR_DEPARTMENTS) if authorization else Refusal(401, SIGN_IN_FIRST)
    if authorization and _BEARER.fullmatch(authorization.strip()):
        return None
    return Refusal(401, DEPARTMENT_CREDENTIALS)


def too_large(limit: int) -> Refusal:
    return Refusal(413, f"请求体超过 {limit} 字节 / request body larger than {limit} bytes")


def too_deep(depth: int) -> Refusal:
    return Refusal(
        422,
        f"JSON 嵌套超过 {depth} 层 / JSON nested deeper than {depth} levels",
        field="body",
    )


class EdgeLimits:
    """The limits every request meets before routing (``api.edge.middleware`` answers a refusal with a
    problem+json): a declared body over the route's limit, a write without a credential, then
    the per-address rate on the public, PKI and statistics routes, or the per-client rate on
    authenticated API calls. The body's actual bytes are counted as they are read
    (``api.edge.bodies``)."""

    def __init__(self, settings: Settings, shared: SharedState | None = None) -> None:
        if shared is None and settings.redis_url:
            shared = connect(settings.redis_url)
        self.shared = shared if shared is not None and shared.kind != "memory" else None
        # In Redis an address is keyed by an HMAC under a fleet-wide secret: the IPv4 space is
        # small enough to hash whole, so a plain hash would hide nothing.
        self._address_key = (
            hmac.new(load_key(settings.data_dir), _ADDRESS_LABEL, hashlib.sha256).digest()
            if self.shared is not None
            else None
        )

        def window(name: str, text: str) -> Window:
            rate = Rate.parse(text)
            return SharedWindow(name, rate, self.shared) if self.shared else SlidingWindow(rate)

        self.public = window("public", settings.public_rate_limit)
        self.clients = window("client", settings.client_rate_limit)
        # Each timestamp and OCSP response is a signature and an audit entry; statistics
        # pages aggregate whole tables. Each has its own per-address window.
        self.per_address: tuple[tuple[tuple[str, ...], Window], ...] = (
            (("/pki/tsa",), window("tsa", settings.tsa_rate_limit)),
            (("/pki/ocsp",), window("ocsp", settings.ocsp_rate_limit)),
            (
                ("/statistics/", "/api/v1/statistics/"),
                window("statistics", settings.statistics_rate_limit),
            ),
            (PUBLIC_PREFIXES, self.public),
        )
        self.bodies = body_table(settings)
        self.max_json_depth = settings.max_json_depth

    def _address(self, address: str) -> str:
        if self._address_key is None:
            return address
        return hmac.new(self._address_key, address.encode(), hashlib.sha256).hexdigest()[:32]

    def body_rule(self, path: str) -> BodyRule:
        for pattern, rule in self.bodies:
            if pattern.fullmatch(path):
                return rule
        raise AssertionError("the last body rule matches every path")  # pragma: no cover

    def refuse(
        self,
        method: str,
        path: str,
        *,
        length: bytes | None,
        limit: int,
        authorization: bytes | None,
        cookie: bytes | None,
        address: str,
    ) -> Refusal | None:
        if length is not None and (not length.isdigit() or int(length) > limit):
            return too_large(limit)
        refusal = credential_refusal(method, path, authorization, cookie)
        if refusal is not None:
            return refusal
        retry: float | None = None
        for prefixes, window in self.per_address:
            if path.startswith(prefixes):
                retry = window.hit(self._address(address))
                break
        else:
            if path.startswith("/api/") and authorization:
                token = authorization.decode("latin-1").encode()
                retry = self.clients.hit(hashlib.sha256(token).hexdigest()[:32])
        if retry is None:
            return None
        return Refusal(
            429, "请求过于频繁，请稍后再试 / too many requests, retry later", math.ceil(retry)
        )
