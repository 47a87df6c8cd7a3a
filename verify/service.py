"""Runs a verification and records it: every verification leaves an audit entry and a row in
the verification log (``verify.log``), which the holder and the issuing department can read."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from core.audit import AuditLog, Pending
from core.audit_pg import QuietWrite
from core.db import reading, unavailable
from core.roundtrips import connect_async
from licences.payload import Signed
from licences.repository import LicenceRecord
from verify import log
from verify.code import CodeVerifier, unverified
from verify.foreign import ForeignVerifier
from verify.foreign import applies as foreign_applies
from verify.isolation import Inspector
from verify.ofd import OfdVerifier, check_ofd
from verify.ofd_package import looks_like_zip
from verify.pdf import PdfVerifier
from verify.reads import ReadRoute
from verify.record_read import (
    MAX_BATCH,
    batch_query,
    read_without_transaction,
    records_by_identifier,
    records_from_rows,
)
from verify.report import Check, CheckResult, Indication, Report
from verify.structure import Inspection


def claimed_by(text: str) -> str | None:
    """The identifier an unverified code *claims* (its signature did not hold, or its key is
    not ours): not believed for the report, but recorded so that forgeries naming a real
    licence reach that licence's supervisors (``supervision.rules_verify``)."""
    signed = unverified(text)
    return None if signed is None else signed.claims.identifier


LOOP_CONNECTION = "elicence-qr-loop"  # an event loop's own connection (``verify.loop_desk``)

# Runs a batch's checks on another thread and returns what they returned (``verify.desk``).
RunElsewhere = Callable[[Callable[[], list[Report | Exception]]], list[Report | Exception]]


def _attempt(check: Callable[[], Report]) -> Report | Exception:
    try:
        return check()
    except OperationalError as exc:
        return unavailable(exc)
    except Exception as exc:  # this scan's answer alone
        return exc


