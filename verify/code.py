"""Verification of a scanned QR code: the code names a licence; the repository says what it is."""

from __future__ import annotations

from sqlmodel import Session

from core.clock import Clock
from licences.links import code_from_text
from licences.models import LicenceStatus
from licences.repository import effective_status, full_record, licence_by_code
from verify.pdf import STATUS_FAILURES
from verify.report import MESSAGES, Check, CheckResult, Indication, Report, SubIndication
from verify.summary import licence_summary, seal_summary


class CodeVerifier:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def verify(self, session: Session, text: str, channel: str = "qr") -> Report:
        now = self._clock.now()
        code = code_from_text(text)
        licence = licence_by_code(session, code) if code else None
        if licence is None:
            return Report(
                indication=Indication.FAILED,
                sub_indication=SubIndication.UNKNOWN_CODE,
                message=MESSAGES[SubIndication.UNKNOWN_CODE],
                checks=(
                    Check("code", CheckResult.FAILED, "no licence has this verification code"),
                ),
                validated_at=now,
                channel=channel,
            )
        record = full_record(session, licence)
        checks = [Check("code", CheckResult.PASSED, f"code names licence {licence.identifier}")]
        status = effective_status(licence, now.date())
        sub: SubIndication | None
        if status is LicenceStatus.VALID:
            checks.append(Check("status", CheckResult.PASSED, status.label))
            indication, sub = Indication.PASSED, None
        else:
            checks.append(Check("status", CheckResult.FAILED, status.label))
            indication, sub = Indication.FAILED, STATUS_FAILURES[status]
        return Report(
            indication=indication,
            sub_indication=sub,
            message=MESSAGES[sub],
            checks=tuple(checks),
            validated_at=now,
            channel=channel,
            licence=licence_summary(record, now.date()),
            seal=seal_summary(record, licence.issued_at.isoformat()),
        )
