"""Runs a verification and records it: every verification leaves an audit entry and a row in
the verification log (``verify.log``), which the holder and the issuing department can read."""

from __future__ import annotations

import hashlib

from sqlalchemy.engine import Engine

from core.audit import AuditLog
from core.db import reading, transaction
from verify import log
from verify.code import CodeVerifier
from verify.isolation import Inspector
from verify.pdf import PdfVerifier
from verify.report import MESSAGES, Check, CheckResult, Indication, Report, SubIndication


class VerificationService:
    def __init__(
        self,
        *,
        engine: Engine,
        pdf: PdfVerifier,
        code: CodeVerifier,
        audit: AuditLog,
        inspector: Inspector | None = None,
    ) -> None:
        self._engine = engine
        self._pdf = pdf
        self._inspector = inspector
        self._code = code
        self._audit = audit

    @property
    def max_bytes(self) -> int:
        return self._pdf.max_bytes

    def verify_pdf(
        self, data: bytes, *, channel: str, actor: str, request_id: str | None = None
    ) -> Report:
        report = self._inspect(data, channel)
        if report is None:
            with reading(self._engine) as session:
                report = self._pdf.verify(session, data, channel)
        subject = (
            report.licence.identifier
            if report.licence
            else "sha256:" + hashlib.sha256(data).hexdigest()
        )
        self._record(report, subject, actor, request_id, "pdf")
        return report

    def _inspect(self, data: bytes, channel: str) -> Report | None:
        """The upload is parsed first in a limited worker process (``verify.isolation``); a file
        that is oversized, hostile or unparseable is answered from there and never reaches the
        parsers in this process."""
        if self._inspector is None:
            return None
        sub: SubIndication | None
        if len(data) > self._pdf.max_bytes:
            sub, message = SubIndication.LIMIT_EXCEEDED, None
            check = Check("format", CheckResult.FAILED, f"{len(data)} bytes > {self.max_bytes}")
            indication = Indication.INDETERMINATE
        else:
            found = self._inspector.inspect(data)
            if found.ok:
                return None
            sub, message, indication = found.sub, found.detail, found.indication
            check = Check(found.check, CheckResult.FAILED, found.detail)
        return Report(
            indication=indication,
            sub_indication=sub,
            message=message or MESSAGES[sub],
            checks=(check,),
            validated_at=self._pdf.now(),
            channel=channel,
        )

    def verify_code(
        self, text: str, *, channel: str, actor: str, request_id: str | None = None
    ) -> Report:
        with reading(self._engine) as session:
            report = self._code.verify(session, text, channel)
        # A payload whose signature held names its licence even when it failed later (an expired
        # presentation): the holder should see that someone scanned an old screenshot.
        named = report.licence.identifier if report.licence else report.extra.get("identifier")
        subject = str(named) if named else "unknown-code"
        self._record(report, subject, actor, request_id, str(report.extra.get("method", "qr")))
        return report

    def _record(
        self, report: Report, subject: str, actor: str, request_id: str | None, method: str
    ) -> None:
        with transaction(self._engine) as session:
            log.record(
                session,
                at=report.validated_at,
                identifier=None if subject.startswith(("sha256:", "unknown-")) else subject,
                channel=report.channel,
                method=method,
                indication=report.indication.value,
                sub_indication=report.sub_indication.value if report.sub_indication else None,
            )
            self._audit.append(
                session,
                actor=actor,
                action="licence.verify",
                object_type="licence",
                object_id=subject[:128],
                outcome=report.indication.value,
                request_id=request_id,
                detail={
                    "channel": report.channel,
                    "method": method,
                    "sub_indication": report.sub_indication.value
                    if report.sub_indication
                    else None,
                },
            )