class VerificationService:
    def __init__(
        self,
        *,
        engine: Engine,
        pdf: PdfVerifier,
        code: CodeVerifier,
        audit: AuditLog,
        inspector: Inspector | None = None,
        foreign: ForeignVerifier | None = None,
        replica: Engine | None = None,
        ofd: OfdVerifier | None = None,
    ) -> None:
        self._ofd = ofd  # OFD uploads (GB/T 33190 + GB/T 38540), told apart by content
        self._foreign = foreign  # recognised domains: asked when no local chain is found
        self._engine = engine  # the primary: every write, and what the replica lacks
        self._reads = ReadRoute(engine, replica)  # ``verify.reads``: where a check reads
        self._pdf = pdf
        self._inspector = inspector
        self._code = code
        self._audit = audit

    @property
    def max_bytes(self) -> int:
        return self._pdf.max_bytes

    def verify_pdf(
        self,
        data: bytes,
        *,
        channel: str,
        actor: str,
        request_id: str | None = None,
        source: str | None = None,
    ) -> Report:
        """``source``: the keyed source the edge computed from the client's address
        (``supervision.sources``), recorded for the repeated-failure alerts; never the address.
        A ZIP is an OFD upload (``verify.ofd``), whatever the file was named."""
        if self._ofd is not None and looks_like_zip(data):
            return self._verify_ofd(self._ofd, data, channel, actor, request_id, source)
        report = self._check_pdf(data, channel)
        if self._foreign is not None and foreign_applies(report):
            report = self._foreign.verify_pdf(data, report, channel) or report
        subject = (
            report.licence.identifier
            if report.licence
            else "sha256:" + hashlib.sha256(data).hexdigest()
        )
        self.record([self._verification(report, subject, actor, request_id, "pdf", source, None)])
        return report

    def _verify_ofd(
        self,
        ofd: OfdVerifier,
        data: bytes,
        channel: str,
        actor: str,
        request_id: str | None,
        source: str | None,
    ) -> Report:
        report = self._reads.answer(
            lambda engine: check_ofd(ofd, self._inspector, engine, data, channel),
            revocations=True,
        )
        subject = (
            report.licence.identifier
            if report.licence
            else "sha256:" + hashlib.sha256(data).hexdigest()
        )
        self.record([self._verification(report, subject, actor, request_id, "ofd", source, None)])
        return report

    def _check_pdf(self, data: bytes, channel: str) -> Report:
        return self._reads.answer(
            lambda engine: self._check_pdf_on(engine, data, channel), revocations=True
        )

    def _check_pdf_on(self, engine: Engine, data: bytes, channel: str) -> Report:
        """With isolation, the upload is parsed and validated in a limited worker process
        (``verify.isolation``): this process reads what the examination needs from the
        database, hands the bytes over, and decides from the facts that come back. A file that
        is hostile, unparseable or breaks a limit is answered from the worker's refusal and
        never reaches a parser here. Two short reads, so no database connection is held while
        the worker runs."""
        if self._inspector is None:
            with reading(engine) as session:
                return self._pdf.verify(session, data, channel)
        with reading(engine) as session:
            prepared = self._pdf.prepare(session, data, channel)
        if isinstance(prepared, Report):
            return prepared
        found = self._inspector.examine(
            prepared.data,
            prepared.anchors,
            moment=prepared.moment,
            revoked=prepared.revoked,
            tolerance=prepared.tolerance,
        )
        if isinstance(found, Inspection):
            check = Check(found.check, CheckResult.FAILED, found.detail)
            return self._pdf.refusal(check, found.indication, found.sub, found.detail, channel)
        with reading(engine) as session:
            return self._pdf.decide(session, prepared, found, channel)

    def verify_code(
        self,
        text: str,
        *,
        channel: str,
        actor: str,
        request_id: str | None = None,
        source: str | None = None,
    ) -> Report:
        report = self.check_code(text, channel)
        if self.consults_peer(report):
            report = self.ask_peer(text, report, channel)
        self.record([self.code_record(text, report, actor, request_id, source)])
        return report

    def check_code(self, text: str, channel: str) -> Report:
        """A code checked against this repository alone: the reads, no write."""
        return self._reads.answer(lambda engine: self._check_code(engine, text, channel))

    @property
    def in_process(self) -> bool:
        """Whether the database is a file this process opens (SQLite, no replica) and the QR
        keys are read here (``keys.store.in_this_process``): a check's reads are calls that
        never wait on the network, so an event loop may make them itself."""
        return (
            self._engine.dialect.name == "sqlite"
            and not self._reads.replicated
            and self._code.keys_in_process
        )

    def check_codes(
        self, scans: Sequence[tuple[str, str]], elsewhere: RunElsewhere | None = None
    ) -> list[Report | Exception]:
        """Each ``(text, channel)`` checked as :meth:`check_code` checks it, the records the
        scans name read together first (one statement for the batch). With a replica each
        check takes its own route (``verify.reads``: confirmed on the primary, one by one).
        A check that raises answers its own scan only.

        ``elsewhere``: runs the checks that need nothing more from the database or the key
        store (a signed payload whose licence the batch read found, its key listed already:
        ``CodeVerifier.checks_without_waiting``) on another thread, this one waiting —
        the event loop's, so that the signatures and rules of a batch are checked by the
        thread that parses the requests instead of competing with it for the interpreter
        (``verify.desk``). The other scans are checked here, where a read may wait."""
        if self._reads.replicated:
            return [_attempt(partial(self.check_code, text, channel)) for text, channel in scans]
        with reading(self._engine) as session:
            read_without_transaction(session)  # before the batch read: no BEGIN, no ROLLBACK
            payloads = [unverified(text) for text, _ in scans]  # decoded once, checked later
            named = [n for n in map(CodeVerifier.named, payloads) if n is not None]
            known = records_by_identifier(session, named) if named else {}

            code = self._code

            def check(n: int, listed_only: bool = False) -> Report | Exception:
                text, channel = scans[n]
                return _attempt(
                    partial(code.verify, session, text, channel, known, payloads[n], listed_only)
                )

            found: dict[int, Report | Exception] = {}
            if elsewhere is not None:
                away = [n for n, p in enumerate(payloads) if code.checks_without_waiting(p, known)]
                if away:
                    there = elsewhere(lambda: [check(n, True) for n in away])
                    found = dict(zip(away, there, strict=True))
            return [found[n] if n in found else check(n) for n in range(len(scans))]

    @property
    def over_network(self) -> bool:
        """Whether the database is PostgreSQL, through psycopg, with no replica: an event loop
        may then read a batch's records and write its verifications itself, over an
        asynchronous connection of its own (``verify.loop_desk``)."""
        dialect = self._engine.dialect
        return (
            dialect.name == "postgresql"
            and dialect.driver == "psycopg"
            and not self._reads.replicated
        )

    async def connect(self) -> Any:
        """A new asynchronous psycopg connection to the database, in autocommit."""
        return await connect_async(self._engine, LOOP_CONNECTION)

    def batch_query(self, payloads: Sequence[Signed | None]) -> tuple[str, dict[str, str]] | None:
        """The read of the records ``payloads`` name (:func:`unverified` of a batch's scans),
        as :meth:`check_codes` reads them; None: they name none."""
        named = [n for n in map(CodeVerifier.named, payloads) if n is not None]
        wanted = list(dict.fromkeys(named))[:MAX_BATCH]
        return batch_query(self._engine.dialect, wanted) if wanted else None

    def known_from(self, rows: Sequence[Sequence[Any]]) -> dict[str, LicenceRecord] | None:
        """The records :meth:`batch_query`'s rows hold (None: they need a read of their own)."""
        return records_from_rows(self._engine.url, rows)

    def check_known(
        self, text: str, channel: str, known: Mapping[str, LicenceRecord], payload: Signed | None
    ) -> Report | Exception | None:
        """``text`` checked as :meth:`check_code` checks it, if that needs nothing but ``known``
        and the QR keys listed already (``CodeVerifier.checks_without_waiting``): no read, no
        key-store call. None: it needs more, and :meth:`check_codes` is to check it."""
        code = self._code
        if not code.checks_without_waiting(payload, known):
            return None
        return _attempt(partial(code.verify, None, text, channel, known, payload, True))

    def quiet_write(self, records: list[log.Verification]) -> QuietWrite | None:
        """The records as one statement of their own (``verify.log.quiet_write``)."""
        return log.quiet_write(self._engine, self._audit, records)

    def quiet_run(self, records: list[log.Verification]) -> tuple[int, bool]:
        """How many of the records, from the first, :meth:`quiet_write` would take; and whether
        the next is held back only by an audit checkpoint (``verify.log.quiet_run``)."""
        return log.quiet_run(self._engine, self._audit, records)

    def quietly_written(self, write: QuietWrite) -> None:
        self._audit.quietly_written(self._engine, write)

    def record_now(self, records: list[log.Verification]) -> bool:
        """Writes the records now if that needs no wait (``verify.log.Recorder.record_now``);
        False: nothing written, :meth:`record` them elsewhere."""
        return log.recorder(self._engine, self._audit).record_now(records)

    def consults_peer(self, report: Report) -> bool:
        """Whether a recognised domain is to be asked before the answer is given: a call over
        the network, which ``verify.desk`` leaves to the thread pool."""
        return self._foreign is not None and foreign_applies(report)

    def ask_peer(self, text: str, report: Report, channel: str) -> Report:
        if self._foreign is None:
            return report
        return self._foreign.verify_code(text, report, channel) or report

    def code_record(
        self,
        text: str,
        report: Report,
        actor: str,
        request_id: str | None,
        source: str | None,
    ) -> log.Verification:
        """What a code's verification leaves: its log row and its audit entry."""
        # A payload whose signature held names its licence even when it failed later (an expired
        # presentation): the holder should see that someone scanned an old screenshot.
        named = report.licence.identifier if report.licence else report.extra.get("identifier")
        subject = str(named) if named else "unknown-code"
        method = str(report.extra.get("method", "qr"))
        claimed = None if named or report.indication is Indication.PASSED else claimed_by(text)
        return self._verification(report, subject, actor, request_id, method, source, claimed)

    def record(self, records: list[log.Verification]) -> None:
        """Writes the records, with group commit (``verify.log.Recorder``): they commit
        together, with whatever else this process's verifications have queued."""
        log.recorder(self._engine, self._audit).record_many(records)

    def _check_code(self, engine: Engine, text: str, channel: str) -> Report:
        with reading(engine) as session:
            return self._code.verify(session, text, channel)

    @staticmethod
    def _verification(
        report: Report,
        subject: str,
        actor: str,
        request_id: str | None,
        method: str,
        source: str | None,
        claimed: str | None,
    ) -> log.Verification:
        sub_indication = report.sub_indication.value if report.sub_indication else None
        detail: dict[str, str | None] = {
            "channel": report.channel,
            "method": method,
            "sub_indication": sub_indication,
        }
        if source is not None:
            detail["source"] = source[:32]
        if claimed is not None:
            detail["claimed"] = claimed[:96]
        return log.Verification(
            at=report.validated_at,
            identifier=None if subject.startswith(("sha256:", "unknown-")) else subject,
            channel=report.channel,
            method=method,
            indication=report.indication.value,
            sub_indication=sub_indication,
            audit=Pending(
                actor=actor,
                action="licence.verify",
                object_type="licence",
                object_id=subject[:128],
                outcome=report.indication.value,
                request_id=request_id,
                detail=detail,
            ),
        )
