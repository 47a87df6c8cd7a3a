"""The one pipeline every verification runs through: named checks in order, the first failure
decides (ETSI EN 319 102-1: indication PASSED / FAILED / INDETERMINATE and a sub-indication),
and one report built from what the checks found.

PDF uploads (``verify.pdf``), scanned QR codes online (``verify.code``) and offline
(``verify.offline``), and licences of recognised domains (``verify.foreign``) all collect their
checks in a :class:`Steps`, stop with the :class:`Stop` it hands out, and end in
:func:`build_report`. The rules themselves (``verify.rules``, ``verify.ltv``) are pure and
return a :class:`Verdict`, which ``Steps.apply`` records.

What a failure says to the person at the counter depends on what was verified: a seal's
wording (``MESSAGES``) for a PDF, a QR code's (``QR_MESSAGES`` first) for a scanned code — a
broken QR signature may be a forgery, a broken seal signature is a damaged or altered file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from licences.repository import LicenceRecord
from verify.report import (
    MESSAGES,
    QR_MESSAGES,
    Check,
    CheckResult,
    DomainSummary,
    Indication,
    LicenceSummary,
    Recognition,
    Report,
    SealSummary,
    SubIndication,
)

Wording = Callable[[SubIndication], str]


def seal_wording(sub: SubIndication) -> str:
    """The message for a seal (a PDF upload, a foreign seal)."""
    return MESSAGES[sub]


def qr_wording(sub: SubIndication) -> str:
    """The message for a scanned code: a QR code's own wording where it differs from a seal's."""
    return QR_MESSAGES.get(sub) or MESSAGES[sub]


@dataclass(frozen=True)
class Verdict:
    """What one pure rule found: its check, and the failure that ends the pipeline, if any
    (indication, sub-indication, and a message when the sub-indication's usual one will not do).
    """

    check: Check
    failure: tuple[Indication, SubIndication, str | None] | None = None


class Stop(Exception):
    """Ends the pipeline at the first decisive check."""

    def __init__(self, indication: Indication, sub: SubIndication | None, message: str) -> None:
        super().__init__(indication.value, sub)
        self.indication, self.sub, self.message = indication, sub, message


@dataclass
class Steps:
    """The checks made so far, and what the report will show once the repository (or the
    issuing domain) has named the licence. ``fail`` returns the :class:`Stop` to raise."""

    checks: list[Check] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    record: LicenceRecord | None = None  # set once the repository has named the licence
    signing_time: str | None = None  # the seal's self-reported signing time
    timestamp: str | None = None  # the sealing time a trusted timestamp proves
    wording: Wording = seal_wording

    def ok(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, CheckResult.PASSED, detail))

    def fail(
        self,
        name: str,
        detail: str,
        indication: Indication,
        sub: SubIndication,
        message: str | None = None,
    ) -> Stop:
        self.checks.append(Check(name, CheckResult.FAILED, detail))
        return Stop(indication, sub, message or self.wording(sub))

    def apply(self, verdict: Verdict) -> None:
        """Record a rule's check; raise its failure, worded for what is being verified."""
        self.checks.append(verdict.check)
        if verdict.failure is not None:
            indication, sub, message = verdict.failure
            raise Stop(indication, sub, message or self.wording(sub))


@dataclass(frozen=True)
class Sections:
    """The parts of a report that come from the repository or the issuing domain, never from
    the upload or the scanned text."""

    licence: LicenceSummary | None = None
    seal: SealSummary | None = None
    domain: DomainSummary | None = None
    recognised_as: Recognition | None = None


def build_report(
    steps: Steps,
    stop: Stop | None,
    *,
    at: datetime,
    channel: str,
    sections: Sections = Sections(),
    passed: str = MESSAGES[None],
    extra: dict[str, Any] | None = None,
) -> Report:
    """The report of a verification: PASSED with ``passed`` when nothing stopped it, else the
    stop's indication, sub-indication and message; the checks in the order they were made."""
    if stop is None:
        indication, sub, message = Indication.PASSED, None, passed
    else:
        indication, sub, message = stop.indication, stop.sub, stop.message
    return Report(
        indication=indication,
        sub_indication=sub,
        message=message,
        checks=tuple(steps.checks),
        validated_at=at,
        channel=channel,
        licence=sections.licence,
        seal=sections.seal,
        extra=steps.extra if extra is None else extra,
        domain=sections.domain,
        recognised_as=sections.recognised_as,
    )
