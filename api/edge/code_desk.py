"""The event loop's side of the QR desk (``verify.desk``): a request awaits its check without
holding a thread, a batch's answers reach the loop with one wake-up, and the Python work of a
check (the signature, the rules, the report) runs on the loop's own thread.

Why the loop does the checking: a check handed to another Python thread competes with the loop
for the interpreter, and every call that lets go of it (each SQLite statement, each signature
verification) made the two threads trade it back and forth — five context switches a scan,
about a fifth of a QR request's CPU time (``docs/scaling.md``). So:

* with the database in this process (SQLite), the scans that arrive in one turn of the loop
  are checked and recorded right there, a batch at a time (:meth:`CodeDesk.serve_here
  <verify.desk.CodeDesk.serve_here>`); only a write that would wait for another writer goes
  to the desk's thread;
* with PostgreSQL (no replica), the loop reads and writes a batch itself over an asynchronous
  connection of its own, awaiting the round trips (``verify.loop_desk``); what may wait (a
  further read, a key-store call, an audit checkpoint) goes to the desk's thread;
* otherwise (a replica, or the QR keys in a key service), the desk's thread does the reads and
  the writes, and hands the batch's checks back to the loop in between (:func:`_on_loop`),
  waiting for them without holding the interpreter.

A code a recognised domain must answer (:class:`verify.desk.Unsettled`) goes on in the thread
pool: the peer is asked, the verification recorded, as the blocking path does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from threading import Lock, get_ident
from weakref import WeakKeyDictionary

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from api.edge.observability import Metrics
from api.edge.state import services_of
from core.errors import ElicenceError
from verify.desk import BATCH, CodeDesk, CodeJob, Outcome, Unsettled
from verify.loop_desk import LoopDesk
from verify.report import Report


class _Mailbox:
    """Outcomes for one event loop, handed out in one call of the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = get_ident()  # made by the loop's own thread (``_mailbox``)
        self._lock = Lock()
        self._waiting: list[tuple[asyncio.Future[Outcome], Outcome]] = []
        self.pending: list[CodeJob] = []  # scans of this turn, for a desk in this process
        self.networked: WeakKeyDictionary[CodeDesk, LoopDesk] = WeakKeyDictionary()

    def loop_desk(self, desk: CodeDesk) -> LoopDesk:
        """This loop's batches of ``desk`` over the network (``verify.loop_desk``)."""
        found = self.networked.get(desk)
        if found is None:
            found = self.networked[desk] = LoopDesk(desk)
        return found

    def post(self, future: asyncio.Future[Outcome], outcome: Outcome) -> None:
        with self._lock:
            first = not self._waiting
            self._waiting.append((future, outcome))
        if first:
            if get_ident() == self._thread:  # checked on the loop itself: no wake-up needed
                self._loop.call_soon(self._hand_out)
            else:
                self._loop.call_soon_threadsafe(self._hand_out)

    def check_pending(self, desk: CodeDesk) -> None:
        """The scans that came in this turn of the loop, checked here a batch at a time."""
        jobs, self.pending = self.pending, []
        for start in range(0, len(jobs), BATCH):
            batch = jobs[start : start + BATCH]
            try:
                desk.serve_here(batch)
            except Exception as exc:  # no request may wait for ever: a job answered keeps it
                for job in batch:
                    job.finish(exc)

    def _hand_out(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for future, outcome in waiting:
            if not future.done():  # the client went away: its check was still recorded
                future.set_result(outcome)


_MAILBOXES: dict[asyncio.AbstractEventLoop, _Mailbox] = {}
_MAILBOXES_LOCK = Lock()


def _mailbox(loop: asyncio.AbstractEventLoop) -> _Mailbox:
    with _MAILBOXES_LOCK:
        for known in [known for known in _MAILBOXES if known.is_closed()]:
            for ended in _MAILBOXES.pop(known).networked.values():  # tests start one per client
                ended.discard()
        found = _MAILBOXES.get(loop)
        if found is None:
            found = _MAILBOXES[loop] = _Mailbox(loop)
        return found


async def verify_code(
    request: Request, text: str, *, channel: str, actor: str, source: str | None
) -> Report:
    """The QR check of ``text`` for this request, recorded, as ``verify_code`` of the
    verification service would answer it."""
    services = services_of(request)
    metrics: Metrics = request.app.state.metrics
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Outcome] = loop.create_future()
    mailbox = _mailbox(loop)
    request_id = request.state.request_id
    desk = services.code_desk
    here = desk.in_process
    networked = not here and desk.service.over_network
    job = CodeJob(
        text=text,
        channel=channel,
        actor=actor,
        request_id=request_id,
        source=source,
        finish=lambda outcome: mailbox.post(future, outcome),
        elsewhere=None if here else partial(_on_loop, loop),
    )
    if here:
        if not mailbox.pending:
            loop.call_soon(mailbox.check_pending, desk)
        mailbox.pending.append(job)
    elif networked:
        mailbox.loop_desk(desk).add(job)
    else:
        desk.submit(job)
    outcome = await future
    if isinstance(outcome, Unsettled):
        outcome = await run_in_threadpool(
            _settle, request, text, outcome.report, channel, actor, source
        )
    if isinstance(outcome, BaseException):
        raise _own(outcome) from outcome
    metrics.verifications.labels(channel, outcome.indication.value).inc()
    metrics.verify_seconds.labels(channel).observe(time.perf_counter() - started)
    return outcome


async def close_loop_desks() -> None:
    """This loop's batches over the network served and their connections closed: at the end
    of the application's life (its lifespan), before the desk itself closes."""
    found = _MAILBOXES.get(asyncio.get_running_loop())
    if found is not None:
        for loop_desk in list(found.networked.values()):
            await loop_desk.aclose()


LOOP_WAIT = 1.0  # seconds the desk's thread waits for a busy loop before checking itself

Checks = Callable[[], list[Report | Exception]]


def _on_loop(loop: asyncio.AbstractEventLoop, checks: Checks) -> list[Report | Exception]:
    """``checks`` run on ``loop``'s thread, this (the desk's) thread waiting for them. A loop
    that is closed, or does not take them within :data:`LOOP_WAIT` (it is stopping, and may be
    waiting for the desk), leaves them to this thread; they run once, wherever they start."""
    done: Future[list[Report | Exception]] = Future()
    claim = Lock()

    def run() -> None:
        if not claim.acquire(blocking=False):
            return  # taken back by the desk's thread
        try:
            done.set_result(checks())
        except BaseException as exc:  # the desk answers each scan; this is the batch's
            done.set_exception(exc)

    try:
        loop.call_soon_threadsafe(run)
    except RuntimeError:  # the loop is closed
        return checks()
    try:
        return done.result(LOOP_WAIT)
    except FutureTimeout:
        if claim.acquire(blocking=False):
            return checks()
        return done.result()  # started on the loop meanwhile: it finishes there


def _settle(
    request: Request, text: str, report: Report, channel: str, actor: str, source: str | None
) -> Report:
    service = services_of(request).verification
    answer = service.ask_peer(text, report, channel)
    record = service.code_record(text, answer, actor, request.state.request_id, source)
    service.record([record])
    return answer


def _own(error: BaseException) -> BaseException:
    """The error for this request alone: one desk error may answer a whole batch, and raising
    the same object from every request would tangle their tracebacks."""
    if isinstance(error, ElicenceError):
        return type(error)(
            error.message, kind=error.kind, field=error.field, extra=error.extra, cause=error.cause
        )
    return RuntimeError("verifying the code failed")
