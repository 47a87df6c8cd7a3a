"""Before any parsing (verify/pdf.py ``prepare``): the size limit and the PDF header, an earlier
download swapped for the repository's current copy, and what the examination is handed (the
anchors, this domain's revocations, the clock's time). Also the limits of an in-process
examination, refusals, and the trust anchors reloaded only when this domain's CAs change."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import Session

import verify.pdf
from core.clock import FixedClock
from licences.digests import SupersededDigest
from licences.models import LicenceDocument
from tests.security.support import NOW
from tests.security.verify_support import (
    ANCHORS,
    DIGEST,
    IDENTIFIER,
    SEAL_SERIAL,
    certificate,
    engine,
    facts,
    rows,
    verifier,
)
from trust.models import AuthorityRecord
from verify.pdf import CachedAnchors, PdfVerifier, Prepared, anchors_from
from verify.report import Check, CheckResult, Indication, SubIndication
from verify.signature import Revocation, TrustAnchors


def prepare(data: bytes, max_bytes: int = 2048, db: Any = None) -> Any:
    with Session(db or engine(licence=False)) as session:
        return verifier(max_bytes=max_bytes).prepare(session, data, "upload")


def test_a_file_over_the_size_limit_is_refused_before_parsing() -> None:
    report = prepare(b"%PDF-" + b"x" * 2044)
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED,
        "文件超出大小限制 / the file exceeds the size limit")
    assert rows(report) == [("format", "failed", "2049 bytes > 2048")]
    assert (report.validated_at, report.channel, report.licence) == (NOW, "upload", None)


def test_a_file_at_the_size_limit_is_examined() -> None:
    prepared = prepare(b"%PDF-" + b"x" * 2043)
    assert isinstance(prepared, Prepared)


@pytest.mark.parametrize(("data", "header"), [
    (b"%PDF-1.7\n", True),
    (b" " * 1019 + b"%PDF-", True),  # the header ends at byte 1024
    (b" " * 1020 + b"%PDF-", False),
    (b"%PDF", False),
    (b"%pdf-1.7", False),
    (b"", False),
])
def test_the_pdf_header_is_looked_for_in_the_first_kilobyte(data: bytes, header: bool) -> None:
    prepared = prepare(data)
    if header:
        assert isinstance(prepared, Prepared)
        return
    assert (prepared.indication, prepared.sub_indication, prepared.message) == (
        Indication.INDETERMINATE, SubIndication.MALFORMED,
        "无法读取该文件 / the file cannot be read as a PDF")
    assert rows(prepared) == [("format", "failed", "no PDF header")]


def test_prepare_hands_over_the_bytes_anchors_revocations_and_time() -> None:
    db = engine(licence=False)
    sessions: list[Session] = []

    def anchors(session: Session) -> TrustAnchors:
        sessions.append(session)
        return ANCHORS

    since = datetime(2025, 1, 2, 3, 4, tzinfo=UTC)
    with Session(db) as session:
        certificate(session, SEAL_SERIAL, issuer=None, subject="s", status="revoked",
                    revoked_at=since, reason="keyCompromise")
    data = b"%PDF-1.7 upload"
    with Session(db) as session:
        prepared = PdfVerifier(clock=FixedClock(NOW), anchors=anchors, max_bytes=99).prepare(
            session, data, "upload")
    assert sessions == [session]
    assert prepared == Prepared(
        data=data, digest=hashlib.sha256(data).hexdigest(), anchors=ANCHORS,
        revoked=(Revocation(SEAL_SERIAL, since, "keyCompromise"),), moment=NOW,
        tolerance=timedelta(seconds=1), checks=(),
    )


def test_an_earlier_download_is_checked_with_the_current_copy() -> None:
    db = engine()
    earlier = b"%PDF-1.7 sealed"
    current = earlier + b" and archive-timestamped"
    with Session(db) as session:
        session.add(LicenceDocument(identifier=IDENTIFIER, pdf=current))
        session.add(SupersededDigest(sha256=hashlib.sha256(earlier).hexdigest(),
                                     identifier=IDENTIFIER, superseded_at=NOW))
        session.commit()
    prepared = prepare(earlier, db=db)
    assert (prepared.data, prepared.digest) == (current, hashlib.sha256(current).hexdigest())
    assert prepared.checks == (Check(
        "copy", CheckResult.PASSED,
        "an earlier download; checked with the repository's current copy"),)
    assert prepare(current, db=db).checks == ()


def test_checks_from_prepare_head_the_decision() -> None:
    copy = Check("copy", CheckResult.PASSED, "earlier")
    prepared = Prepared(data=b"", digest=DIGEST, anchors=ANCHORS, revoked=(), moment=NOW,
                        checks=(copy,))
    with Session(engine()) as session:
        report = verifier().decide(session, prepared, facts(unreadable="X"), "download")
    assert rows(report) == [("copy", "passed", "earlier"), ("format", "failed", "unreadable: X")]
    assert report.channel == "download"


@pytest.mark.parametrize(("error", "detail"), [
    (MemoryError, "内存超限 / memory limit exceeded"),
    (RecursionError, "嵌套过深 / nesting too deep"),
])
def test_a_limit_hit_in_process_is_indeterminate(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception], detail: str
) -> None:
    seen: dict[str, Any] = {}

    def examine(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise error

    monkeypatch.setattr(verify.pdf, "examine", examine)
    with Session(engine()) as session:
        report = verifier().verify(session, b"%PDF-1.7", "api")
    assert (report.indication, report.sub_indication, report.message) == (
        Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED, detail)
    assert rows(report) == [("limits", "failed", detail)]
    assert (report.channel, report.validated_at) == ("api", NOW)
    assert seen == {"moment": NOW, "revoked": (), "tolerance": timedelta(seconds=1)}


def test_verify_examines_the_prepared_bytes_and_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def examine(data: bytes, anchors: TrustAnchors, **kwargs: Any) -> Any:
        seen.append((data, anchors))
        return facts()

    monkeypatch.setattr(verify.pdf, "examine", examine)
    with Session(engine()) as session:
        report = verifier().verify(session, b"%PDF-1.7 x")
        refused = verifier().verify(session, b"no header")
    assert seen == [(b"%PDF-1.7 x", ANCHORS)]
    assert rows(report)[-1] == ("repository", "failed",
                                "no licence in the repository has these bytes")
    assert (report.channel, refused.channel) == ("upload", "upload")
    assert rows(refused) == [("format", "failed", "no PDF header")]


def test_a_refusal_is_one_check_with_its_message() -> None:
    check = Check("limits", CheckResult.FAILED, "slow")
    report = verifier().refusal(check, Indication.INDETERMINATE, SubIndication.TRY_LATER, None,
                                "upload")
    assert (report.indication, report.sub_indication, report.checks, report.validated_at) == (
        Indication.INDETERMINATE, SubIndication.TRY_LATER, (check,), NOW)
    assert report.message == (
        "签名真实，但离线无法确认证照当前状态，请联网核验 / genuine signature, but the current "
        "status cannot be confirmed offline; verify online")
    own = verifier().refusal(check, Indication.FAILED, None, "自己的 / own", "api")
    assert (own.message, own.sub_indication, own.channel) == ("自己的 / own", None, "api")
    assert verifier().now() == NOW


def test_anchors_are_reloaded_only_when_the_cas_change() -> None:
    db = engine(licence=False)
    loads: list[Session] = []

    def load(session: Session) -> TrustAnchors:
        loads.append(session)
        return TrustAnchors((bytes([len(loads)]),), ())

    cached = CachedAnchors(load)
    with Session(db) as session:
        session.add(AuthorityRecord(name="seal-ca", certificate_serial="0a1b"))
        session.add(AuthorityRecord(name="root", certificate_serial="0c"))
        session.commit()
        first = cached(session)
        assert cached(session) is first and loads == [session]
        # a new CA
        session.add(AuthorityRecord(name="tsa-ca", certificate_serial="0d2e"))
        session.commit()
        second = cached(session)
        assert second == TrustAnchors((b"\x02",), ()) and len(loads) == 2
        assert cached(session) is second
        # a CA given a new certificate
        authority = session.get(AuthorityRecord, "seal-ca")
        assert authority is not None
        authority.certificate_serial = "0f3a"
        session.commit()
        assert cached(session) == TrustAnchors((b"\x03",), ())
        # a CA renamed, with the same certificate
        session.delete(session.get(AuthorityRecord, "tsa-ca"))
        session.add(AuthorityRecord(name="tsa2-ca", certificate_serial="0d2e"))
        session.commit()
        assert cached(session) == TrustAnchors((b"\x04",), ())
        # the same rows stored again in another order: the same anchors, no reload
        session.delete(session.get(AuthorityRecord, "root"))
        session.commit()
        session.add(AuthorityRecord(name="root", certificate_serial="0c"))
        session.commit()
        assert cached(session) == TrustAnchors((b"\x04",), ()) and len(loads) == 4


def test_anchors_from_certificates_are_der() -> None:
    def cert(name: str) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(1)
                .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
                .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC)).sign(key, hashes.SHA256()))

    root, middle = cert("root"), cert("middle")
    der = serialization.Encoding.DER
    assert anchors_from([root], [middle]) == TrustAnchors(
        (root.public_bytes(der),), (middle.public_bytes(der),))
