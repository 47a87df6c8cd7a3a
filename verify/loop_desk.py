"""The QR desk's batches on an event loop, for PostgreSQL: a batch's read and its write go over
an asynchronous connection of the loop's own, and no second thread competes with the loop for
the interpreter.

Why: with the desk's thread making the round trips (``verify.desk``), that thread and the event
loop traded the interpreter at every wait on the network (each of psycopg's, and the hand-back
of the checks): two context switches a scan, and a PostgreSQL worker verified 0.84–0.90 of what
a SQLite worker did (``docs/scaling.md``). Here a batch is one task on the loop: its read and
its write are awaited, and the loop parses the next requests meanwhile.

Only what needs nothing but the batch's read is done here: a signed payload whose licence the
read found and whose QR key is listed already (``VerificationService.check_known``), its record
written quietly (one statement, its own transaction: ``core.audit_pg.QuietWrite``). The rest
goes to the desk's thread, where a wait does no harm:

* a scan whose check reads more or asks the key store (a random code, a stamped copy, a key id
  not listed, a licence the read did not find): :meth:`CodeDesk.submit`;
* records whose write is not quiet (an audit checkpoint is due, an observer may act on an entry,
  this process has not written the chain yet, or another writer moved its head):
  :meth:`CodeDesk.write_later`;
* a whole batch whose read failed (the connection lost, the server restarting) or named a seal
  image version this process has not read: every scan to :meth:`CodeDesk.submit`, which reads
  through the pool and answers a database that is down as the blocking path does.

A write that fails on the connection is answered as the thread's would be (the database
unavailable) and never retried here: one statement, it committed whole or not at all, and a
retry could record a verification twice.

One batch at a time: the read of the next one waits for the write of this one on the one
connection, and a second batch written from the same remembered head would only be refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import replace
from typing import Any

from core.audit_pg import moved
from core.errors import Unavailable
from verify.code import unverified
from verify.desk import BATCH, CodeDesk, CodeJob, Outcome, answer, sort_checked
from verify.log import Verification
from verify.report import Report

LOG = logging.getLogger(__name__)
RECONNECT_SECONDS = 1.0  # after a failed connection, the desk's thread serves this long


class LoopDesk:
    """One event loop's QR batches on PostgreSQL, over one asynchronous connection; made, fed
    and closed on that loop's thread (``api.edge.code_desk``)."""

    def __init__(self, desk: CodeDesk) -> None:
        self._desk = desk
        self._service = desk.service
        self._jobs: list[CodeJob] = []
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None  # psycopg.AsyncConnection, in autocommit
        self._cursors: tuple[Any, Any] = (None, None)  # binary for the read, text for the write
        self._reconnect_at = 0.0
        self._closed = False

    def add(self, job: CodeJob) -> None:
        """``job`` in the next batch this loop serves."""
        if self._closed:
            self._to_thread([job])
            return
        self._jobs.append(job)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        """The queued batches served, then the connection closed."""
        self._closed = True
        if self._task is not None:
            await self._task
        await self._drop()

    def discard(self) -> None:
        """The loop has closed: its jobs go to the desk's thread from now on, and the
        connection ends without it."""
        self._closed = True
        self._forget()

    def _forget(self) -> None:
        """The connection ended with no wait: nothing sent but libpq's goodbye."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            connection.pgconn.finish()

    async def _run(self) -> None:
        try:
            while self._jobs:
                jobs, self._jobs = self._jobs[:BATCH], self._jobs[BATCH:]
                try:
                    await self._serve(jobs)
                except Exception as exc:  # a fault of this desk's: no scan may wait for ever
                    LOG.exception("a QR batch on the event loop failed")
                    for job in jobs:  # one already answered keeps its answer (the edge's)
                        answer(job, exc)
        finally:
            self._task = None

    async def _serve(self, jobs: list[CodeJob]) -> None:
        service = self._service
        payloads = [unverified(job.text) for job in jobs]
        known = await self._read(payloads)
        later: list[CodeJob] = []
        settled: list[tuple[CodeJob, Report]] = []
        records: list[Verification] = []
        for job, payload in zip(jobs, payloads, strict=True):
            try:
                report = service.check_known(job.text, job.channel, known, payload)
                if report is None:
                    later.append(job)
                else:
                    sort_checked(service, job, report, settled, records)
            except Exception as exc:  # this scan's answer alone
                answer(job, exc)
        self._to_thread(later)
        if records:
            await self._write(settled, records)

    async def _read(self, payloads: list[Any]) -> dict[str, Any]:
        """The records the batch names, by identifier. Empty when the read could not be made
        here (no connection, a failed read, a seal image version not read yet) or the batch
        names none: every scan then goes to the desk's thread, which reads for itself."""
        query = self._service.batch_query(payloads)
        if query is None or not await self._connected():
            return {}
        try:
            cursor = self._cursors[0]
            await cursor.execute(*query)
            rows = await cursor.fetchall()
        except asyncio.CancelledError:  # the loop is ending: the statement's fate is unknown
            self._forget()
            raise
        except Exception as exc:  # the connection lost, or the server refusing: the pool's turn
            LOG.warning(
                "the loop's QR read failed, the desk's thread reads: %s", type(exc).__name__
            )
            await self._drop()
            return {}
        return self._service.known_from(rows) or {}

    async def _write(
        self, settled: list[tuple[CodeJob, Report]], records: list[Verification]
    ) -> None:
        """The records written quietly from here, as far as they are quiet. An audit
        checkpoint due among them is written (and signed) on the desk's thread, alone, and the
        records after it wait for it here, then go on quietly; records an observer may act on
        go to the thread with everything after them, in one write, as before."""
        while records:
            try:
                quiet, checkpoint = self._service.quiet_run(records)
            except Exception as exc:  # nothing sent: each scan of the batch gets the error
                self._answer_all(settled, exc)
                return
            if quiet:
                if not await self._write_quietly(settled[:quiet], records[:quiet]):
                    self._write_later(settled, records)  # the head moved, or no connection
                    return
                settled, records = settled[quiet:], records[quiet:]
            if not records:
                return
            if not checkpoint:
                self._write_later(settled, records)
                return
            await self._written_there(*settled[0], records[0])
            settled, records = settled[1:], records[1:]

    async def _write_quietly(
        self, settled: list[tuple[CodeJob, Report]], records: list[Verification]
    ) -> bool:
        """True: written and answered, or answered with the error of a write that failed.
        False: nothing written (the head moved, or no connection); the caller hands them on."""
        service = self._service
        try:
            write = service.quiet_write(records)
        except Exception as exc:  # nothing sent
            self._answer_all(settled, exc)
            return True
        if write is None or self._connection is None:
            return False
        try:
            cursor = self._cursors[1]
            await cursor.execute(write.statement, write.params)
            written = moved(await cursor.fetchone())
        except asyncio.CancelledError:  # the loop is ending: the statement's fate is unknown
            self._forget()
            raise
        except Exception as exc:  # committed whole or not at all; never sent again
            await self._drop()
            self._answer_all(settled, _unavailable(exc))
            return True
        if not written:  # another writer moved the head: nothing was written
            return False
        service.quietly_written(write)
        for job, report in settled:
            answer(job, report)
        return True

    async def _written_there(self, job: CodeJob, report: Report, record: Verification) -> None:
        """``record`` (the entry an audit checkpoint is due at) written on the desk's thread,
        this batch waiting for its answer (the loop goes on meanwhile): the entries after it
        follow on the head it leaves."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        def finish(outcome: Outcome) -> None:
            try:
                job.finish(outcome)
            finally:
                with suppress(RuntimeError):  # the loop has closed: nobody waits
                    loop.call_soon_threadsafe(wake)

        self._write_later([(replace(job, finish=finish), report)], [record])
        await done

    async def _connected(self) -> bool:
        connection = self._connection
        if connection is not None and not connection.closed:
            return True
        if time.monotonic() < self._reconnect_at:
            return False
        try:
            connection = await self._service.connect()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            LOG.warning("the loop's QR connection failed, the desk's thread serves: %s", exc)
            self._reconnect_at = time.monotonic() + RECONNECT_SECONDS
            return False
        self._connection = connection
        self._cursors = (connection.cursor(binary=True), connection.cursor())
        return True

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:  # closing a broken connection: nothing left to do
                LOG.debug("closing the loop's QR connection failed", exc_info=True)

    def _to_thread(self, jobs: list[CodeJob]) -> None:
        for job in jobs:
            try:
                self._desk.submit(job)
            except RuntimeError as exc:  # the desk is closed
                answer(job, exc)

    def _write_later(
        self, settled: list[tuple[CodeJob, Report]], records: list[Verification]
    ) -> None:
        try:
            self._desk.write_later(settled, records)
        except RuntimeError as exc:  # the desk is closed: nothing was written
            self._answer_all(settled, exc)

    @staticmethod
    def _answer_all(settled: list[tuple[CodeJob, Report]], outcome: BaseException) -> None:
        for job, _ in settled:
            answer(job, outcome)


def _unavailable(exc: Exception) -> Exception:
    import psycopg

    if isinstance(exc, psycopg.OperationalError):
        return Unavailable(
            "数据库暂不可用，请稍后重试 / the database is unavailable, please retry",
            cause=str(exc),
        )
    return exc
