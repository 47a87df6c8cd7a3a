"""The limited worker pool (verify/isolation.py). In-process: the inspection then pyHanko's
reader, a worker task's CPU budget and how it answers a parser's exception, and a worker's
start-up (its address-space cap, dying with the server). With real "spawn" workers: a file is
inspected and examined in the worker; a worker that crashes or loops is answered INDETERMINATE,
never with an exception, and its pool is killed and replaced; pools are shared per limits."""

from __future__ import annotations

import io
import os
import resource
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pikepdf
import pytest

import verify.isolation as isolation
from tests.security.test_docmdp import MOMENT, anchors, sealed
from verify import hexstrings
from verify.isolation import Inspector, Limits, inspect_and_examine, inspect_bytes
from verify.report import Indication, SubIndication
from verify.signature import Revocation, SignatureFacts
from verify.structure import Inspection

LIMITS = Limits(workers=1)
LIMITS_TOLERANCE = timedelta(seconds=1)


def blank() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def broken_signature() -> bytes:
    """Passes pikepdf's inspection; pyHanko cannot read the signature's /ByteRange."""
    pdf = pikepdf.new()
    pdf.add_blank_page()
    value = pikepdf.Dictionary(Type=pikepdf.Name.Sig, SubFilter=pikepdf.Name("/adbe.pkcs7.detached"),
                               Contents=pikepdf.String("x"))
    field = pikepdf.Dictionary(FT=pikepdf.Name.Sig, T=pikepdf.String("Seal"), V=value)
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([pdf.make_indirect(field)]))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def limit(detail: str) -> Inspection:
    return Inspection(False, "limits", detail, Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED)


def malformed(detail: str) -> Inspection:
    return Inspection(False, "format", detail, Indication.INDETERMINATE, SubIndication.MALFORMED)


UNREADABLE_SIGNATURE = malformed("签名结构无法读取 / signature structure unreadable: PdfReadError")


def test_the_default_limits() -> None:
    assert Limits() == Limits(10, 1024**3, 20.0, 20_000, 10, 64, 64 * 1024**2, 2)


# ----- in this process -----

def test_inspection_alone() -> None:
    assert inspect_bytes(blank(), LIMITS) == Inspection(True, objects=4, pages=1)
    assert inspect_bytes(blank(), replace(LIMITS, max_pages=0)) == Inspection(False, "structure", "页数过多 / 1 pages > 0", Indication.INDETERMINATE,
                      SubIndication.LIMIT_EXCEEDED)
    assert inspect_bytes(broken_signature(), LIMITS) == UNREADABLE_SIGNATURE


def test_inspection_then_examination_on_the_same_reader() -> None:
    def run(data: bytes, limits: Limits = LIMITS) -> Inspection | SignatureFacts:
        return inspect_and_examine(data, limits, anchors=anchors(), moment=MOMENT, revoked=(),
                                   tolerance=LIMITS_TOLERANCE)

    assert run(blank()) == SignatureFacts(moment=MOMENT, signatures=0)
    assert run(broken_signature()) == UNREADABLE_SIGNATURE
    assert run(blank(), replace(LIMITS, max_objects=3)) == Inspection(
        False, "structure", "对象过多 / 4 objects > 3", Indication.INDETERMINATE,
        SubIndication.LIMIT_EXCEEDED)
    facts = run(sealed(1))
    assert isinstance(facts, SignatureFacts)
    assert (facts.signatures, facts.docmdp, facts.intact, facts.valid, facts.trusted) == (
        1, 1, True, True, True)


