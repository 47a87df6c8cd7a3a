"""Request bodies at the edge: limits on the bytes read (chunked or not), writes without
credentials refused before their body is read, JSON nesting bounded, and the public PKI and
statistics routes rate-limited per address.

The application is called as ASGI with a ``receive`` that counts the body bytes it hands over,
so each test sees how much of a body the service pulled, not only what it answered. The last
test measures a real server receiving a 200 MiB chunked body.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.domain import Domain, demo_domain

KIB = 1024
MIB = 1024 * KIB
JSON_LIMIT = 1 * MIB  # the default limit of a JSON body
PKI_LIMIT = 16 * KIB  # an RFC 3161 or RFC 6960 request
UPLOAD_LIMIT = 2 * MIB  # this module's upload limit (ELICENCE_MAX_UPLOAD_BYTES)
MULTIPART_ALLOWANCE = 64 * KIB  # part headers and boundaries around the uploaded file
QR = "HTTPS://X/V/AAAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Domain:
    return demo_domain(
        tmp_path_factory,
        "bodies",
        max_upload_bytes=UPLOAD_LIMIT,
        tsa_rate_limit="3/minute",
        ocsp_rate_limit="3/minute",
        statistics_rate_limit="3/minute",
    )


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    pulled: int  # body bytes the service took through ``receive``

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"].startswith("application/problem+json"), self.headers
        return json.loads(self.body)  # type: ignore[no-any-return]


def call(
    domain: Domain,
    method: str,
    path: str,
    chunks: Iterable[bytes] = (),
    *,
    headers: dict[str, str] | None = None,
    client: str = "192.0.2.1",
) -> Answer:
    """One request straight to the ASGI application; the body comes from ``chunks`` one
    ``http.request`` message at a time, as a server passes on a chunked body."""
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": (client, 50000),
        "server": ("testserver", 80),
    }
    source = iter(chunks)
    pulled = 0
    status = 0
    response_headers: dict[str, str] = {}
    body = bytearray()

    async def run() -> None:
        finished = anyio.Event()
        ended = False

        async def receive() -> dict[str, Any]:
            nonlocal pulled, ended
            if ended:
                await finished.wait()
                return {"type": "http.disconnect"}
            chunk = next(source, None)
            if chunk is None:
                ended = True
                return {"type": "http.request", "body": b"", "more_body": False}
            pulled += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for key, value in message.get("headers", []):
                    response_headers[key.decode().lower()] = value.decode()
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    finished.set()

        await domain.client.app(scope, receive, send)  # type: ignore[arg-type]

    anyio.run(run)
    return Answer(status, response_headers, bytes(body), pulled)


def repeated(total: int, size: int, first: bytes = b"") -> Iterator[bytes]:
    """``total`` bytes in chunks of ``size``, the first starting with ``first``."""
    sent = 0
    while sent < total:
        chunk = (first if sent == 0 else b"") + b"a" * size
        chunk = chunk[: min(size, total - sent)]
        sent += len(chunk)
        yield chunk


JSON = {"Content-Type": "application/json"}


def test_chunked_json_over_the_limit_is_413_after_at_most_the_limit(domain: Domain) -> None:
    answer = call(
        domain, "POST", "/api/v1/verify", repeated(8 * MIB, 64 * KIB, b'{"qr": "'), headers=JSON
    )
    assert answer.status == 413
    assert answer.problem()["status"] == 413
    assert answer.pulled <= JSON_LIMIT + 64 * KIB


def test_declared_length_over_a_json_routes_limit_is_413_unread(domain: Domain) -> None:
    declared = {**JSON, **domain.auth(), "Content-Length": str(JSON_LIMIT + 1)}
    answer = call(
        domain, "POST", "/api/v1/licences", repeated(JSON_LIMIT + 1, 64 * KIB), headers=declared
    )
    assert answer.status == 413
    assert answer.pulled == 0


def test_chunked_upload_over_the_upload_limit_is_413(domain: Domain) -> None:
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"
    ).encode()
    answer = call(
        domain,
        "POST",
        "/api/v1/verify",
        repeated(6 * UPLOAD_LIMIT, 64 * KIB, head),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answer.status == 413
    assert answer.problem()["status"] == 413
    assert answer.pulled <= UPLOAD_LIMIT + MULTIPART_ALLOWANCE + 64 * KIB


def test_an_upload_within_the_limit_is_still_verified(domain: Domain) -> None:
    issued = domain.issue(0)
    report = domain.verify_pdf(domain.pdf(issued, 0))
    assert report["indication"] == "PASSED"


@pytest.mark.parametrize("path", ["/pki/tsa", "/pki/ocsp"])
def test_pki_request_over_16_kib_is_413_after_at_most_one_more_chunk(
    domain: Domain, path: str
) -> None:
    kind = "timestamp-query" if path.endswith("tsa") else "ocsp-request"
    answer = call(
        domain,
        "POST",
        path,
        repeated(1 * MIB, 4 * KIB, b"\x30\x82"),
        headers={"Content-Type": f"application/{kind}"},
        client=f"192.0.2.{10 + len(path)}",
    )
    assert answer.status == 413
    assert answer.pulled <= PKI_LIMIT + 4 * KIB


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/licences", b'{"licence_type": "x"}'),
        ("/api/v1/licences:batch", b'{"items": []}'),
        ("/api/v1/holders/111/110101199003071234", b'{"name": "x"}'),
        ("/api/v1/catalogue/licence-types", b"{}"),
    ],
)
def test_department_write_without_credentials_is_401_before_the_body_is_read(
    domain: Domain, path: str, body: bytes
) -> None:
    method = "PATCH" if "/holders/" in path else "POST"
    for headers in (
        JSON,
        {**JSON, "Authorization": "Basic dXNlcjpwdw=="},
        {**JSON, "Authorization": "Bearer"},
    ):
        answer = call(domain, method, path, [body, *repeated(4 * MIB, 64 * KIB)], headers=headers)
        assert answer.status == 401, (headers, answer.body[:200])
        assert answer.problem()["status"] == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.pulled == 0


def test_holder_write_without_a_session_is_refused_before_the_body_is_read(
    domain: Domain,
) -> None:
    path = "/api/v1/holder/grants"
    answer = call(domain, "POST", path, repeated(4 * MIB, 64 * KIB, b"{"), headers=JSON)
    assert answer.status == 401 and answer.pulled == 0
    assert "请先登录" in answer.problem()["detail"]
    with_department = {**JSON, **domain.auth()}
    answer = call(domain, "POST", path, repeated(4 * MIB, 64 * KIB, b"{"), headers=with_department)
    assert answer.status == 403 and answer.pulled == 0


def test_credentials_let_the_body_through(domain: Domain) -> None:
    """The control: a well-formed credential reaches the route, which reads the body."""
    body = json.dumps(domain.department(0)["sample_request"]).encode()
    answer = call(domain, "POST", "/api/v1/licences", [body], headers={**JSON, **domain.auth()})
    assert answer.status == 201, answer.body[:300]
    assert answer.pulled == len(body)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_deeply_nested_json_is_422_naming_the_nesting(domain: Domain) -> None:
    for path, headers in (
        ("/api/v1/verify", JSON),
        ("/api/v1/licences", {**JSON, **domain.auth()}),
        ("/api/v1/licences", domain.auth()),  # no Content-Type: the framework reads JSON too
    ):
        answer = call(domain, "POST", path, [nested(100_000)], headers=headers)
        assert answer.status == 422, (path, answer.status, answer.body[:200])
        problem = answer.problem()
        assert "嵌套" in problem["detail"] and "nest" in problem["detail"]
        assert problem["field"] == "body"


def test_nesting_is_bounded_at_32_levels(domain: Domain) -> None:
    inner = b'{"qr": "' + QR.encode() + b'", "extra": ' + nested(31) + b"}"  # 32 levels
    assert call(domain, "POST", "/api/v1/verify", [inner], headers=JSON).status == 200
    deeper = b'{"qr": "' + QR.encode() + b'", "extra": ' + nested(32) + b"}"  # 33 levels
    answer = call(domain, "POST", "/api/v1/verify", [deeper], headers=JSON)
    assert answer.status == 422 and answer.problem()["field"] == "body"


def test_brackets_inside_strings_are_not_nesting(domain: Domain) -> None:
    text = json.dumps({"qr": QR, "note": "[{" * 500, "quote": '\\"[[[' * 50}).encode()
    answer = call(domain, "POST", "/api/v1/verify", [text[:7], text[7:]], headers=JSON)
    assert answer.status == 200, answer.body[:300]


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("POST", "/pki/tsa", "tsa"),
        ("POST", "/pki/ocsp", "ocsp"),
        ("GET", "/pki/ocsp/MAo=", "ocsp-get"),
        ("GET", "/statistics/{code}", "statistics-page"),
        ("GET", "/api/v1/statistics/{code}", "statistics-api"),
    ],
)
def test_pki_and_statistics_have_their_own_rate_limit(
    domain: Domain, method: str, path: str, name: str
) -> None:
    path = path.replace("{code}", domain.department(0)["code"])
    client = f"198.51.100.{10 + len(name)}"
    body = [b"\x30\x03\x02\x01\x01"] if method == "POST" else []
    statuses = [call(domain, method, path, body, client=client).status for _ in range(5)]
    assert statuses[:3] == [200, 200, 200], statuses
    assert statuses[3:] == [429, 429], statuses
    limited = call(domain, method, path, body, client=client)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.problem()["status"] == 429
    # another address has its own window
    assert call(domain, method, path, body, client="203.0.113.9" + str(len(name))).status == 200


@pytest.mark.slow
def test_a_real_server_receiving_200_mib_chunked_keeps_its_memory(tmp_path: Path) -> None:
    """``bench/bodies.py`` against ``elicence serve``: each oversized body is answered (413,
    or 401 for a write without credentials) and the server's resident size rises by at most
    twice the route's limit (the default upload limit is 10 MiB)."""
    from bench.bodies import MIB as BENCH_MIB
    from bench.bodies import initialise, measure, running

    limits = {
        "verify-json": JSON_LIMIT,
        "verify-upload": 10 * MIB,
        "issue-unauthenticated": JSON_LIMIT,
    }
    expected = {"verify-json": 413, "verify-upload": 413, "issue-unauthenticated": 401}
    data_dir = tmp_path / "data"
    initialise(data_dir)
    with running(data_dir) as server:
        for label, limit in limits.items():
            row = measure(server, label, total=200 * BENCH_MIB, warm_up=3)
            print(label, row, row.rise_kib)
            assert row.status == expected[label], row
            assert row.rise_kib * KIB <= 2 * limit, row
        tsa = measure(server, "tsa", total=200 * BENCH_MIB, warm_up=3)
        print("tsa", tsa, tsa.rise_kib)
        assert tsa.status == 413, tsa
