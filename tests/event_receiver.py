"""A real HTTP receiver of signed events on loopback, for the delivery tests.

It answers as told: refuse the first N posts (503), answer 410 Gone, answer with a huge body,
never answer, or hold every answer until released (the worker is killed meanwhile). It records
each post it read: the event id header, the body (the compact JWS) and the answer it gave.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Post:
    event_id: str
    idempotency_key: str
    content_type: str
    subscription: str
    body: str
    answered: int


@dataclass
class Behaviour:
    refuse_first: int = 0  # this many posts are answered 503 first
    mode: str = "ok"  # ok | gone | huge | silent | drip
    hold: threading.Event | None = None  # when set: answers wait until it is set
    posts: list[Post] = field(default_factory=list)
    seen: threading.Event = field(default_factory=threading.Event)  # a post was read
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)  # ends silent waits


class Receiver:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                b = receiver.behaviour
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode("ascii")
                with b.lock:
                    refused = sum(1 for p in b.posts if p.answered == 503)
                    status = 503 if refused < b.refuse_first else 200
                    if b.mode == "gone":
                        status = 410
                    b.posts.append(Post(self.headers.get("X-Elicence-Event-Id", ""),
                                        self.headers.get("Idempotency-Key", ""),
                                        self.headers.get("Content-Type", ""),
                                        self.headers.get("X-Elicence-Subscription", ""),
                                        body, status))
                b.seen.set()
                if b.hold is not None:
                    b.hold.wait(60)
                if b.mode == "silent":
                    b.release.wait(30)
                    return
                try:
                    if b.mode == "drip":  # a header byte every 0.2 s, never done
                        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                        while not b.release.wait(0.2):
                            self.wfile.write(b"a")
                            self.wfile.flush()
                        return
                    if b.mode == "huge":
                        self.send_response(200)
                        self.send_header("Content-Length", str(100 * 2**20))
                        self.end_headers()
                        chunk = b"x" * 65536
                        for _ in range(1600):
                            self.wfile.write(chunk)
                        return
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/events"

    def accepted(self) -> list[Post]:
        with self.behaviour.lock:
            return [p for p in self.behaviour.posts if p.answered == 200]

    def close(self) -> None:
        self.behaviour.release.set()
        if self.behaviour.hold is not None:
            self.behaviour.hold.set()
        self.server.shutdown()
        self.server.server_close()
