"""Strict validation of an uploaded licence PDF.

pyHanko reports on the signature; this module decides. A document is PASSED only when every
check holds: one certification seal that forbids changes, intact and covering the file, chained
to this domain's root, made by the seal the repository recorded, bytes identical to the
repository's copy, and the licence valid now. pyHanko's ``bottom_line`` alone is never trusted,
since it accepts some shadow-attack files.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from sqlmodel import Session

from core.clock import Clock
from licences.models import LicenceStatus
from licences.repository import LicenceRecord, effective_status, full_record, licence_by_sha256
from verify import ltv
from verify.report import MESSAGES, Check, CheckResult, Indication, Report, SubIndication
from verify.summary import licence_summary, seal_summary

STATUS_FAILURES = {
    LicenceStatus.REVOKED: SubIndication.REVOKED,
    LicenceStatus.SUSPENDED: SubIndication.SUSPENDED,
    LicenceStatus.SUPERSEDED: SubIndication.SUPERSEDED,
    LicenceStatus.EXPIRED: SubIndication.EXPIRED,
    # 注销 reads as 吊销 to a verifier (the check's detail names which); 作废 after a reissue
    # means a newer version exists, as for an amendment.
    LicenceStatus.CANCELLED: SubIndication.REVOKED,
    LicenceStatus.VOID: SubIndication.SUPERSEDED,
}


@dataclass(frozen=True)
class TrustAnchors:
    roots: tuple[bytes, ...]  # DER
    intermediates: tuple[bytes, ...]


@dataclass
class _Found:
    record: LicenceRecord | None = None
    signing_time: str | None = None
    timestamp: str | None = None  # the sealing time a trusted timestamp proves


class _Outcome(Exception):
    """Raised inside the pipeline to stop at the first decisive check."""

    def __init__(
        self, indication: Indication, sub: SubIndication, message: str | None = None
    ) -> None:
        self.indication = indication
        self.sub = sub
        self.message = message


class PdfVerifier:
    def __init__(
        self, *, clock: Clock, anchors: Callable[[Session], TrustAnchors], max_bytes: int
    ) -> None:
        self._clock = clock
        self._anchors = anchors
        self.max_bytes = max_bytes

    def now(self) -> datetime:
        return self._clock.now()

    def verify(self, session: Session, data: bytes, channel: str = "upload") -> Report:
        checks: list[Check] = []
        found = _Found()
        try:
            self._run(session, data, checks, found)
            indication, sub, message = Indication.PASSED, None, None
        except _Outcome as outcome:
            indication, sub, message = outcome.indication, outcome.sub, outcome.message
        record, signing_time = found.record, found.signing_time
        now = self._clock.now()
        return Report(
            indication=indication,
            sub_indication=sub,
            message=message or MESSAGES[sub],
            checks=tuple(checks),
            validated_at=now,
            channel=channel,
            licence=licence_summary(record, now.date()) if record else None,
            seal=seal_summary(record, signing_time, found.timestamp) if record else None,
        )

    def _run(self, session: Session, data: bytes, checks: list[Check], found: _Found) -> None:
        def ok(name: str, detail: str) -> None:
            checks.append(Check(name, CheckResult.PASSED, detail))

        def fail(name: str, detail: str, indication: Indication, sub: SubIndication) -> _Outcome:
            checks.append(Check(name, CheckResult.FAILED, detail))
            return _Outcome(indication, sub)

        if len(data) > self.max_bytes:
            raise fail(
                "format",
                f"{len(data)} bytes > {self.max_bytes}",
                Indication.INDETERMINATE,
                SubIndication.LIMIT_EXCEEDED,
            )
        if b"%PDF-" not in data[:1024]:
            raise fail("format", "no PDF header", Indication.INDETERMINATE, SubIndication.MALFORMED)
        stored = ltv.current_copy(session, data)
        if stored is not None:
            # A copy downloaded before `elicence archive refresh` re-timestamped the licence:
            # its bytes are the start of the repository's copy, which is checked instead (the
            # same seal, with later proofs of existence appended).
            ok("copy", "an earlier download; checked with the repository's current copy")
            data = stored
        try:
            reader = PdfFileReader(io.BytesIO(data), strict=False)
            signatures = list(reader.embedded_regular_signatures)
        except Exception as exc:
            raise fail(
                "format",
                f"unreadable: {type(exc).__name__}",
                Indication.INDETERMINATE,
                SubIndication.MALFORMED,
            ) from None
        ok("format", "PDF parsed")
        if len(signatures) != 1:
            detail = (
                "no seal"
                if not signatures
                else f"{len(signatures)} signatures; a licence has one seal"
            )
            raise fail(
                "seal_count",
                detail,
                Indication.FAILED,
                SubIndication.NO_SIGNATURE
                if not signatures
                else SubIndication.MODIFIED_AFTER_SEALING,
            )
        signature = signatures[0]
        ok("seal_count", "exactly one seal")
        try:
            docmdp = signature.docmdp_level
        except Exception:
            docmdp = None
        if docmdp is not MDPPerm.NO_CHANGES:
            raise fail(
                "certification",
                f"DocMDP {docmdp}; P=1 required",
                Indication.FAILED,
                SubIndication.NOT_CERTIFIED,
            )
        ok("certification", "certification seal, DocMDP P=1 (no changes allowed)")
        anchors = self._anchors(session)
        try:
            # Long-term evidence first: the chain is checked at the time the seal's timestamp
            # proves, with the revocation data embedded at sealing (verify.ltv).
            evidence = ltv.gather(
                session,
                reader,
                signature,
                anchors.roots,
                anchors.intermediates,
                self._clock.now(),
            )
            status = validate_pdf_signature(
                signature,
                signer_validation_context=evidence.signer_context,
                ts_validation_context=evidence.timestamp_context,
            )
        except Exception as exc:
            raise fail(
                "integrity",
                f"validation error: {type(exc).__name__}",
                Indication.INDETERMINATE,
                SubIndication.MALFORMED,
            ) from None
        if not status.intact:
            raise fail(
                "integrity",
                "signed bytes do not match the seal's digest",
                Indication.FAILED,
                SubIndication.HASH_FAILURE,
            )
        if not status.valid:
            raise fail(
                "integrity",
                "the seal's signature does not verify",
                Indication.FAILED,
                SubIndication.SIG_CRYPTO_FAILURE,
            )
        ok("integrity", "seal signature intact and valid")
        coverage = status.coverage
        level = status.modification_level
        if coverage is SignatureCoverageLevel.ENTIRE_FILE:
            ok("modifications", "the seal covers the whole file")
        elif (
            coverage is SignatureCoverageLevel.ENTIRE_REVISION
            and status.docmdp_ok
            and level in (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES)
        ):
            ok("modifications", "only long-term validation data was added after sealing")
        else:
            raise fail(
                "modifications",
                f"coverage {coverage}, changes {level}",
                Indication.FAILED,
                SubIndication.MODIFIED_AFTER_SEALING,
            )
        for verdict in ltv.timestamp_verdicts(evidence, status):
            checks.append(verdict.check)
            if verdict.failure is not None:
                raise _Outcome(*verdict.failure)
        proven = ltv.proven_time(session, status)
        if not status.trusted:
            raise fail(
                "chain",
                "the seal certificate does not chain to a trusted root",
                Indication.INDETERMINATE,
                SubIndication.NO_CHAIN_FOUND,
            )
        ok(
            "chain",
            "chains to this domain's root"
            + (f", valid when sealed ({proven.isoformat()})" if proven else ""),
        )
        revocation = ltv.revocation_verdict(session, status, proven)
        checks.append(revocation.check)
        if revocation.failure is not None:
            raise _Outcome(*revocation.failure)
        signer_serial = format(status.signing_cert.serial_number, "x")
        digest = hashlib.sha256(data).hexdigest()
        licence = licence_by_sha256(session, digest)
        if licence is None:
            raise fail(
                "repository",
                "no licence in the repository has these bytes",
                Indication.FAILED,
                SubIndication.NOT_IN_REPOSITORY,
            )
        record = full_record(session, licence)
        # Compare with the certificate recorded at issuance, not the seal's current one: a
        # rotated seal has a new certificate, and licences sealed before still verify.
        sealed_with = record.licence.seal_certificate_serial or record.seal.certificate_serial
        if sealed_with != signer_serial:
            raise fail(
                "repository",
                "sealed by another seal than the repository recorded",
                Indication.FAILED,
                SubIndication.NOT_IN_REPOSITORY,
            )
        ok("repository", f"SHA-256 matches licence {licence.identifier}")
        found.record = record
        found.timestamp = proven.isoformat() if proven else None
        found.signing_time = (
            status.signer_reported_dt.isoformat() if status.signer_reported_dt else None
        )
        current = effective_status(licence, self._clock.now().date())
        if current is not LicenceStatus.VALID:
            checks.append(Check("status", CheckResult.FAILED, current.label))
            raise _Outcome(Indication.FAILED, STATUS_FAILURES[current]) from None
        ok("status", current.label)


def anchors_from(roots: list[object], intermediates: list[object]) -> TrustAnchors:
    def der(cert: object) -> bytes:
        return cert.public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined,no-any-return]

    return TrustAnchors(tuple(der(c) for c in roots), tuple(der(c) for c in intermediates))
