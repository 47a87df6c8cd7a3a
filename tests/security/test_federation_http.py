"""Requests to other domains (``trust/federation_http.py``): only http(s) URLs, only public
addresses unless the operator allows private ones — checked at every fetch and again for the
very connection (DNS rebinding) — no redirects, bounded bodies, timeouts, and one-line reasons."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest

from core.errors import InvalidInput, Unavailable
from trust.federation_http import (
    CONNECT_SECONDS,
    READ_SECONDS,
    USER_AGENT,
    GuardedTransport,
    Peers,
    _GuardedBackend,
    check_url,
    fetch,
    fetch_json,
    forbidden,
    system_resolve,
)

PUBLIC = "93.184.216.34"


def public(host: str, port: int) -> list[str]:
    return [PUBLIC]


def private_message(host: str, addresses: str) -> str:
    return (
        f"对方主机 {host} 解析为本机、链路本地或内网地址，未获允许 / the peer host {host} "
        f"resolves to a loopback, link-local or private address ({addresses}); refused unless "
        "ELICENCE_FEDERATION_ALLOW_PRIVATE_ADDRESSES allows it"
    )


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "240.0.0.1", "224.0.1.1", "233.252.0.1", "192.0.2.1", "::1", "::",
        "fe80::1%eth0", "fc00::1", "ff0e::1", "2001:db8::1", "::ffff:127.0.0.1",
        "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    ],
)
def test_loopback_private_link_local_reserved_and_multicast_are_forbidden(address: str) -> None:
    assert forbidden(address) is True


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_unicast_addresses_are_allowed(address: str) -> None:
    assert forbidden(address) is False


def test_addresses_of_a_name_must_all_be_public() -> None:
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return [PUBLIC, "10.0.0.7", "::1"]

    with pytest.raises(InvalidInput) as caught:
        Peers(resolve=resolve).addresses("peer.example", 8443)
    assert caught.value.message == private_message("peer.example", "10.0.0.7, ::1")
    assert caught.value.field == "url"
    assert asked == [("peer.example", 8443)]
    allowed = Peers(allow_private=True, resolve=resolve).addresses("peer.example", 1)
    assert allowed == [PUBLIC, "10.0.0.7", "::1"]
    assert Peers(resolve=public).addresses("peer.example", 443) == [PUBLIC]


def test_an_address_in_the_url_is_not_resolved() -> None:
    def resolve(host: str, port: int) -> list[str]:
        raise AssertionError("resolved")

    with pytest.raises(InvalidInput) as caught:
        Peers(resolve=resolve).addresses("169.254.169.254", 80)
    assert caught.value.message == private_message("169.254.169.254", "169.254.169.254")
    assert Peers(resolve=resolve).addresses(PUBLIC, 80) == [PUBLIC]


@pytest.mark.parametrize("failure", [OSError("no"), UnicodeError("idna"), None])
def test_a_name_that_does_not_resolve_is_unavailable(failure: Exception | None) -> None:
    def resolve(host: str, port: int) -> list[str]:
        if failure is not None:
            raise failure
        return []

    with pytest.raises(Unavailable) as caught:
        Peers(resolve=resolve).addresses("gone.example", 443)
    assert caught.value.message == "无法解析对方主机 / cannot resolve the peer host gone.example"


def test_check_uses_the_default_port_of_the_scheme_and_skips_when_allowed() -> None:
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return [PUBLIC]

    peers = Peers(resolve=resolve)
    peers.check("https://peer.example/x")
    peers.check("http://peer.example/x")
    peers.check("https://peer.example:8443/x")
    assert asked == [("peer.example", 443), ("peer.example", 80), ("peer.example", 8443)]
    Peers(allow_private=True, resolve=resolve).check("https://other.example/x")
    assert len(asked) == 3
    with pytest.raises(InvalidInput):
        Peers(resolve=lambda h, p: ["127.0.0.1"]).check("https://peer.example/x")


def test_system_resolve_gives_each_address_once() -> None:
    assert system_resolve("127.0.0.1", 80) == ["127.0.0.1"]


# -- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://peer.example/list", "file:///etc/passwd", "https:///nohost", "peer.example/list",
        "https://user@peer.example/list", "https://user:pw@peer.example/list",
        "https://peer.example/" + "x" * 492,
    ],
)
def test_only_plain_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_url(url, "trust_list_url")
    assert caught.value.message == (
        "须为 http(s) 网址 / trust_list_url must be an http or https URL of at most 512 characters"
    )
    assert caught.value.field == "trust_list_url"


def test_urls_up_to_512_characters_and_with_a_numeric_port_pass() -> None:
    longest = "https://peer.example/" + "x" * 491
    assert len(longest) == 512
    assert check_url(longest) == longest
    assert check_url("http://peer.example:8080/a") == "http://peer.example:8080/a"
    with pytest.raises(InvalidInput) as caught:
        check_url("https://peer.example:http/a")
    assert caught.value.message == "网址端口无效 / url has an invalid port"
    assert caught.value.field == "url"


# -- fetching ----------------------------------------------------------------------------------


def peers(handler: Any, resolve: Any = public) -> Peers:
    return Peers(resolve=resolve, transport=httpx.MockTransport(handler))


def test_a_200_answer_gives_body_and_type_with_bounded_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"abc", headers={"Content-Type": "text/x"})

    body = fetch("POST", "https://peer.example/ocsp", peers=peers(handler), max_bytes=3,
                 what="OCSP应答", content=b"req", headers={"X-A": "1"})
    assert body == (b"abc", "text/x")
    request = seen[0]
    assert (request.method, str(request.url), request.content) == (
        "POST", "https://peer.example/ocsp", b"req")
    assert request.headers["User-Agent"] == USER_AGENT == "elicence-federation/1"
    assert request.headers["X-A"] == "1"
    assert request.extensions["timeout"] == {
        "connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0}
    assert (CONNECT_SECONDS, READ_SECONDS) == (5.0, 10.0)
    untyped = fetch("GET", "https://peer.example/x",
                    peers=peers(lambda r: httpx.Response(200, content=b"")), max_bytes=1,
                    what="x")
    assert untyped == (b"", "")


def unavailable(handler: Any, what: str = "信任列表", max_bytes: int = 10) -> str:
    with pytest.raises(Unavailable) as caught:
        fetch("GET", "https://peer.example/list", peers=peers(handler), max_bytes=max_bytes,
              what=what)
    return caught.value.message


def test_answers_other_than_200_are_unavailable_and_redirects_not_followed() -> None:
    prefix = "无法获取信任列表 / cannot fetch the trust list from https://peer.example/list: "
    assert unavailable(lambda r: httpx.Response(404)) == prefix + "HTTP 404"
    moved = httpx.Response(302, headers={"Location": "https://10.0.0.1/list"})
    assert unavailable(lambda r: moved) == prefix + "HTTP 302"
    assert unavailable(lambda r: httpx.Response(204)) == prefix + "HTTP 204"
    assert unavailable(lambda r: httpx.Response(200, content=b"x" * 11)) == (
        prefix + "larger than 10 bytes")
    assert unavailable(lambda r: httpx.Response(404), what="OCSP应答") == (
        "无法获取OCSP应答 / cannot fetch the OCSP response from https://peer.example/list: "
        "HTTP 404")
    assert unavailable(lambda r: httpx.Response(404), what="证照状态").startswith(
        "无法获取证照状态 / cannot fetch the licence status from ")
    assert unavailable(lambda r: httpx.Response(404), what="其他").startswith(
        "无法获取其他 / cannot fetch the 其他 from ")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert unavailable(refuse) == prefix + "ConnectError"


def test_the_body_is_bounded_by_declared_and_by_streamed_length() -> None:
    prefix = "无法获取信任列表 / cannot fetch the trust list from https://peer.example/list: "

    def declared(size: str) -> Any:
        return lambda r: httpx.Response(200, content=b"x", headers={"Content-Length": size})

    assert unavailable(declared("11")) == prefix + "larger than 10 bytes"

    def streamed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(b"y" * 6 + b"z" * 6))

    assert unavailable(streamed) == prefix + "larger than 10 bytes"
    exact = fetch("GET", "https://peer.example/list",
                  peers=peers(lambda r: httpx.Response(200, content=b"x" * 10)), max_bytes=10,
                  what="信任列表")
    assert exact[0] == b"x" * 10

    chunks: list[bytes] = []

    class Chunks(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for part in (b"a" * 6, b"b" * 6, b"c" * 100):
                chunks.append(part)
                yield part

    assert unavailable(lambda r: httpx.Response(200, stream=Chunks())) == (
        prefix + "larger than 10 bytes")
    assert len(chunks) == 2  # stops reading at the first chunk past the limit


def test_proxy_settings_of_the_environment_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    answer = fetch("GET", "https://peer.example/list",
                   peers=peers(lambda r: httpx.Response(200, content=b"ok")), max_bytes=10,
                   what="信任列表")
    assert answer[0] == b"ok"


def test_a_forbidden_address_is_refused_before_anything_is_sent() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    for url in ("https://10.0.0.1/list", "http://[::1]/list", "https://meta.example/list"):
        with pytest.raises(InvalidInput):
            fetch("GET", url, peers=peers(handler, lambda h, p: ["169.254.169.254"]),
                  max_bytes=10, what="信任列表")
    with pytest.raises(InvalidInput):
        fetch("GET", "gopher://peer.example/", peers=peers(handler), max_bytes=1, what="x")
    assert sent == []


def test_fetch_json_wants_a_json_object() -> None:
    def answer(content: bytes) -> Peers:
        return peers(lambda r: httpx.Response(200, content=content))

    def refused(content: bytes, what: str = "信任列表") -> tuple[str, str | None]:
        with pytest.raises(InvalidInput) as caught:
            fetch_json("https://peer.example/l", peers=answer(content), max_bytes=100,
                       what=what, field="trust-list")
        return caught.value.message, caught.value.field

    assert refused(b"<html>") == ("信任列表不是JSON / the trust list is not JSON", "trust-list")
    assert refused(b"[1, 2]") == (
        "信任列表不是JSON对象 / the trust list is not a JSON object", "trust-list")
    assert refused(b"[]", "证照状态")[0] == (
        "证照状态不是JSON对象 / the licence status is not a JSON object")
    assert refused(b"x", "其他")[0] == "其他不是JSON / the 其他 is not JSON"
    assert refused(b"[]", "其他")[0] == "其他不是JSON对象 / the 其他 is not a JSON object"
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"a": 1})

    assert fetch_json("https://peer.example/l", peers=peers(handler), max_bytes=100,
                      what="信任列表", field="f") == {"a": 1}
    assert seen[0].method == "GET" and seen[0].headers["Accept"] == "application/json"
    with pytest.raises(Unavailable):
        fetch_json("https://peer.example/l", peers=peers(handler), max_bytes=5, what="信任列表",
                   field="f")


# -- the connection itself ---------------------------------------------------------------------


class Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_guarded_transport_connects_to_a_checked_address(server: int) -> None:
    allowed = Peers(allow_private=True, resolve=lambda h, p: ["127.0.0.1"])
    body = fetch_json(f"http://peer.example:{server}/x", peers=allowed, max_bytes=100,
                      what="信任列表", field="f")
    assert body == {"path": "/x"}
    assert isinstance(GuardedTransport(allowed), httpx.HTTPTransport)


def test_a_name_rebound_to_a_private_address_is_refused_at_connection(server: int) -> None:
    answers = iter([[PUBLIC], ["127.0.0.1"]])

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    with pytest.raises(InvalidInput) as caught:
        fetch("GET", f"http://peer.example:{server}/x", peers=Peers(resolve=rebinding),
              max_bytes=100, what="信任列表")
    assert caught.value.message == private_message("peer.example", "127.0.0.1")


def test_the_backend_tries_each_address_and_reports_the_last_failure(server: int) -> None:
    port = closed_port()
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["127.0.0.1", "127.0.0.1"]

    backend = _GuardedBackend(Peers(allow_private=True, resolve=resolve))
    with pytest.raises(httpcore.ConnectError) as caught:
        backend.connect_tcp("peer.example", port, timeout=2)
    assert "no address" not in str(caught.value)
    assert asked == [("peer.example", port)]
    # only the checked address is dialled, never the host itself (the server listens on .1)
    only = _GuardedBackend(Peers(allow_private=True, resolve=lambda h, p: ["127.0.0.2"]))
    with pytest.raises(httpcore.ConnectError):
        only.connect_tcp("peer.example", server, timeout=2)
    # 127.0.0.2 is loopback too, but nothing listens there: the next address is tried
    backend = _GuardedBackend(Peers(allow_private=True,
                                    resolve=lambda h, p: ["127.0.0.2", "127.0.0.1"]))
    stream = backend.connect_tcp("peer.example", server, timeout=2)
    stream.close()
    with pytest.raises(InvalidInput):
        _GuardedBackend(Peers(resolve=lambda h, p: ["10.0.0.1"])).connect_tcp("peer.example", 1)


def test_the_guarded_pool_verifies_tls_ignores_the_environment_and_holds_one_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
) -> None:
    import ssl

    from cryptography.hazmat.primitives import serialization

    from tests.security.federation_support import domain

    planted = domain("b").root  # a CA the environment would add to the trusted ones
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(planted.public_bytes(serialization.Encoding.PEM))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    peers = Peers(resolve=public)
    pool = GuardedTransport(peers)._pool
    context = pool._ssl_context
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    planted_serial = format(planted.serial_number, "X")
    serials = {str(cert.get("serialNumber", "")).lstrip("0") for cert in context.get_ca_certs()}
    assert planted_serial.lstrip("0") not in serials
    assert pool._max_connections == 1
    assert isinstance(pool._network_backend, _GuardedBackend)


def test_the_backend_passes_the_callers_socket_settings(server: int) -> None:
    backend = _GuardedBackend(Peers(allow_private=True, resolve=lambda h, p: ["127.0.0.1"]))
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    stream = backend.connect_tcp("peer.example", server, timeout=2, local_address="127.0.0.3",
                                 socket_options=options)
    try:
        sock = stream.get_extra_info("socket")
        assert sock.getsockname()[0] == "127.0.0.3"
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    finally:
        stream.close()


def test_check_asks_about_the_url_host_exactly() -> None:
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return [PUBLIC]

    Peers(resolve=resolve).check("https:///no-host")
    assert asked == [("", 443)]
