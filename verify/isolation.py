"""Hostile uploads are parsed and validated in a worker process with CPU, memory and time limits.

Verification is public, so anyone can send a decompression bomb, a file nested ten thousand
levels deep, a certificate bag that sends path building into a combinatorial search, or one
that drives a parser into a loop. Such a file must cost at most a worker process, never the
server: each upload is handled in a small pool of worker processes (``ProcessPoolExecutor``,
"spawn", so nothing is forked from the threaded server; a fork per request was measured at
~0.6 s here, growing with the modules the server had imported — the cause was not pinned down —
against ~40 ms for a task in a warm worker). Each worker caps its address space (``RLIMIT_AS``)
and, per task, its CPU time (``RLIMIT_CPU``); the parent stops waiting at the wall-clock limit
and kills the pool's workers.

``Inspector.examine`` does the whole parsing and cryptographic work in one hop: the structure
inspection (``verify.structure``: pikepdf; a licence this service issues has no JavaScript, no
actions, no embedded files and one page, so anything else is refused by name) and then
``verify.signature`` on the same pyHanko reader — the upload is read by pyHanko once. The
worker receives the bytes, the trust anchors, the validation time and the revocations as plain
values, and answers with a refusal (``Inspection``) or ``SignatureFacts``; the repository and
the licence status stay in the parent (``verify.pdf``), which decides from the facts.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from verify.report import Indication, SubIndication
from verify.structure import Inspection, refuse, structure

if TYPE_CHECKING:
    from verify.ofd_chain import Sm2Anchors
    from verify.ofd_examine import OfdFacts
    from verify.signature import Parsed, Revocation, SignatureFacts, TrustAnchors


# A licence PDF has a few hundred objects; these bounds leave ample room for LTV revisions.
@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 10
    memory_bytes: int = 1024 * 1024 * 1024
    wall_seconds: float = 20.0
    max_objects: int = 20_000
    max_pages: int = 10
    max_depth: int = 64
    max_stream_bytes: int = 64 * 1024 * 1024  # decoded, all streams together
    workers: int = 2
    # An OFD licence package (verify.ofd_package) is a dozen entries of a few hundred KiB.
    max_zip_entries: int = 256
    max_zip_entry_bytes: int = 16 * 1024 * 1024  # one entry, inflated
    max_zip_total_bytes: int = 64 * 1024 * 1024  # all entries, inflated
    max_zip_ratio: int = 100  # inflated : compressed, for entries past the floor below
    zip_ratio_floor_bytes: int = 64 * 1024
    max_zip_name_bytes: int = 255
    max_xml_bytes: int = 4 * 1024 * 1024
    max_xml_elements: int = 100_000  # per XML file
    max_xml_depth: int = 32


R = TypeVar("R")


def inspect_bytes(data: bytes, limits: Limits) -> Inspection:
    """Structure inspection alone (also callable in-process by tests): pikepdf, then pyHanko's
    reader, so a file that breaks it breaks here."""
    return _inspect(data, limits)[0]


def inspect_and_examine(
    data: bytes,
    limits: Limits,
    *,
    anchors: TrustAnchors,
    moment: datetime,
    revoked: tuple[Revocation, ...],
    tolerance: timedelta,
) -> Inspection | SignatureFacts:
    """The worker's work for an upload: the inspection, then ``verify.signature`` on the reader
    the inspection opened. A refusal is an ``Inspection``; anything else is the facts."""
    from verify.signature import examine_parsed

    found, parsed = _inspect(data, limits)
    if parsed is None:
        return found
    return examine_parsed(parsed, anchors, moment=moment, revoked=revoked, tolerance=tolerance)


def _inspect(data: bytes, limits: Limits) -> tuple[Inspection, Parsed | None]:
    found = structure(data, limits)
    if not found.ok:
        return found, None
    from verify.signature import parse

    try:
        parsed = parse(data)
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:
        return (
            refuse(
                "format",
                f"签名结构无法读取 / signature structure unreadable: {type(exc).__name__}",
                Indication.INDETERMINATE,
                SubIndication.MALFORMED,
            ),
            None,
        )
    return found, parsed


def _initialise(limits: Limits) -> None:
    """Each worker caps its own address space once, when the pool starts it, and ends with the
    server: a server killed with SIGKILL cannot shut its pool down, and idle workers would
    otherwise live on (they hold both ends of the task queue, so never see it close)."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    # Not PR_SET_PDEATHSIG: Linux ties it to the *thread* that started the worker, and the
    # server's request threads come and go, so a worker would die with its spawning thread.
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    # Loaded once per worker, outside any task's CPU budget: pyHanko, pikepdf, certvalidator,
    # and for OFD uploads OpenSSL's SM2 (keys.sm2) and the GB/T 38540 structures.
    import pikepdf  # noqa: F401

    import verify.ofd_examine
    import verify.signature  # noqa: F401
    from verify import hexstrings

    hexstrings.install()  # pyHanko's hex strings read in slices: most of an upload's parse


def _watch_parent(parent: int) -> None:
    """Notice within a second that the server is gone (the worker is re-parented) and end."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _task(data: bytes, limits: Limits, work: Callable[[bytes, Limits], R]) -> R | Inspection:
    """One task in a worker: the CPU limit is set to what this task may still use (the
    soft limit only, so the next task can raise it again); a breach is SIGXCPU, which ends the
    worker, and the parent answers LIMIT_EXCEEDED."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent = int(usage.ru_utime + usage.ru_stime)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = spent + limits.cpu_seconds + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    try:
        return work(data, limits)
    except MemoryError:
        return refuse(
            "limits",
            "内存超限 / memory limit exceeded",
            Indication.INDETERMINATE,
            SubIndication.LIMIT_EXCEEDED,
        )
    except RecursionError:
        return refuse(
            "limits",
            "嵌套过深 / nesting too deep",
            Indication.INDETERMINATE,
            SubIndication.LIMIT_EXCEEDED,
        )
    except Exception as exc:  # anything the parsers raise is a malformed file
        return refuse(
            "format",
            f"无法解析 / parser error: {type(exc).__name__}",
            Indication.INDETERMINATE,
            SubIndication.MALFORMED,
        )


