"""What the seal of an uploaded PDF proves, examined without the repository.

``examine`` parses the bytes once with pyHanko and validates the one seal against the trust
anchors, at the moment and with the revocation data it is handed (plus what the document
embeds: its DSS). It answers with ``SignatureFacts``, plain values only, so the call is pure and
picklable: uploads run it in a limited worker process (``verify.isolation``), tests and the CLI
in-process. Nothing here reads a database, settings or the network.

What the facts mean for a licence stays with the caller: ``verify.pdf`` decides for this domain
(a repository record with these bytes, sealed by the certificate the repository recorded, not
revoked before the proven sealing time, the licence valid now). Another domain's roots and
intermediates can be examined the same way and decided with that domain's own status answers.

Long-term evidence (ETSI EN 319 102-1 § 5.6): document timestamps are checked newest first, the
newest at ``moment``, each older one at the time of the next; the seal's own timestamp at the
time of the oldest document timestamp (or ``moment``); the seal's chain at the time that
timestamp claims. At a past moment the revocation data embedded then is the evidence; at
``moment`` itself the caller's records (``revoked``) are, since they are fresher than any
embedded response.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESSubIndic
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.generic_cms import extract_tst_data_iter
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus, TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import CertificateRegistry, SimpleTrustManager

from trust.parsed import certificate, certificate_list, ocsp_response


@dataclass(frozen=True)
class TrustAnchors:
    """The certificates a domain trusts, DER: its roots, and the CAs between them and seals."""

    roots: tuple[bytes, ...]
    intermediates: tuple[bytes, ...]


@dataclass(frozen=True)
class Revocation:
    """A certificate the caller's records show revoked (or on hold) since ``since``."""

    serial: int
    since: datetime
    reason: str | None = None


@dataclass(frozen=True)
class TimestampFacts:
    """The seal's own RFC 3161 timestamp, as validated at the time the archive chain proves."""

    intact: bool
    valid: bool
    trusted: bool
    time: datetime  # genTime
    signer_serial: int
    signer_subject: str  # the TSA's name, human-friendly
    signer_der: bytes


@dataclass(frozen=True)
class ArchiveFacts:
    """The document-timestamp chain after the seal (B-LTA)."""

    count: int = 0
    broken: str | None = None  # a document timestamp whose digest or signature fails
    proof_time: datetime | None = None  # oldest document timestamp's time, if the chain holds
    detail: str = "no document timestamp"


@dataclass(frozen=True)
class EmbeddedFacts:
    """The document's DSS: counts, and the DER values while they stay small."""

    certificates: int = 0
    ocsp_responses: int = 0
    crls: int = 0


@dataclass(frozen=True)
class SignatureFacts:
    """Everything a verifier needs to decide on one uploaded file, as plain values.

    The fields are filled in order and the first gap ends the examination: ``unreadable`` (the
    parser failed), ``signatures`` != 1 or ``docmdp`` != 1 (not a licence's one certification
    seal, so nothing is validated), ``error`` (validation raised). Enumerations are given by
    pyHanko's member names (``coverage`` ``"ENTIRE_FILE"``, ``modification`` ``"NONE"``...)."""

    moment: datetime  # the validation time the caller gave
    unreadable: str | None = None  # the parser's exception type
    signatures: int = 0  # regular (/Sig) signatures
    docmdp: int | None = None  # DocMDP P of a certification signature; None otherwise
    error: str | None = None  # validation raised this exception type
    intact: bool = False
    valid: bool = False
    trusted: bool = False  # the chain to the given anchors holds at the claimed sealing time
    trust_problem: str | None = (
        None  # ETSI sub-indication when it does not (NO_CERTIFICATE_CHAIN_FOUND)
    )
    signer_der: bytes | None = None
    signer_serial: int | None = None
    signer_subject: str | None = None
    chain: tuple[bytes, ...] = ()  # the validation path, leaf first, DER
    coverage: str | None = None
    modification: str | None = None
    docmdp_ok: bool | None = None
    signing_time: datetime | None = None  # self-reported by the signer
    claimed_time: datetime | None = None  # the seal timestamp's genTime, before validation
    timestamp: TimestampFacts | None = None
    archive: ArchiveFacts = field(default_factory=ArchiveFacts)
    embedded: EmbeddedFacts = field(default_factory=EmbeddedFacts)


@dataclass
class Parsed:
    """An upload read by pyHanko, kept so the worker parses it once for every step."""

    reader: PdfFileReader
    signatures: list[EmbeddedPdfSignature]