def test_revocations_and_tolerance_reach_the_examination() -> None:
    from tests.security import examined_pdfs as pdfs

    data = pdfs.archived(("tsa", pdfs.ARCHIVED))
    revoked = (Revocation(pdfs.TSA_SERIAL, pdfs.ARCHIVED + timedelta(seconds=1), "keyCompromise"),)

    def archive(revoked: tuple[Revocation, ...], tolerance: timedelta) -> Any:
        facts = inspect_and_examine(data, LIMITS, anchors=pdfs.anchors(), moment=MOMENT,
                                    revoked=revoked, tolerance=tolerance)
        assert isinstance(facts, SignatureFacts)
        return facts.archive.proof_time

    assert archive(revoked, timedelta(seconds=1)) is None
    assert archive(revoked, timedelta(0)) == pdfs.ARCHIVED
    assert archive((), timedelta(seconds=1)) == pdfs.ARCHIVED


class _Stop(Exception):
    pass


def test_the_looping_parser_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    def stop(signum: int, frame: Any) -> None:
        raise _Stop

    previous = signal.signal(signal.SIGALRM, stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(_Stop):
            isolation._spin(b"", LIMITS)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_hoarding_parser_runs_out_of_memory() -> None:
    saved = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size + 256 * 1024 * 1024, saved[1]))
    try:
        with pytest.raises(MemoryError):
            isolation._eat(b"", LIMITS)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, saved)


@pytest.mark.parametrize("error", [MemoryError, RecursionError])
def test_a_limit_inside_the_parser_propagates(monkeypatch: pytest.MonkeyPatch,
                                              error: type[Exception]) -> None:
    import verify.signature

    def parse(data: bytes) -> Any:
        raise error

    monkeypatch.setattr(verify.signature, "parse", parse)
    with pytest.raises(error):
        inspect_bytes(blank(), LIMITS)


@pytest.fixture
def cpu_limit() -> Iterator[None]:
    saved = resource.getrlimit(resource.RLIMIT_CPU)
    yield
    resource.setrlimit(resource.RLIMIT_CPU, saved)


def _raise(error: BaseException) -> Any:
    def work(data: bytes, limits: Limits) -> Any:
        raise error
    return work


@pytest.mark.parametrize(("error", "expected"), [
    (MemoryError(), limit("内存超限 / memory limit exceeded")),
    (RecursionError(), limit("嵌套过深 / nesting too deep")),
    (ValueError("x"), malformed("无法解析 / parser error: ValueError")),
    (KeyError("x"), malformed("无法解析 / parser error: KeyError")),
])
def test_a_task_answers_a_parsers_exception(cpu_limit: None, error: BaseException,
                                            expected: Inspection) -> None:
    assert isolation._task(b"data", LIMITS, _raise(error)) == expected


def test_a_task_gets_the_cpu_it_may_still_use(cpu_limit: None) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before = int(usage.ru_utime + usage.ru_stime)
    seen: list[Any] = []

    def work(data: bytes, limits: Limits) -> str:
        seen.append((data, limits, resource.getrlimit(resource.RLIMIT_CPU)))
        return "done"

    limits = replace(LIMITS, cpu_seconds=7)
    assert isolation._task(b"data", limits, work) == "done"
    (data, given, (soft, hard)), = seen
    assert (data, given, hard) == (b"data", limits, resource.RLIM_INFINITY)
    assert before + 8 <= soft <= before + 9


def test_a_task_never_raises_the_hard_cpu_limit(cpu_limit: None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda which: (0, 3))
    monkeypatch.setattr(resource, "setrlimit", lambda which, pair: calls.append((which, pair)))
    isolation._task(b"", LIMITS, lambda data, limits: None)
    assert calls == [(resource.RLIMIT_CPU, (3, 3))]


class _Exit(Exception):
    pass


def _exit(code: int) -> None:
    raise _Exit(code)


