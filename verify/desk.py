"""The QR desk: scanned codes checked a batch at a time, each batch's records written in one
transaction.

A QR check is short (a signature, one read of the record, one audited write), and a busy
counter sends many at once. Handed to the thread pool one by one, each check paid for its own
hand-off, woke its own thread and fought the other threads and the event loop for the
interpreter, and that cost more than the check itself (``docs/scaling.md``). Here the checks
that arrive together are taken together (up to ``batch``): their records read in one statement,
each checked against the repository, and all their log rows and audit entries written in one
transaction (``verify.log.Recorder``) before any of them is answered: an answer is still given
only once its own record has committed.

Where a batch runs depends on the database:

* in this process (SQLite): on the caller's thread, the event loop's (:meth:`CodeDesk.
  serve_here`). A read there is a call, never a wait; a write that would wait (another
  connection holds the write lock, or an audit checkpoint is to be signed by a key service)
  is left to the desk's own thread, and those scans are answered from there;
* over the network (PostgreSQL): on the event loop, which awaits the round trips over a
  connection of its own (``verify.loop_desk``) and hands this desk what may wait (:meth:`CodeDesk.
  submit`, :meth:`CodeDesk.write_later`); with a replica, or for what it hands over, on the
  desk's own thread, which waits on the server: the checks that need nothing more from it are
  handed back to the job's ``elsewhere`` (the event loop, ``api.edge.code_desk``) while the
  thread waits, so the two threads never compete for the interpreter over a batch's
  signatures and rules.

What the desk does not do: anything that waits on a peer. A check that leaves room for a
recognised domain (``verify.foreign``) is answered :class:`Unsettled`, and the caller asks the
peer and records the answer on a thread of its own (``VerificationService.verify_code``'s
path), so a slow peer never holds up the other checks in the queue.

The desk knows nothing of the event loop: each job carries its own ``finish`` callable, run on
the thread that settles the job (``api.edge.code_desk`` turns it into the awaiting request's
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
from verify.service import RunElsewhere, VerificationService

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
    finish: Callable[[Outcome], None]  # run once, on the thread that settles the job
    # Where the batch's checks that need no further read run (``VerificationService.
    # check_codes``): the submitting event loop's thread; None, the desk's own.
    elsewhere: RunElsewhere | None = None


@dataclass(frozen=True)
class _Write:
    """Records checked on the event loop whose write would have waited there."""

    settled: list[tuple[CodeJob, Report]]
    records: list[Verification]


class CodeDesk:
    """Checks codes on one thread of its own, started at the first job and ended by
    :meth:`close`; or, for a database in this process, on the caller's (:meth:`serve_here`)."""

    def __init__(self, service: VerificationService, batch: int = BATCH) -> None:
        self._service = service
        self._batch = batch
        self._jobs: deque[CodeJob | _Write] = deque()
        self._ready = Condition()
        self._thread: Thread | None = None
        self._closed = False

    @property
    def in_process(self) -> bool:
        """Whether :meth:`serve_here` may be called from an event loop: the database is a file
        this process opens, so a batch's reads never wait."""
        return self._service.in_process

    @property
    def service(self) -> VerificationService:
        return self._service

    def submit(self, job: CodeJob) -> None:
        self._queue(job)

    def write_later(
        self, settled: list[tuple[CodeJob, Report]], records: list[Verification]
    ) -> None:
        """``records`` written on the desk's thread, where a write may wait (on another writer,
        or on a key service for an audit checkpoint); each of ``settled`` answered once they
        have committed. Raises RuntimeError, nothing queued, when the desk is closed."""
        self._queue(_Write(settled, records))

    def serve_here(self, jobs: list[CodeJob]) -> None:
        """``jobs`` (at most ``batch``) checked and recorded on this thread, as the desk's own
        thread would: for an event loop, with the database in this process. Nothing here waits
        on another writer: a write that would wait (another connection holds the write lock,
        or an audit checkpoint is due) goes to the desk's thread, and those jobs are answered
        from there once it has committed."""
        checked = self._check(jobs, None)
        if checked is None:
            return
        settled, records = checked
        try:
            written = self._service.record_now(records)
        except Exception as exc:  # nothing committed: no check in the batch is answered
            for job, _ in settled:
                answer(job, exc)
            return
        if not written:
            try:
                self.write_later(settled, records)
            except RuntimeError as exc:  # the desk is closed: nothing was written
                for job, _ in settled:
                    answer(job, exc)
            return
        for job, report in settled:
            answer(job, report)

    def _queue(self, item: CodeJob | _Write) -> None:
        with self._ready:
            if self._closed:
                raise RuntimeError("the QR desk is closed")
            self._jobs.append(item)
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
                first = self._jobs.popleft()
                jobs: list[CodeJob] = []
                if isinstance(first, CodeJob):
                    jobs.append(first)
                    while self._jobs and len(jobs) < self._batch:
                        if not isinstance(self._jobs[0], CodeJob):
                            break
                        jobs.append(self._jobs.popleft())  # type: ignore[arg-type]
            if isinstance(first, _Write):
                self._record(first.settled, first.records)
            else:
                self._serve(jobs)

    def _serve(self, jobs: list[CodeJob]) -> None:
        """The batch's records read together, each job checked alone (one bad code fails only
        its own job); the records of the settled ones written together, every answer given
        after their commit."""
        checked = self._check(jobs, jobs[0].elsewhere)
        if checked is not None:
            self._record(*checked)

    def _check(
        self, jobs: list[CodeJob], elsewhere: RunElsewhere | None
    ) -> tuple[list[tuple[CodeJob, Report]], list[Verification]] | None:
        """The jobs checked; those settled here, with their records (None: none to write).
        A job that failed, or that a recognised domain must answer, is answered already."""
        service = self._service
        try:
            reports = service.check_codes([(job.text, job.channel) for job in jobs], elsewhere)
        except Exception as exc:  # the batch's read: every job gets the answer
            for job in jobs:
                answer(job, exc)
            return None
        settled: list[tuple[CodeJob, Report]] = []
        records: list[Verification] = []
        for job, report in zip(jobs, reports, strict=True):
            sort_checked(service, job, report, settled, records)
        return (settled, records) if records else None

    def _record(self, settled: list[tuple[CodeJob, Report]], records: list[Verification]) -> None:
        try:
            self._service.record(records)
        except Exception as exc:  # nothing committed: no check in the batch is answered
            for job, _ in settled:
                answer(job, exc)
            return
        for job, report in settled:
            answer(job, report)


def sort_checked(
    service: VerificationService,
    job: CodeJob,
    report: Report | Exception,
    settled: list[tuple[CodeJob, Report]],
    records: list[Verification],
) -> None:
    """A checked job answered now (its error, or :class:`Unsettled` for a recognised domain
    to answer), or added to ``settled`` with its record in ``records``, to be answered once
    that has committed."""
    if isinstance(report, Exception):
        answer(job, report)
    elif service.consults_peer(report):
        answer(job, Unsettled(report))
    else:
        records.append(service.code_record(job.text, report, job.actor, job.request_id, job.source))
        settled.append((job, report))


def answer(job: CodeJob, outcome: Outcome) -> None:
    try:
        job.finish(outcome)
    except Exception:  # the caller's hook: its failure must not stop the desk
        LOG.exception("a QR desk answer could not be delivered")
