"""The QR desk: one thread per process that checks scanned codes in turns, a batch at a time.

A QR check is short (a signature, one read of the record, one audited write), and a busy
counter sends many at once. Handed to the thread pool one by one, each check paid for its own
hand-off, woke its own thread and fought the other threads and the event loop for the
interpreter, and that cost more than the check itself (``docs/scaling.md``). Here the checks
that arrive while the desk is busy wait in one queue; the desk takes them all (up to
``batch``), checks each against the repository, and writes all their log rows and audit
entries in one transaction (``verify.log.Recorder.record_many``) before it answers any of them:
an answer is still given only once its own record has committed, as before.

What the desk does not do: anything that waits on the network. A check that leaves room for a
recognised domain (``verify.foreign``) is answered :class:`Unsettled`, and the caller asks the
peer and records the answer on a thread of its own (``VerificationService.verify_code``'s
path), so a slow peer never holds up the other checks in the queue.

The desk knows nothing of the event loop: each job carries its own ``finish`` callable, run on
the desk's thread with the outcome (``api.edge.code_desk`` turns it into the awaiting request's
answer).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from threading import Condition, Thread

from verify.log import Verification
from verify.report import Report
from verify.service import VerificationService

LOG = logging.getLogger(__name__)
BATCH = 32  # checks a transaction: bounds how long the first of them waits for the last


@dataclass(frozen=True)
class Unsettled:
    """The local answer leaves room for a recognised domain: the caller asks it (a network
    call, never on the desk) and records the verification itself."""

    report: Report


Outcome = Report | Unsettled | BaseException


@dataclass(frozen=True)
class CodeJob:
    text: str
    channel: str
    actor: str
    request_id: str | None
    source: str | None
    finish: Callable[[Outcome], None]  # run on the desk's thread, once


class CodeDesk:
    """Checks codes on one thread of its own, started at the first job and ended by
    :meth:`close`."""

    def __init__(self, service: VerificationService, batch: int = BATCH) -> None:
        self._service = service
        self._batch = batch
        self._jobs: deque[CodeJob] = deque()
        self._ready = Condition()
        self._thread: Thread | None = None
        self._closed = False

    def submit(self, job: CodeJob) -> None:
        with self._ready:
            if self._closed:
                raise RuntimeError("the QR desk is closed")
            self._jobs.append(job)
            if self._thread is None:
                self._thread = Thread(target=self._run, name="elicence-qr-desk", daemon=True)
                self._thread.start()
            elif len(self._jobs) == 1:
                self._ready.notify()  # idle, or about to look again: the first job wakes it

    def close(self) -> None:
        """Ends the thread once the jobs already queued are answered."""
        with self._ready:
            self._closed = True
            thread = self._thread
            self._ready.notify()
        if thread is not None:
            thread.join(10)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._jobs and not self._closed:
                    self._ready.wait()
                if not self._jobs:
                    return
                jobs = [self._jobs.popleft() for _ in range(min(self._batch, len(self._jobs)))]
            self._serve(jobs)

    def _serve(self, jobs: list[CodeJob]) -> None:
        """The batch's records read together, each job checked alone (one bad code fails only
        its own job); the records of the settled ones written together, every answer given
        after their commit."""
        service = self._service
        try:
            reports = service.check_codes([(job.text, job.channel) for job in jobs])
        except Exception as exc:  # the batch's read: every job gets the answer
            for job in jobs:
                _finish(job, exc)
            return
        settled: list[tuple[CodeJob, Report]] = []
        records: list[Verification] = []
        for job, report in zip(jobs, reports, strict=True):
            if isinstance(report, Exception):
                _finish(job, report)
            elif service.consults_peer(report):
                _finish(job, Unsettled(report))
            else:
                settled.append((job, report))
                records.append(
                    service.code_record(job.text, report, job.actor, job.request_id, job.source)
                )
        if not records:
            return
        try:
            service.record(records)
        except Exception as exc:  # nothing committed: no check in the batch is answered
            for job, _ in settled:
                _finish(job, exc)
            return
        for job, report in settled:
            _finish(job, report)


def _finish(job: CodeJob, outcome: Outcome) -> None:
    try:
        job.finish(outcome)
    except Exception:  # the caller's hook: its failure must not stop the desk
        LOG.exception("a QR desk answer could not be delivered")