class Inspector:
    """Runs inspection and examination in a small pool of limited worker processes.

    Workers are started with "spawn" (never forked from the threaded server) and replaced after
    ``max_tasks_per_child`` uploads, so a leak in a parser lives briefly. A worker that breaks a
    limit takes the pool down with it: the pool is rebuilt, the offending upload is answered
    LIMIT_EXCEEDED, and uploads that shared the broken pool are tried once more.

    The pool belongs to this object, not to the process: the service container makes one
    Inspector, hands it to the local and the foreign verifier (one pool for both), and calls
    ``close`` when it shuts down. No worker starts before the first upload; one dropped without
    ``close`` has its workers ended when it is garbage-collected."""

    def __init__(self, limits: Limits, max_tasks_per_child: int = 200) -> None:
        self.limits = limits
        self.max_tasks_per_child = max_tasks_per_child
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Inspector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the workers (waiting for the tasks they run); a later upload starts a new pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.limits.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_initialise,
                    initargs=(self.limits,),
                    max_tasks_per_child=self.max_tasks_per_child,
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        """Kill the workers of a pool that hangs or broke, and start afresh on next use."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        for process in list((pool._processes or {}).values()):
            if process.is_alive():
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def inspect(self, data: bytes) -> Inspection:
        """Structure inspection only."""
        return self._run(data, time.monotonic() + self.limits.wall_seconds, inspect_bytes)

    def inspect_ofd(self, data: bytes) -> Inspection:
        """An OFD package's hostile-input layer only (``verify.ofd_package``): the ZIP and its
        XML files read under the limits."""
        from verify.ofd_package import inspect_package

        return self._run(data, time.monotonic() + self.limits.wall_seconds, inspect_package)

    def examine_ofd(
        self,
        data: bytes,
        anchors: TrustAnchors,
        sm2: Sm2Anchors,
        *,
        moment: datetime,
        revoked: Iterable[Revocation] = (),
        tolerance: timedelta = timedelta(0),
    ) -> Inspection | OfdFacts:
        """An OFD upload's package, XML and seal (``verify.ofd_examine``) in one worker task,
        under the same limits as a PDF: ``OfdFacts``, or the refusal."""
        from verify.ofd_examine import examine_ofd

        work = functools.partial(
            examine_ofd,
            anchors=anchors,
            sm2=sm2,
            moment=moment,
            revoked=tuple(revoked),
            tolerance=tolerance,
        )
        return self._run(data, time.monotonic() + self.limits.wall_seconds, work)

    def examine(
        self,
        data: bytes,
        anchors: TrustAnchors,
        *,
        moment: datetime,
        revoked: Iterable[Revocation] = (),
        tolerance: timedelta = timedelta(0),
    ) -> Inspection | SignatureFacts:
        """Inspection and ``verify.signature.examine`` in one worker task, under the limits:
        ``SignatureFacts`` for a file the worker could read, else the refusal (hostile,
        unparseable, over a limit, or the pool too busy)."""
        work = functools.partial(
            inspect_and_examine,
            anchors=anchors,
            moment=moment,
            revoked=tuple(revoked),
            tolerance=tolerance,
        )
        return self._run(data, time.monotonic() + self.limits.wall_seconds, work)

    def _run(
        self, data: bytes, deadline: float, target: Callable[[bytes, Limits], R]
    ) -> R | Inspection:
        for attempt in (1, 2):
            pool = self._executor()
            try:
                future = pool.submit(_task, data, self.limits, target)
            except (BrokenProcessPool, RuntimeError):
                self._discard(pool)
                continue
            try:
                return future.result(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                if future.cancel():  # still queued behind other uploads: nothing to kill
                    return _busy()
                self._discard(pool)
                return refuse(
                    "limits",
                    f"处理超时 / checking the file took longer than {self.limits.wall_seconds:g} s",
                    Indication.INDETERMINATE,
                    SubIndication.LIMIT_EXCEEDED,
                )
            except BrokenProcessPool:
                self._discard(pool)
                if attempt == 2 or time.monotonic() >= deadline:
                    break
            except Exception as exc:  # e.g. a result that cannot be pickled back
                return refuse(
                    "format",
                    f"无法解析 / checking the file failed: {type(exc).__name__}",
                    Indication.INDETERMINATE,
                    SubIndication.MALFORMED,
                )
        return refuse(
            "limits",
            "核验进程被终止（资源超限）/ the checking process was ended by a resource limit",
            Indication.INDETERMINATE,
            SubIndication.LIMIT_EXCEEDED,
        )


def _busy() -> Inspection:
    return refuse(
        "limits",
        "核验繁忙，请稍后重试 / too many uploads being checked; try again shortly",
        Indication.INDETERMINATE,
        SubIndication.TRY_LATER,
    )


def _spin(data: bytes, limits: Limits) -> Inspection:
    """A parser stuck in a loop; the limit tests hand it to a worker instead of a file."""
    while True:
        pass


def _eat(data: bytes, limits: Limits) -> Inspection:
    """A parser inflating a bomb in memory; for the limit tests."""
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))
