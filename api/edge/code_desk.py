"""The event loop's side of the QR desk (``verify.desk``): a request awaits its check without
holding a thread, and a batch's answers reach the loop with one wake-up.

The desk runs each job's ``finish`` on its own thread; here that puts the outcome in a mailbox
of the request's loop, and only the first outcome of a batch schedules the loop's call that
hands them all out (``call_soon_threadsafe`` writes to the loop's wake-up pipe: once a batch,
not once a check). A code a recognised domain must answer (:class:`verify.desk.Unsettled`)
goes on in the thread pool: the peer is asked, the verification recorded, as the blocking path
does.
"""

from __future__ import annotations

import asyncio
import time
from threading import Lock

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from api.edge.observability import Metrics
from api.edge.state import services_of
from core.errors import ElicenceError
from verify.desk import CodeJob, Outcome, Unsettled
from verify.report import Report


class _Mailbox:
    """Outcomes for one event loop, handed out in one call of the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = Lock()
        self._waiting: list[tuple[asyncio.Future[Outcome], Outcome]] = []

    def post(self, future: asyncio.Future[Outcome], outcome: Outcome) -> None:
        with self._lock:
            first = not self._waiting
            self._waiting.append((future, outcome))
        if first:
            self._loop.call_soon_threadsafe(self._hand_out)

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
            del _MAILBOXES[known]  # a finished loop (tests start one per client)
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
    services.code_desk.submit(
        CodeJob(
            text=text,
            channel=channel,
            actor=actor,
            request_id=request_id,
            source=source,
            finish=lambda outcome: mailbox.post(future, outcome),
        )
    )
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