def parse(data: bytes) -> Parsed:
    """pyHanko's reader over ``data`` and its regular signatures; raises what the parser
    raises. Each signature's /ByteRange is touched, so a broken signature dictionary fails
    here, before anything is validated."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    signatures = list(reader.embedded_regular_signatures)
    for signature in signatures:
        signature.sig_object.get("/ByteRange")
    return Parsed(reader, signatures)


def examine(
    data: bytes,
    anchors: TrustAnchors,
    *,
    moment: datetime,
    revoked: Iterable[Revocation] = (),
    tolerance: timedelta = timedelta(0),
) -> SignatureFacts:
    """Parse ``data`` and examine its seal (see ``examine_parsed``)."""
    try:
        parsed = parse(data)
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:
        return SignatureFacts(moment=moment, unreadable=type(exc).__name__)
    return examine_parsed(parsed, anchors, moment=moment, revoked=revoked, tolerance=tolerance)


def examine_parsed(
    parsed: Parsed,
    anchors: TrustAnchors,
    *,
    moment: datetime,
    revoked: Iterable[Revocation] = (),
    tolerance: timedelta = timedelta(0),
) -> SignatureFacts:
    """Validate the one certification seal of ``parsed`` against ``anchors`` at ``moment``.

    ``revoked`` are the certificates the caller knows revoked; a document timestamp whose
    TSA certificate was revoked at or before its time (``tolerance`` allowing for the token's
    accuracy) proves nothing, which cuts the archive chain there. MemoryError and RecursionError
    propagate: they are a limit, not a malformed file."""
    facts = SignatureFacts(moment=moment, signatures=len(parsed.signatures))
    if facts.signatures != 1:
        return facts
    signature = parsed.signatures[0]
    try:
        docmdp = signature.docmdp_level
    except Exception:
        docmdp = None
    facts = replace(facts, docmdp=int(docmdp.value) if docmdp is not None else None)
    if docmdp is not MDPPerm.NO_CHANGES:
        return facts
    revocations = {r.serial: r for r in revoked}
    try:
        return _validate(parsed, signature, anchors, moment, revocations, tolerance, facts)
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:
        return replace(facts, error=type(exc).__name__)


@dataclass(frozen=True)
class _Material:
    certs: tuple[asn1_x509.Certificate, ...] = ()
    ocsps: tuple[asn1_ocsp.OCSPResponse, ...] = ()
    crls: tuple[asn1_crl.CertificateList, ...] = ()
    facts: EmbeddedFacts = field(default_factory=EmbeddedFacts)


def _validate(
    parsed: Parsed,
    signature: EmbeddedPdfSignature,
    anchors: TrustAnchors,
    moment: datetime,
    revocations: dict[int, Revocation],
    tolerance: timedelta,
    facts: SignatureFacts,
) -> SignatureFacts:
    material = _material(parsed.reader)
    contexts = _Contexts(anchors, material)
    archive = _archive(parsed.reader, contexts, moment, revocations, tolerance)
    claimed = None
    for tst in extract_tst_data_iter(signature.signer_info, signed=False):
        claimed = tst["encap_content_info"]["content"].parsed["gen_time"].native
        break
    proof = archive.proof_time
    status: PdfSignatureStatus = validate_pdf_signature(
        signature,
        signer_validation_context=contexts.at(claimed or moment, past=bool(claimed)),
        ts_validation_context=contexts.at(proof or moment, past=bool(proof)),
    )
    signer = status.signing_cert
    path = status.validation_path
    return replace(
        facts,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        trust_problem=_indic(status.trust_problem_indic),
        signer_der=signer.dump(),
        signer_serial=signer.serial_number,
        signer_subject=signer.subject.human_friendly,
        chain=tuple(c.dump() for c in reversed(list(path.iter_certs(True)))) if path else (),
        coverage=status.coverage.name if status.coverage else None,
        modification=status.modification_level.name if status.modification_level else None,
        docmdp_ok=status.docmdp_ok,
        signing_time=status.signer_reported_dt,
        claimed_time=claimed,
        timestamp=(
            None
            if status.timestamp_validity is None
            else timestamp_facts_of(status.timestamp_validity)
        ),
        archive=archive,
        embedded=material.facts,
    )


def _indic(indic: AdESSubIndic | None) -> str | None:
    return str(indic.standard_name) if indic is not None else None


def timestamp_facts_of(token: TimestampSignatureStatus) -> TimestampFacts:
    """What a validated RFC 3161 token proves: a PDF seal's timestamp, an OFD seal's."""
    return TimestampFacts(
        intact=bool(token.intact),
        valid=bool(token.valid),
        trusted=bool(token.trusted),
        time=token.timestamp,
        signer_serial=token.signing_cert.serial_number,
        signer_subject=token.signing_cert.subject.human_friendly,
        signer_der=token.signing_cert.dump(),
    )


def _material(reader: PdfFileReader) -> _Material:
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return _Material()
    cert_der = [ref.get_object().read_data(DecodePurpose.CERTIFICATE) for ref in dss.certs.values()]
    ocsp_der = [ref.get_object().read_data(DecodePurpose.OCSP_RESPONSE) for ref in dss.ocsps]
    crl_der = [ref.get_object().read_data(DecodePurpose.CRL) for ref in dss.crls]
    return _Material(
        certs=tuple(certificate(d) for d in cert_der),
        ocsps=tuple(ocsp_response(d) for d in ocsp_der),
        crls=tuple(certificate_list(d) for d in crl_der),
        facts=EmbeddedFacts(
            certificates=len(cert_der),
            ocsp_responses=len(ocsp_der),
            crls=len(crl_der),
        ),
    )


class _Contexts:
    """Validation contexts at the moments the evidence chain needs, over one certificate
    registry and one trust manager: indexing a certificate costs about a millisecond (its
    names are normalised), and every context would otherwise index the same anchors and DSS
    certificates again. Certificates a signature carries are added to the shared registry as
    pyHanko validates it; they come from the same document and still have to chain to the
    given roots, so sharing changes no outcome."""

    def __init__(self, anchors: TrustAnchors, material: _Material) -> None:
        self._material = material
        self._trust = SimpleTrustManager.build(
            trust_roots=[certificate(der) for der in anchors.roots]
        )
        self._registry = CertificateRegistry.build(
            [certificate(der) for der in anchors.intermediates] + list(material.certs)
        )

    def at(self, moment: datetime, *, past: bool) -> ValidationContext:
        # At a past moment the responses embedded then are the evidence (a stale one is simply
        # outvoted by the fresh one stored with it). At the current time they are all stale,
        # and the caller's own records decide instead (``revoked`` here; the seal's certificate
        # in verify.ltv): they are fresher than any response and need no network.
        return ValidationContext(
            trust_manager=self._trust,
            certificate_registry=self._registry,
            ocsps=list(self._material.ocsps) if past else [],
            crls=list(self._material.crls) if past else [],
            moment=moment,
            allow_fetching=False,
            retroactive_revinfo=True,
            revocation_mode="soft-fail",
        )


def _archive(
    reader: PdfFileReader,
    contexts: _Contexts,
    now: datetime,
    revocations: dict[int, Revocation],
    tolerance: timedelta,
) -> ArchiveFacts:
    stamps = list(reader.embedded_timestamp_signatures)
    if not stamps:
        return ArchiveFacts()
    control, past = now, False
    oldest: datetime | None = None
    cut: str | None = None
    for stamp in reversed(stamps):  # newest first
        status = validate_pdf_timestamp(stamp, contexts.at(control, past=past))
        if not (status.intact and status.valid):
            return ArchiveFacts(len(stamps), f"document timestamp {stamp.field_name}", None, "")
        if cut is not None:
            continue  # the chain is cut; older timestamps are only checked for integrity
        revoked = revoked_before(
            revocations.get(status.signing_cert.serial_number), status.timestamp, tolerance
        )
        if not status.trusted or revoked:
            why = revoked or f"not verifiable at {control.isoformat()}"
            cut = f"document timestamp of {status.timestamp.isoformat()} {why}"
            continue
        control = oldest = status.timestamp
        past = True
    if cut is not None:
        return ArchiveFacts(len(stamps), None, None, cut)
    assert oldest is not None
    return ArchiveFacts(
        len(stamps),
        None,
        oldest,
        f"{len(stamps)} document timestamp(s); the oldest proves the seal existed at "
        f"{oldest.isoformat()}",
    )


def revoked_before(
    revocation: Revocation | None, moment: datetime, tolerance: timedelta
) -> str | None:
    """Why nothing signed at ``moment`` with the certificate can be relied on: it was revoked
    at or before ``moment`` (``tolerance`` allowing for a timestamp's accuracy). None if not."""
    if revocation is None or moment + tolerance < revocation.since:
        return None
    return f"revoked at {revocation.since.isoformat()} ({revocation.reason})"
