"""Where a department may ask us to post events, and the connection that honours it.

A subscription URL is an instruction from a department to make this server send requests; a
hostile department would point it at the platform's own network (the database, a metadata
service, an admin port on loopback). So a URL is accepted only when it is ``https``, carries no
userinfo, is at most 2,048 characters, and its host is, or resolves to, public unicast
addresses only — not loopback, private, shared, link-local, multicast, reserved or unspecified,
IPv4 or IPv6, an IPv4-mapped IPv6 address included (``trust.federation_http.forbidden``).

The rule is applied twice: when the subscription is made, and again at every delivery against
the address actually connected to (:class:`EndpointTransport` resolves the name itself for the
connection and checks each address before connecting), so a name that answered a public address
at subscription time and answers ``127.0.0.1`` later (DNS rebinding) never reaches it.

For tests and the demo only, ``ELICENCE_EVENTS_ALLOW_HTTP_LOOPBACK=1`` admits
``http://127.0.0.1:<port>`` — that exact host, with an explicit port — and nothing wider.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from core.errors import InvalidInput
from trust.federation_http import Resolver, forbidden, system_resolve

MAX_URL = 2048
LOOPBACK = "127.0.0.1"


def _refuse(why_zh: str, why_en: str) -> InvalidInput:
    return InvalidInput(f"订阅地址{why_zh} / the subscription URL {why_en}", field="url")


def _refuse_addresses(refused: list[str], why_zh: str, why_en: str) -> InvalidInput:
    error = _refuse(why_zh, why_en)
    error.extra["refused"] = refused
    return error


@dataclass(frozen=True)
class EndpointRule:
    """The address rule for subscription URLs; ``resolve`` is the system's resolver except in
    tests, which stand a name server in for it."""

    allow_http_loopback: bool = False
    resolve: Resolver = system_resolve

    def check_url(self, url: str) -> str:
        """``url`` when it is an acceptable endpoint; InvalidInput naming the problem else."""
        if len(url) > MAX_URL:
            raise _refuse(f"超过 {MAX_URL} 个字符", f"is longer than {MAX_URL} characters")
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
            raise _refuse("含空白或控制字符", "contains whitespace or control characters")
        parts = urlsplit(url)
        loopback = self.allow_http_loopback and parts.scheme == "http"
        if parts.scheme != "https" and not loopback:
            raise _refuse("须为 https", "must use https")
        if "@" in parts.netloc:
            raise _refuse("不得含用户名或密码", "must not carry a user name or password")
        if parts.fragment:
            raise _refuse("不得含片段 (#)", "must not carry a fragment (#)")
        host = parts.hostname or ""
        try:
            port = parts.port
        except ValueError:
            raise _refuse("端口无效", "has an invalid port") from None
        if not host:
            raise _refuse("缺少主机名", "has no host")
        if loopback:
            if host != LOOPBACK or port is None:
                raise _refuse(
                    "须为 https；http 仅可为 http://127.0.0.1:<端口>（测试与演示）",
                    "must use https; http only as http://127.0.0.1:<port> (tests and the demo)",
                )
            return url
        self.addresses(host, port or 443, strict=True)
        return url

    def addresses(self, host: str, port: int, *, strict: bool = False) -> list[str]:
        """The addresses ``host`` stands for, every one of them allowed; InvalidInput else."""
        try:
            found = [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            try:
                found = list(self.resolve(host, port))
            except (OSError, UnicodeError):
                found = []
            if not found:
                raise _refuse(f"的主机 {host} 无法解析", f"host {host} does not resolve") from None
        refused = [a for a in found if not self.allowed(a, strict=strict)]
        if refused:
            raise _refuse_addresses(
                refused,
                f"的主机 {host} 为本机、内网、链路本地、组播或保留地址",
                f"host {host} is or resolves to a loopback, private, link-local, multicast, "
                f"reserved or unspecified address ({', '.join(refused)})",
            )
        return found

    def allowed(self, address: str, *, strict: bool = False) -> bool:
        """Whether ``address`` may be connected to; ``strict`` ignores the loopback allowance
        (an https URL never names loopback, even in tests)."""
        if self.allow_http_loopback and not strict and address == LOOPBACK:
            return True
        try:
            return not forbidden(address)
        except ValueError:
            return False


_deadline = threading.local()  # when the post in hand on this thread must be over (monotonic)


@contextmanager
def total_deadline(seconds: float) -> Iterator[None]:
    """Every read and write of the connection this thread uses ends by ``seconds`` from now:
    the per-read timeout alone lets a receiver that drips one byte per timeout hold a post (and
    its lease) for hours."""
    _deadline.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _deadline.at = None


def _remaining(timeout: float | None) -> float | None:
    at: float | None = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the post took longer than its total deadline")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write is bounded by this thread's total deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _remaining(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, _remaining(timeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _CheckedBackend(httpcore.SyncBackend):
    """Connects only to addresses the rule allows, resolved for this very connection."""

    def __init__(self, rule: EndpointRule) -> None:
        self._rule = rule

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._rule.addresses(host, port)
        except InvalidInput as exc:
            refused = ", ".join(exc.extra.get("refused", ())) or "no address"
            raise httpcore.ConnectError(f"address refused: {host} -> {refused}") from None
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return _DeadlineStream(
                    super().connect_tcp(
                        address, port, _remaining(timeout), local_address, socket_options
                    )
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address for {host}")


class EndpointTransport(httpx.HTTPTransport):
    """httpx's transport (TLS still checks the URL's host name) with connections made by
    :class:`_CheckedBackend`; environment proxies are ignored."""

    def __init__(self, rule: EndpointRule, connections: int = 4) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=connections,
            network_backend=_CheckedBackend(rule),
        )
