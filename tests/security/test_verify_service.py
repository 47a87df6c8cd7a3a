"""The verification service (``verify/service.py``): every verification, of a QR code or of a
file, is answered and recorded — its row in the verification log and its audit entry — naming the
licence when one was found and nothing when none was. The PDF verifier, the isolated inspector
and the recognised domains are stand-ins here: this module only routes between them."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from core.audit import AuditEntry, AuditLog
from core.clock import FixedClock
from tests.security.licences import Repository, forged, repository
from tests.security.support import NOW
from verify.code import CodeVerifier
from verify.report import (
    Check,
    CheckResult,
    Indication,
    LicenceSummary,
    Report,
    SubIndication,
)
from verify.service import VerificationService
from verify.structure import Inspection

PDF = b"%PDF-1.7 sealed licence"
PDF_DIGEST = hashlib.sha256(PDF).hexdigest()


def report(indication: Indication = Indication.PASSED, sub: SubIndication | None = None,
           licence: str | None = None, channel: str = "api-upload", **extra: Any) -> Report:
    summary = None if licence is None else LicenceSummary(
        licence, "T", "t", "I", "i", "h", "h", "2024-01-01", None, "valid", "v", 1)
    return Report(indication, sub, "m", (), NOW, channel, summary, extra=dict(extra))


class Pdf:
    """Answers with the reports it is given, and says which steps were asked for (each with a
    session on the service's database)."""

    max_bytes = 12_345

    def __init__(self, answer: Report | None = None, prepared: Any = None,
                 decided: Report | None = None) -> None:
        self.answer, self.prepared, self.decided = answer, prepared, decided
        self.calls: list[tuple[Any, ...]] = []
        self.engines: list[Any] = []

    def read(self, session: Session) -> None:
        self.engines.append(session.get_bind())

    def verify(self, session: Session, data: bytes, channel: str) -> Report:
        self.read(session)
        self.calls.append(("verify", data, channel))
        assert self.answer is not None
        return self.answer

    def prepare(self, session: Session, data: bytes, channel: str) -> Any:
        self.read(session)
        self.calls.append(("prepare", data, channel))
        return self.prepared

    def refusal(self, check: Check, indication: Indication, sub: SubIndication | None,
                detail: str, channel: str) -> Report:
        self.calls.append(("refusal", check, indication, sub, detail, channel))
        return report(indication, sub, channel=channel)

    def decide(self, session: Session, prepared: Any, facts: Any, channel: str) -> Report:
        self.read(session)
        self.calls.append(("decide", prepared, facts, channel))
        assert self.decided is not None
        return self.decided


class Prepared:
    data = b"bytes to examine"
    anchors = "anchors"
    moment = NOW
    revoked = ("r",)
    tolerance = timedelta(seconds=7)


class Inspector:
    def __init__(self, found: Any) -> None:
        self.found = found
        self.calls: list[tuple[Any, ...]] = []

    def examine(self, data: bytes, anchors: Any, *, moment: Any, revoked: Any,
                tolerance: Any) -> Any:
        self.calls.append((data, anchors, moment, revoked, tolerance))
        return self.found


class Foreign:
    def __init__(self, answer: Report | None) -> None:
        self.answer = answer
        self.calls: list[tuple[Any, ...]] = []

    def verify_pdf(self, data: bytes, local: Report, channel: str) -> Report | None:
        self.calls.append(("pdf", data, local, channel))
        return self.answer

    def verify_code(self, text: str, local: Report, channel: str) -> Report | None:
        self.calls.append(("code", text, local, channel))
        return self.answer


def service(repo: Repository, pdf: Pdf | None = None, inspector: Inspector | None = None,
            foreign: Foreign | None = None) -> VerificationService:
    return VerificationService(
        engine=repo.engine, pdf=pdf or Pdf(),  # type: ignore[arg-type]
        code=CodeVerifier(FixedClock(NOW), repo.keys), audit=AuditLog(FixedClock(NOW)),
        inspector=inspector, foreign=foreign,  # type: ignore[arg-type]
    )


def recorded(repo: Repository) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(log rows, audit entries) of verifications, oldest first."""
    with Session(repo.engine) as session:
        from verify.log import VerificationLog

        logs = session.exec(select(VerificationLog).order_by(VerificationLog.id)).all()  # type: ignore[arg-type]
        audits = session.exec(
            select(AuditEntry).where(AuditEntry.action == "licence.verify").order_by(AuditEntry.seq)  # type: ignore[arg-type]
        ).all()
        return (
            [(r.identifier, r.channel, r.method, r.indication, r.sub_indication,
              r.at.replace(tzinfo=None)) for r in logs],
            [(a.actor, a.object_type, a.object_id, a.outcome, a.request_id, a.detail)
             for a in audits],
        )


@pytest.fixture
def repo() -> Repository:
    return repository()


def test_a_genuine_code_is_answered_and_recorded_under_its_licence(repo: Repository) -> None:
    ident = repo.add("V1")
    answer = service(repo).verify_code(repo.code(repo.claims(ident)), channel="api-qr",
                                       actor="client:dept", request_id="req-1")
    assert (answer.indication, answer.sub_indication) == (Indication.PASSED, None)
    assert recorded(repo) == (
        [(ident, "api-qr", "qr-payload", "PASSED", None, NOW.replace(tzinfo=None))],
        [("client:dept", "licence", ident, "PASSED", "req-1",
          {"channel": "api-qr", "method": "qr-payload", "sub_indication": None})],
    )


def test_an_expired_presentation_is_recorded_under_the_licence_it_names(
    repo: Repository,
) -> None:
    ident = repo.add("V2")
    code = repo.code(repo.presentation(ident, NOW - timedelta(minutes=10)))
    answer = service(repo).verify_code(code, channel="qr-page", actor="anonymous")
    assert answer.sub_indication is SubIndication.EXPIRED
    assert answer.licence is None
    assert recorded(repo) == (
        [(ident, "qr-page", "presentation", "FAILED", "EXPIRED", NOW.replace(tzinfo=None))],
        [("anonymous", "licence", ident, "FAILED", None,
          {"channel": "qr-page", "method": "presentation", "sub_indication": "EXPIRED"})],
    )


def test_an_unknown_code_is_recorded_under_no_licence(repo: Repository) -> None:
    answer = service(repo).verify_code("hello", channel="page-scan", actor="anonymous")
    assert answer.sub_indication is SubIndication.UNKNOWN_CODE
    assert recorded(repo) == (
        [(None, "page-scan", "qr", "FAILED", "UNKNOWN_CODE", NOW.replace(tzinfo=None))],
        [("anonymous", "licence", "unknown-code", "FAILED", None,
          {"channel": "page-scan", "method": "qr", "sub_indication": "UNKNOWN_CODE"})],
    )


def test_a_forged_code_names_no_licence(repo: Repository) -> None:
    ident = repo.add("V3")
    code, _ = forged(repo.claims(ident), kid=repo.kid)
    answer = service(repo).verify_code(code, channel="api-qr", actor="a")
    assert answer.sub_indication is SubIndication.SIG_CRYPTO_FAILURE
    logs, audits = recorded(repo)
    assert logs[0][:3] == (None, "api-qr", "qr-payload")
    assert audits[0][2] == "unknown-code"


def test_a_code_of_another_key_is_handed_to_the_recognised_domains(repo: Repository) -> None:
    ident = repo.add("V4")
    code, _ = forged(repo.claims(ident))
    theirs = report(Indication.PASSED, licence="FOREIGN-1", channel="api-qr",
                    method="qr-payload")
    foreign = Foreign(theirs)
    answer = service(repo, foreign=foreign).verify_code(code, channel="api-qr", actor="a")
    assert answer is theirs
    [(kind, text, local, channel)] = foreign.calls
    assert (kind, text, channel) == ("code", code, "api-qr")
    assert local.sub_indication is SubIndication.NO_SIGNING_CERTIFICATE_FOUND
    logs, audits = recorded(repo)
    assert logs[0][:4] == ("FOREIGN-1", "api-qr", "qr-payload", "PASSED")
    assert audits[0][2] == "FOREIGN-1"


def test_a_code_no_domain_recognises_keeps_the_local_answer(repo: Repository) -> None:
    code, _ = forged(repo.claims(repo.add("V5")))
    foreign = Foreign(None)
    answer = service(repo, foreign=foreign).verify_code(code, channel="api-qr", actor="a")
    assert answer.sub_indication is SubIndication.NO_SIGNING_CERTIFICATE_FOUND
    assert len(foreign.calls) == 1


def test_a_decided_code_is_not_handed_over(repo: Repository) -> None:
    foreign = Foreign(report(licence="X"))
    answer = service(repo, foreign=foreign).verify_code("hello", channel="api-qr", actor="a")
    assert answer.sub_indication is SubIndication.UNKNOWN_CODE
    assert foreign.calls == []


def test_a_file_is_verified_in_process_and_recorded_under_its_licence(repo: Repository) -> None:
    pdf = Pdf(answer=report(licence="LIC-1", channel="page-upload"))
    svc = service(repo, pdf)
    assert svc.max_bytes == 12_345
    answer = svc.verify_pdf(PDF, channel="page-upload", actor="anonymous", request_id="r9")
    assert answer is pdf.answer
    assert pdf.calls == [("verify", PDF, "page-upload")]
    assert pdf.engines == [repo.engine]
    assert recorded(repo) == (
        [("LIC-1", "page-upload", "pdf", "PASSED", None, NOW.replace(tzinfo=None))],
        [("anonymous", "licence", "LIC-1", "PASSED", "r9",
          {"channel": "page-upload", "method": "pdf", "sub_indication": None})],
    )


def test_a_file_of_no_licence_is_recorded_by_its_digest(repo: Repository) -> None:
    pdf = Pdf(answer=report(Indication.FAILED, SubIndication.NOT_IN_REPOSITORY))
    service(repo, pdf).verify_pdf(PDF, channel="api-upload", actor="client:x")
    assert recorded(repo) == (
        [(None, "api-upload", "pdf", "FAILED", "NOT_IN_REPOSITORY", NOW.replace(tzinfo=None))],
        [("client:x", "licence", "sha256:" + PDF_DIGEST, "FAILED", None,
          {"channel": "api-upload", "method": "pdf", "sub_indication": "NOT_IN_REPOSITORY"})],
    )


@pytest.mark.parametrize("sub", [SubIndication.NO_CHAIN_FOUND, SubIndication.NO_POE])
def test_a_file_sealed_elsewhere_is_handed_to_the_recognised_domains(
    repo: Repository, sub: SubIndication
) -> None:
    local = report(Indication.INDETERMINATE, sub)
    theirs = report(licence="FOREIGN-2")
    foreign = Foreign(theirs)
    answer = service(repo, Pdf(answer=local), foreign=foreign).verify_pdf(
        PDF, channel="api-upload", actor="a")
    assert answer is theirs
    assert foreign.calls == [("pdf", PDF, local, "api-upload")]
    assert recorded(repo)[0][0][0] == "FOREIGN-2"


def test_a_file_no_domain_recognises_keeps_the_local_answer(repo: Repository) -> None:
    local = report(Indication.INDETERMINATE, SubIndication.NO_CHAIN_FOUND)
    answer = service(repo, Pdf(answer=local), foreign=Foreign(None)).verify_pdf(
        PDF, channel="api-upload", actor="a")
    assert answer is local


def test_a_failed_file_is_not_handed_over(repo: Repository) -> None:
    local = report(Indication.FAILED, SubIndication.NO_CHAIN_FOUND)
    foreign = Foreign(report(licence="X"))
    assert service(repo, Pdf(answer=local), foreign=foreign).verify_pdf(
        PDF, channel="api-upload", actor="a") is local
    assert foreign.calls == []


def test_with_isolation_a_refused_upload_is_answered_before_any_worker(repo: Repository) -> None:
    refused = report(Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED)
    pdf, inspector = Pdf(prepared=refused), Inspector(None)
    answer = service(repo, pdf, inspector).verify_pdf(PDF, channel="api-upload", actor="a")
    assert answer is refused
    assert pdf.calls == [("prepare", PDF, "api-upload")]
    assert pdf.engines == [repo.engine]
    assert inspector.calls == []
    assert recorded(repo)[0][0][4] == "LIMIT_EXCEEDED"


def test_with_isolation_the_workers_refusal_is_the_answer(repo: Repository) -> None:
    found = Inspection(False, "structure", "对象过多 / too many objects", Indication.FAILED,
                       SubIndication.MALFORMED)
    pdf, inspector = Pdf(prepared=Prepared()), Inspector(found)
    answer = service(repo, pdf, inspector).verify_pdf(PDF, channel="page-upload", actor="a")
    assert inspector.calls == [(b"bytes to examine", "anchors", NOW, ("r",),
                                timedelta(seconds=7))]
    assert pdf.calls[1:] == [(
        "refusal", Check("structure", CheckResult.FAILED, "对象过多 / too many objects"),
        Indication.FAILED, SubIndication.MALFORMED, "对象过多 / too many objects", "page-upload",
    )]
    assert (answer.indication, answer.sub_indication, answer.channel) == (
        Indication.FAILED, SubIndication.MALFORMED, "page-upload")
    assert recorded(repo)[0][0][:5] == (None, "page-upload", "pdf", "FAILED", "MALFORMED")


def test_with_isolation_the_workers_facts_are_decided_here(repo: Repository) -> None:
    facts = object()
    decided = report(licence="LIC-2")
    prepared = Prepared()
    pdf = Pdf(prepared=prepared, decided=decided)
    answer = service(repo, pdf, Inspector(facts)).verify_pdf(PDF, channel="api-upload",
                                                             actor="a")
    assert answer is decided
    assert pdf.calls == [("prepare", PDF, "api-upload"),
                         ("decide", prepared, facts, "api-upload")]
    assert pdf.engines == [repo.engine, repo.engine]
    assert recorded(repo)[0][0][0] == "LIC-2"


def test_a_long_subject_is_cut_to_the_audit_column(repo: Repository) -> None:
    long = "L" * 150
    pdf = Pdf(answer=replace(report(licence=long), channel="cli"))
    service(repo, pdf).verify_pdf(PDF, channel="cli", actor="a")
    logs, audits = recorded(repo)
    assert audits[0][2] == "L" * 128
    assert logs[0][0] == "L" * 96
