"""Long-term validation of a seal: when was it made, and is that proven?

A licence outlives its seal certificate (3 years), the issuing CA and even the TSA certificate.
What keeps it verifiable is a chain of proofs of existence (ETSI EN 319 102-1 § 5.6):

- the newest document timestamp is checked *now*; each older one at the time of the next one;
- the seal's own timestamp is checked at the time of the oldest document timestamp (or now,
  when there is none); its genTime is then the proven sealing time;
- the seal certificate chain is checked *at the proven sealing time*, with the revocation data
  embedded in the document (DSS), so no network is needed.

Revocation is then decided from this domain's own certificate records, which are fresher than
any embedded or published response: a seal certificate revoked (or held) *after* the proven
sealing time leaves the licence valid, with a note; one revoked before, or with no proof of
when the seal was made, fails with REVOKED.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.generic_cms import extract_tst_data_iter
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from sqlmodel import Session

from core.db import as_utc
from licences.digests import SupersededDigest
from licences.models import LicenceDocument
from trust.models import CertificateRecord
from trust.tsa import ACCURACY
from verify.report import Check, CheckResult, Indication, SubIndication

_HOLD = "印章证书已暂停使用 / the seal's certificate is on hold (suspended)"
_REVOKED = "印章证书已吊销 / the seal's certificate was revoked"


@dataclass(frozen=True)
class Material:
    """Certificates and revocation data embedded in the document (its DSS)."""

    certs: tuple[asn1_x509.Certificate, ...] = ()
    ocsps: tuple[asn1_ocsp.OCSPResponse, ...] = ()
    crls: tuple[asn1_crl.CertificateList, ...] = ()


@dataclass(frozen=True)
class Archive:
    """The document-timestamp chain after the seal (B-LTA)."""

    count: int
    broken: str | None  # a document timestamp whose digest or signature fails
    proof_time: datetime | None  # oldest document timestamp's time, if the chain holds now
    detail: str


@dataclass(frozen=True)
class Evidence:
    signer_context: ValidationContext
    timestamp_context: ValidationContext
    claimed_time: datetime | None  # the seal timestamp's genTime, not yet verified
    archive: Archive


@dataclass(frozen=True)
class Verdict:
    check: Check
    failure: tuple[Indication, SubIndication, str | None] | None = None


def current_copy(session: Session, data: bytes) -> bytes | None:
    """The repository's current PDF when ``data`` is an earlier download of it (its digest
    was superseded by an archive timestamp, and it is a prefix of the current bytes)."""
    earlier = session.get(SupersededDigest, hashlib.sha256(data).hexdigest())
    if earlier is None:
        return None
    document = session.get(LicenceDocument, earlier.identifier)
    if document is None or not document.pdf.startswith(data):
        return None
    return document.pdf


def read_material(reader: PdfFileReader) -> Material:
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return Material()
    return Material(
        certs=tuple(dss.load_certs()),
        ocsps=tuple(
            asn1_ocsp.OCSPResponse.load(ref.get_object().read_data(DecodePurpose.OCSP_RESPONSE))
            for ref in dss.ocsps
        ),
        crls=tuple(
            asn1_crl.CertificateList.load(ref.get_object().read_data(DecodePurpose.CRL))
            for ref in dss.crls
        ),
    )


def _context(
    roots: list[asn1_x509.Certificate],
    others: list[asn1_x509.Certificate],
    material: Material,
    moment: datetime,
    *,
    past: bool,
) -> ValidationContext:
    # At a past moment the responses embedded then are the evidence (a stale one is simply
    # outvoted by the fresh one stored with it). At the current time they are all stale, and
    # the domain's own certificate records decide instead (_revoked_before, revocation_verdict):
    # they are fresher than any response and need no network.
    return ValidationContext(
        trust_roots=roots,
        other_certs=others + list(material.certs),
        ocsps=list(material.ocsps) if past else [],
        crls=list(material.crls) if past else [],
        moment=moment,
        allow_fetching=False,
        retroactive_revinfo=True,
        revocation_mode="soft-fail",
    )


def gather(
    session: Session,
    reader: PdfFileReader,
    signature: EmbeddedPdfSignature,
    roots_der: tuple[bytes, ...],
    intermediates_der: tuple[bytes, ...],
    now: datetime,
) -> Evidence:
    roots = [asn1_x509.Certificate.load(der) for der in roots_der]
    others = [asn1_x509.Certificate.load(der) for der in intermediates_der]
    material = read_material(reader)
    archive = _archive(session, reader, roots, others, material, now)
    claimed = None
    for tst in extract_tst_data_iter(signature.signer_info, signed=False):
        claimed = tst["encap_content_info"]["content"].parsed["gen_time"].native
        break
    proof = archive.proof_time
    return Evidence(
        signer_context=_context(roots, others, material, claimed or now, past=bool(claimed)),
        timestamp_context=_context(roots, others, material, proof or now, past=bool(proof)),
        claimed_time=claimed,
        archive=archive,
    )


def _archive(
    session: Session,
    reader: PdfFileReader,
    roots: list[asn1_x509.Certificate],
    others: list[asn1_x509.Certificate],
    material: Material,
    now: datetime,
) -> Archive:
    stamps = list(reader.embedded_timestamp_signatures)
    if not stamps:
        return Archive(0, None, None, "no document timestamp")
    control, past = now, False
    oldest: datetime | None = None
    cut: str | None = None
    for stamp in reversed(stamps):  # newest first
        status = validate_pdf_timestamp(
            stamp, _context(roots, others, material, control, past=past)
        )
        if not (status.intact and status.valid):
            return Archive(len(stamps), f"document timestamp {stamp.field_name}", None, "")
        if cut is not None:
            continue  # the chain is cut; older timestamps are only checked for integrity
        revoked = _revoked_before(session, status.signing_cert, status.timestamp)
        if not status.trusted or revoked:
            why = revoked or f"not verifiable at {control.isoformat()}"
            cut = f"document timestamp of {status.timestamp.isoformat()} {why}"
            continue
        control = oldest = status.timestamp
        past = True
    if cut is not None:
        return Archive(len(stamps), None, None, cut)
    assert oldest is not None
    return Archive(
        len(stamps),
        None,
        oldest,
        f"{len(stamps)} document timestamp(s); the oldest proves the seal existed at "
        f"{oldest.isoformat()}",
    )


def _revoked_before(
    session: Session, certificate: asn1_x509.Certificate, moment: datetime
) -> str | None:
    """Whether this domain revoked ``certificate`` at or before ``moment`` (allowing for the
    timestamp's accuracy): then nothing it signed at ``moment`` can be relied on."""
    record = session.get(CertificateRecord, format(certificate.serial_number, "x"))
    if record is None or record.status == "good" or record.revoked_at is None:
        return None
    revoked_at = as_utc(record.revoked_at)
    if moment + ACCURACY < revoked_at:
        return None
    return f"revoked at {revoked_at.isoformat()} ({record.revocation_reason})"


def timestamp_verdicts(evidence: Evidence, status: PdfSignatureStatus) -> list[Verdict]:
    """The ``archive`` and ``timestamp`` checks, in that order."""
    verdicts = []
    archive = evidence.archive
    if archive.broken:
        return [
            Verdict(
                Check("archive", CheckResult.FAILED, f"{archive.broken} does not verify"),
                (Indication.FAILED, SubIndication.HASH_FAILURE, None),
            )
        ]
    if archive.count:
        result = CheckResult.PASSED if archive.proof_time else CheckResult.SKIPPED
        verdicts.append(Verdict(Check("archive", result, archive.detail)))
    token = status.timestamp_validity
    if token is None:
        verdicts.append(
            Verdict(
                Check(
                    "timestamp",
                    CheckResult.SKIPPED,
                    "no timestamp: the sealing time is only self-reported",
                )
            )
        )
        return verdicts
    if not (token.intact and token.valid):
        verdicts.append(
            Verdict(
                Check("timestamp", CheckResult.FAILED, "the seal's timestamp token is broken"),
                (Indication.FAILED, SubIndication.HASH_FAILURE, None),
            )
        )
    elif not token.trusted:
        verdicts.append(
            Verdict(
                Check(
                    "timestamp",
                    CheckResult.FAILED,
                    "the seal's timestamp is not from this domain's TSA, or cannot be proven now",
                ),
                (Indication.INDETERMINATE, SubIndication.NO_POE, None),
            )
        )
    else:
        verdicts.append(
            Verdict(
                Check(
                    "timestamp",
                    CheckResult.PASSED,
                    f"sealed at {token.timestamp.isoformat()} (RFC 3161 timestamp, "
                    f"{token.signing_cert.subject.human_friendly})",
                )
            )
        )
    return verdicts


def proven_time(session: Session, status: PdfSignatureStatus) -> datetime | None:
    """The sealing time a trusted, unrevoked timestamp proves; None without one."""
    token = status.timestamp_validity
    if token is None or not (token.intact and token.valid and token.trusted):
        return None
    if _revoked_before(session, token.signing_cert, token.timestamp):
        return None
    return token.timestamp


def revocation_verdict(
    session: Session, status: PdfSignatureStatus, proven: datetime | None
) -> Verdict:
    """The seal certificate's and its CA's status in this domain's records, against the proven
    sealing time."""
    seal_record = session.get(CertificateRecord, format(status.signing_cert.serial_number, "x"))
    if seal_record is None:
        return Verdict(
            Check("revocation", CheckResult.SKIPPED, "certificate not in this domain's records")
        )
    chain = [seal_record]
    issuer = session.get(CertificateRecord, seal_record.issuer_serial or "")
    if issuer is not None and issuer.issuer_serial is not None:
        chain.append(issuer)
    notes = []
    for record in chain:
        if record.status == "good" or record.revoked_at is None:
            continue
        revoked_at = as_utc(record.revoked_at)
        what = "on hold" if record.status == "hold" else "revoked"
        line = (
            f"{record.subject} {what} since {revoked_at.isoformat()} ({record.revocation_reason})"
        )
        if proven is not None and proven + ACCURACY < revoked_at:
            notes.append(f"{line}; sealed at {proven.isoformat()}, before that, as timestamped")
            continue
        when = f"sealed at {proven.isoformat()}" if proven else "no proof of when it was sealed"
        message = _HOLD if record.status == "hold" else _REVOKED
        return Verdict(
            Check("revocation", CheckResult.FAILED, f"{line}; {when}"),
            (Indication.FAILED, SubIndication.REVOKED, message),
        )
    if notes:
        return Verdict(Check("revocation", CheckResult.PASSED, "; ".join(notes)))
    return Verdict(
        Check("revocation", CheckResult.PASSED, "seal certificate and its CA are not revoked")
    )