def test_a_worker_caps_its_memory_and_dies_with_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    limits_set: list[Any] = []
    prctl: list[Any] = []
    threads: list[Any] = []

    class Library:
        def __init__(self, name: Any, use_errno: bool) -> None:
            assert (name, use_errno) == (None, True)

        def prctl(self, option: int, sig: int) -> None:
            prctl.append((option, sig))

    class Thread:
        def __init__(self, *, target: Any, args: Any, daemon: bool) -> None:
            threads.append((target, args, daemon))

        def start(self) -> None:
            threads.append("started")

    import ctypes

    monkeypatch.setattr(resource, "setrlimit", lambda which, pair: limits_set.append((which, pair)))
    monkeypatch.setattr(ctypes, "CDLL", Library)
    monkeypatch.setattr(threading, "Thread", Thread)
    monkeypatch.setattr(os, "getppid", lambda: 4321)
    monkeypatch.setattr(os, "_exit", _exit)
    # The fast hex-string reader is a worker's, never this (test) process's.
    installs: list[bool] = []
    monkeypatch.setattr(hexstrings, "install", lambda: installs.append(True))
    isolation._initialise(replace(LIMITS, memory_bytes=12345))
    assert installs == [True]
    assert limits_set == [(resource.RLIMIT_AS, (12345, 12345))]
    assert prctl == []  # no PR_SET_PDEATHSIG: it follows the spawning thread, not the server
    assert threads == [(isolation._watch_parent, (4321,), True), "started"]


def test_the_watcher_exits_once_the_server_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    parents = iter([7, 7, 1])
    sleeps: list[float] = []
    monkeypatch.setattr(os, "getppid", lambda: next(parents))
    monkeypatch.setattr(time, "sleep", sleeps.append)
    monkeypatch.setattr(os, "_exit", _exit)
    with pytest.raises(_Exit) as exited:
        isolation._watch_parent(7)
    assert (exited.value.args, sleeps) == ((0,), [1, 1])


def test_busy_is_try_later() -> None:
    assert isolation._busy() == Inspection(
        False, "limits", "核验繁忙，请稍后重试 / too many uploads being checked; try again shortly",
        Indication.INDETERMINATE, SubIndication.TRY_LATER)


def test_each_inspector_owns_its_pool_and_starts_no_worker_until_used() -> None:
    limits = replace(LIMITS, wall_seconds=19.0)
    first, other = Inspector(limits), Inspector(limits, max_tasks_per_child=5)
    pool = first._executor()
    try:
        assert first._executor() is pool and other._executor() is not pool
        assert (pool._max_workers, pool._mp_context.get_start_method(), pool._initializer,
                pool._initargs, pool._max_tasks_per_child) == (
            1, "spawn", isolation._initialise, (limits,), 200)
        assert other._executor()._max_tasks_per_child == 5
        assert not pool._processes
    finally:
        first._discard(pool)
        other.close()
    assert first._pool is None and other._pool is None
    assert first._executor() is not pool
    with first:
        pass
    assert first._pool is None


# ----- real workers -----

def _exit_worker(data: bytes, limits: Limits) -> Inspection:
    os._exit(3)


def _unpicklable(data: bytes, limits: Limits) -> Any:
    return threading.Lock()


def _crash_once(data: bytes, limits: Limits) -> str:
    """Crashes the worker the first time (``data`` names a marker file), answers the second."""
    marker = data.decode()
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    return "second attempt"


def _length(data: bytes, limits: Limits) -> int:
    return len(data) + limits.max_pages


@pytest.fixture(scope="module")
def inspector() -> Iterator[Inspector]:
    inspector = Inspector(replace(LIMITS, wall_seconds=60.0), max_tasks_per_child=50)
    yield inspector
    inspector.close()


def test_a_file_is_inspected_and_examined_in_a_worker(inspector: Inspector) -> None:
    assert inspector.inspect(blank()) == Inspection(True, objects=4, pages=1)
    assert inspector.inspect(broken_signature()) == UNREADABLE_SIGNATURE
    facts = inspector.examine(sealed(1), anchors(), moment=MOMENT)
    assert isinstance(facts, SignatureFacts)
    assert (facts.moment, facts.docmdp, facts.intact, facts.valid, facts.trusted,
            facts.signer_serial) == (MOMENT, 1, True, True, True, 4242)
    assert inspector.examine(broken_signature(), anchors(), moment=MOMENT) == UNREADABLE_SIGNATURE
    assert inspector._run(b"abc", time.monotonic() + 30, _length) == 13


