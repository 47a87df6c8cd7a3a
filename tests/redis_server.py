"""Redis for tests: a private ``redis-server`` on a free loopback port (no persistence), which a
test may pause, stop and start again, and the shared one on 127.0.0.1:6379 under a key prefix of
the test's own. Either missing is a skip, or a failure under ``ELICENCE_STRICT_TESTS=1``."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from tests.tools import missing, require

SHARED_URL = "redis://127.0.0.1:6379/0"
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """A Redis URL nobody listens on: every connection is refused."""
    return f"redis://127.0.0.1:{free_port()}/0"


class RedisServer:
    """``redis-server --port <free> --save "" --appendonly no``, started, paused and stopped by
    the test that owns it."""

    def __init__(self) -> None:
        self.binary = require("redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", *NO_PERSISTENCE],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert self.process.poll() is None, "redis-server exited while starting"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)
        client.close()

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but nothing answers (a hung Redis)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def keys(self) -> list[str]:
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            return sorted(k.decode() for k in client.scan_iter(count=1000))
        finally:
            client.close()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def shared_redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the machine's Redis (127.0.0.1:6379), its keys
    deleted afterwards."""
    client = redis.Redis.from_url(SHARED_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        missing(f"Redis on 127.0.0.1:6379 is not reachable: {exc}")
    prefix = f"elicence-test:{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        stale = list(client.scan_iter(match=prefix + "*", count=1000))
        if stale:
            client.delete(*stale)
        client.close()
