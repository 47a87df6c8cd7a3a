"""Oversized request bodies against a running server: a 200 MiB chunked body (no
``Content-Length``) to a route, the answer, and how much the server's resident size rose.

``python -m bench.bodies`` prints one line per route. The server is ``elicence serve`` on a
fresh data directory (``elicence init``, no demo data). The client is a plain socket that sends
chunks until the server answers and then stops, as a well-behaved client does; the figure that
matters is the server's: its resident size before the body and its peak while receiving it.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.web import Server, elicence_server

MIB = 1024 * 1024
CHUNK = 64 * 1024
BOUNDARY = "elicence-bench-boundary"
MULTIPART_HEAD = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
    "Content-Type: application/pdf\r\n\r\n"
).encode()
# (label, path, content type, first bytes of the body, extra headers)
BODIES: dict[str, tuple[str, str, bytes, dict[str, str]]] = {
    "verify-json": ("/api/v1/verify", "application/json", b'{"qr": "', {}),
    "verify-upload": (
        "/api/v1/verify",
        f"multipart/form-data; boundary={BOUNDARY}",
        MULTIPART_HEAD,
        {},
    ),
    "issue-unauthenticated": ("/api/v1/licences", "application/json", b'{"fields": "', {}),
    "tsa": ("/pki/tsa", "application/timestamp-query", b"\x30\x82", {}),
}


@dataclass
class Sent:
    status: int | None  # None: the connection ended without an answer
    offered: int  # body bytes the client managed to hand to the socket
    seconds: float


def post_chunked(
    port: int,
    path: str,
    *,
    total: int,
    content_type: str,
    first: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Sent:
    """POST ``total`` body bytes in chunks of ``CHUNK`` with ``Transfer-Encoding: chunked``;
    stops sending as soon as an answer arrives, and returns its status."""
    started = time.perf_counter()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\n"
        f"Content-Type: {content_type}\r\n{extra}\r\n"
    ).encode()
    filler = b"a" * CHUNK
    reply = bytearray()
    offered = 0
    pending = memoryview(head)
    sending = True
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setblocking(False)
        while time.monotonic() < deadline and not _complete(reply):
            readable, writable, _ = select.select([sock], [sock] if sending else [], [], 1.0)
            if readable:
                try:
                    data = sock.recv(65536)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if not data:
                    break
                reply += data
                sending = False  # the server has answered: stop sending
                continue
            if writable and sending:
                if not pending:
                    if offered >= total:
                        sending = False
                        with contextlib.suppress(OSError):
                            sock.send(b"0\r\n\r\n")
                        continue
                    body = (first + filler[len(first) :]) if offered == 0 else filler
                    body = body[: total - offered]
                    offered += len(body)
                    pending = memoryview(b"%x\r\n%b\r\n" % (len(body), body))
                try:
                    pending = pending[sock.send(pending) :]
                except BlockingIOError:
                    pass
                except OSError:  # the server closed its side: read what it said
                    sending = False
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None
    return Sent(status, offered, round(time.perf_counter() - started, 3))


def _complete(reply: bytearray) -> bool:
    head, sep, body = bytes(reply).partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return True


@dataclass
class Measured:
    label: str
    status: int | None
    offered_mib: float
    seconds: float
    rss_before_kib: int
    rss_after_kib: int
    peak_kib: int  # VmHWM while the body was sent (reset just before, when the kernel allows)
    peak_reset: bool

    @property
    def rise_kib(self) -> int:
        """The larger of the lasting rise and the peak's rise over the resident size before."""
        base = self.rss_before_kib
        return max(self.rss_after_kib - base, (self.peak_kib - base) if self.peak_reset else 0)


def measure(server: Server, label: str, total: int = 200 * MIB, warm_up: int = 4) -> Measured:
    """One oversized body to the route ``label`` (see ``BODIES``), after ``warm_up`` smaller
    ones (first calls import and allocate what every later call reuses)."""
    path, content_type, first, headers = BODIES[label]
    port = int(server.base.rsplit(":", 1)[1])
    for _ in range(warm_up):
        post_chunked(port, path, total=16 * MIB, content_type=content_type, first=first)
    before = server.memory_kb()
    reset = server.reset_peak()
    sent = post_chunked(
        port, path, total=total, content_type=content_type, first=first, headers=headers
    )
    time.sleep(0.2)  # the server finishes its side of the answer
    after = server.memory_kb()
    return Measured(
        label,
        sent.status,
        round(sent.offered / MIB, 1),
        sent.seconds,
        before["VmRSS"],
        after["VmRSS"],
        after["VmHWM"],
        reset,
    )


def initialise(data_dir: Path) -> None:
    """``elicence init`` (no demo data) with the passphrase ``bench.web`` serves with."""
    from api.container import build_services
    from api.ops.bootstrap import initialise as init
    from api.settings import Settings

    settings = Settings(data_dir=data_dir, key_passphrase="bench")  # type: ignore[arg-type]
    init(build_services(settings), with_demo=False)


@contextlib.contextmanager
def running(data_dir: Path) -> Iterator[Server]:
    with elicence_server(data_dir) as server:
        yield server


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        initialise(data_dir)
        rows: list[dict[str, Any]] = []
        with running(data_dir) as server:
            for label in BODIES:
                row = measure(server, label)
                rows.append(asdict(row) | {"rise_kib": row.rise_kib})
                print(json.dumps(rows[-1]), file=sys.stderr)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