def test_revocations_and_tolerance_reach_the_worker(inspector: Inspector) -> None:
    from tests.security import examined_pdfs as pdfs

    data = pdfs.archived(("tsa", pdfs.ARCHIVED))
    revoked = [Revocation(pdfs.TSA_SERIAL, pdfs.ARCHIVED + timedelta(seconds=1), "keyCompromise")]
    facts = inspector.examine(data, pdfs.anchors(), moment=MOMENT, revoked=iter(revoked),
                              tolerance=timedelta(seconds=1))
    assert isinstance(facts, SignatureFacts)
    assert (facts.error, facts.archive.proof_time) == (None, None)
    assert facts.archive.detail == (
        "document timestamp of 2026-01-10T08:00:00+00:00 revoked at 2026-01-10T08:00:01+00:00 "
        "(keyCompromise)")


def test_a_result_that_cannot_cross_back_is_malformed(inspector: Inspector) -> None:
    assert inspector._run(b"", time.monotonic() + 30, _unpicklable) == malformed(
        "无法解析 / checking the file failed: TypeError")


def test_a_shut_down_pool_is_replaced(inspector: Inspector, monkeypatch: pytest.MonkeyPatch) -> None:
    warm = inspector._executor()
    dead = ProcessPoolExecutor(max_workers=1)
    dead.shutdown()
    pools = iter([dead, warm])
    monkeypatch.setattr(Inspector, "_executor", lambda self: next(pools))
    assert inspector.inspect(blank()) == Inspection(True, objects=4, pages=1)


def test_a_task_whose_pool_broke_is_tried_once_more(inspector: Inspector, tmp_path: Any) -> None:
    pool = inspector._executor()
    marker = str(tmp_path / "crashed")
    assert inspector._run(marker.encode(), time.monotonic() + 60, _crash_once) == "second attempt"
    assert os.path.exists(marker)
    assert inspector._executor() is not pool


def test_a_looping_worker_is_killed_at_the_deadline(inspector: Inspector) -> None:
    inspector.inspect(blank())  # a warm worker
    pool = inspector._executor()
    (process,) = pool._processes.values()
    started = time.monotonic()
    answer = inspector._run(b"", started + 0.1, isolation._spin)
    assert answer == limit("处理超时 / checking the file took longer than 60 s")
    assert time.monotonic() - started < 0.9  # the deadline, not a second more
    # The pool's own thread may reap the killed worker at the same moment as this join: then
    # one of the two sees it alive for an instant, so look again until 5 s have passed.
    gone_by = time.monotonic() + 5
    while process.is_alive() and time.monotonic() < gone_by:
        process.join(0.05)
    assert not process.is_alive()
    assert inspector._pool is not pool


@pytest.mark.parametrize("after", [0, 1], ids=["at-the-deadline", "past-it"])
def test_a_crash_at_or_past_the_deadline_is_not_retried(
    inspector: Inspector, monkeypatch: pytest.MonkeyPatch, after: int
) -> None:
    """The clock as ``_run`` reads it: the worker is given until 100; it crashes, and by then
    the deadline has come, so the upload is answered without a second attempt."""
    readings = iter([0.0, 100.0 + after])
    monkeypatch.setattr(isolation, "time", SimpleNamespace(monotonic=lambda: next(readings)))
    pool = inspector._executor()
    answer = inspector._run(b"", 100.0, _exit_worker)
    assert answer == limit(
        "核验进程被终止（资源超限）/ the checking process was ended by a resource limit")
    assert inspector._pool is not pool


def test_a_crashing_worker_is_indeterminate_after_one_retry(inspector: Inspector) -> None:
    pool = inspector._executor()
    answer = inspector._run(b"", time.monotonic() + 60, _exit_worker)
    assert answer == limit(
        "核验进程被终止（资源超限）/ the checking process was ended by a resource limit")
    assert inspector._pool is not pool
