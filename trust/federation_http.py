"""Bounded HTTP to other domains: trust lists, OCSP, licence-status answers.

Another domain's server is not ours: every request has a connect and a total read timeout,
follows no redirect (the pinned URL is the URL), ignores proxy settings of the environment, and
reads at most a fixed number of bytes, so a slow, hostile or broken peer costs at most a few
seconds and a few megabytes.

Nor may a peer's list turn this server into a probe of its own network: unless the operator
allows it (``ELICENCE_FEDERATION_ALLOW_PRIVATE_ADDRESSES``), every address a peer's host name
resolves to must be a public one — not loopback, link-local, private, shared, reserved,
multicast or unspecified, also when written as an IPv4-mapped IPv6 address. The check is made
at every fetch, not once when the domain is recognised, and the connection is then made to an
address checked at that moment (the name is resolved once for it, by :class:`Peers`), so a name
that answers a public address first and a private one later (DNS rebinding) never reaches the
private one.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from core.errors import InvalidInput, Unavailable

CONNECT_SECONDS = 5.0
READ_SECONDS = 10.0
USER_AGENT = "elicence-federation/1"
DEFAULT_PORTS = {"http": 80, "https": 443}

Resolver = Callable[[str, int], list[str]]  # host, port -> its addresses


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def forbidden(address: str) -> bool:
    """Whether ``address`` is not a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone id is not part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


@dataclass(frozen=True)
class Peers:
    """How this domain reaches the others: the address rule, the resolver, and (in tests) a
    transport that stands for the network."""

    allow_private: bool = False
    resolve: Resolver = system_resolve
    transport: httpx.BaseTransport | None = None

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``, every one of them public unless private ones are allowed."""
        try:
            found = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                found = list(self.resolve(host, port))
            except (OSError, UnicodeError):
                found = []
            if not found:
                raise Unavailable(
                    f"无法解析对方主机 / cannot resolve the peer host {host}"
                ) from None
        if not self.allow_private:
            refused = [address for address in found if forbidden(address)]
            if refused:
                raise InvalidInput(
                    f"对方主机 {host} 解析为本机、链路本地或内网地址，未获允许 / the peer host "
                    f"{host} resolves to a loopback, link-local or private address "
                    f"({', '.join(refused)}); refused unless "
                    "ELICENCE_FEDERATION_ALLOW_PRIVATE_ADDRESSES allows it",
                    field="url",
                )
        return found

    def check(self, url: str) -> None:
        """The address rule for ``url``'s host, before anything is sent."""
        if self.allow_private:
            return
        parts = urlsplit(url)
        self.addresses(parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme])


def check_url(url: str, field: str = "url") -> str:
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or len(url) > 512
    ):
        raise InvalidInput(
            f"须为 http(s) 网址 / {field} must be an http or https URL of at most 512 characters",
            field=field,
        )
    try:
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError:
        raise InvalidInput(f"网址端口无效 / {field} has an invalid port", field=field) from None
    return url


def fetch(
    method: str,
    url: str,
    *,
    peers: Peers,
    max_bytes: int,
    what: str,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    """The body and content type of a 200 answer; anything else is ``Unavailable`` naming
    ``what`` and the reason in one line (for the operator and the log, never for a public
    report); a forbidden address is ``InvalidInput``."""
    check_url(url)
    peers.check(url)
    timeout = httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS)
    try:
        with (
            httpx.Client(
                timeout=timeout,
                follow_redirects=False,
                transport=peers.transport or GuardedTransport(peers),
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
            ) as client,
            client.stream(method, url, content=content, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise _unavailable(what, url, f"HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise _unavailable(what, url, f"larger than {max_bytes} bytes")
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise _unavailable(what, url, f"larger than {max_bytes} bytes")
            return bytes(body), response.headers.get("content-type", "")
    except httpx.HTTPError as exc:
        raise _unavailable(what, url, type(exc).__name__) from None


def fetch_json(url: str, *, peers: Peers, max_bytes: int, what: str, field: str) -> Any:
    """A JSON object fetched with :func:`fetch`; anything else is ``InvalidInput``."""
    body, _ = fetch(
        "GET",
        url,
        peers=peers,
        max_bytes=max_bytes,
        what=what,
        headers={"Accept": "application/json"},
    )
    try:
        document = json.loads(body)
    except ValueError:
        raise InvalidInput(
            f"{what}不是JSON / the {_EN.get(what, what)} is not JSON", field=field
        ) from None
    if not isinstance(document, dict):
        raise InvalidInput(
            f"{what}不是JSON对象 / the {_EN.get(what, what)} is not a JSON object", field=field
        )
    return document


class _GuardedBackend(httpcore.SyncBackend):
    """Connects to a host only through addresses :meth:`Peers.addresses` returned (and
    checked) for this very connection."""

    def __init__(self, peers: Peers) -> None:
        self._peers = peers

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | None = None
        for address in self._peers.addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address for {host}")


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport (TLS still checks the host name of the URL), with connections
    made by :class:`_GuardedBackend`."""

    def __init__(self, peers: Peers) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=1,
            network_backend=_GuardedBackend(peers),
        )


def _unavailable(what: str, url: str, reason: str) -> Unavailable:
    return Unavailable(
        f"无法获取{what} / cannot fetch the {_EN.get(what, what)} from {url}: {reason}"
    )


_EN = {
    "信任列表": "trust list",
    "OCSP应答": "OCSP response",
    "证照状态": "licence status",
}
