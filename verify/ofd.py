"""Strict validation of an uploaded OFD licence (GB/T 33190, sealed per GB/T 38540 in SM2/SM3).

The same three steps as the PDF path (``verify.pdf``), so the parsing and the cryptography run in
the limited worker while the repository stays here: ``prepare`` (size, the trust anchors of both
forms and this domain's revocations, read from the database), ``verify.ofd_examine`` (pure; in
the worker for uploads) and ``decide``: the seal certificate's status at the proven time (an SM2
seal certificate shares the revocation row of the ECDSA seal certificate it follows, so a seal
revoked is revoked in both forms), then the repository — a licence whose stored OFD has exactly
these bytes (SHA-256), sealed with the SM2 certificate recorded at issuance — and its status now.

A package whose signed content is intact but whose bytes are not the stored OFD's (re-zipped,
say) is FAILED/NOT_IN_REPOSITORY, as a re-saved PDF is: the verdict vouches for the file the
repository issued, and the report's licence data always come from the repository, never from
the upload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import Clock, china_today
from core.db import reading
from licences.models import Licence
from licences.repository import effective_status, full_record
from verify import ltv, rules
from verify.isolation import Inspector, Limits
from verify.ofd_chain import Sm2Anchors
from verify.ofd_examine import OfdFacts, examine_ofd
from verify.report import MESSAGES, Check, CheckResult, Indication, Report, SubIndication
from verify.signature import Revocation, TrustAnchors
from verify.steps import Sections, Steps, Stop, Verdict, build_report
from verify.summary import licence_summary, seal_summary

if TYPE_CHECKING:
    from trust.sm2_chain import Sm2ChainResult

METHOD = "ofd"
_REVOKED = "印章证书已吊销 / the seal's certificate was revoked"
# Where the report's usual wording names another kind of file (a QR code's content, a PDF).
WORDS = {
    SubIndication.FORMAT_FAILURE: "文件不是本服务签发的OFD证照格式 / the file is not in the form "
    "of an OFD licence",
    SubIndication.MALFORMED: "无法读取该OFD文件 / the OFD file cannot be read",
}


@dataclass(frozen=True)
class OfdPrepared:
    """What ``prepare`` read for the examination, as plain values for the worker."""

    data: bytes
    digest: str  # SHA-256 of ``data``
    anchors: TrustAnchors  # this domain's ECDSA roots: the TSA's
    sm2: Sm2Anchors
    revoked: tuple[Revocation, ...]
    moment: datetime
    tolerance: timedelta = ltv.TOLERANCE


class OfdVerifier:
    def __init__(
        self,
        *,
        clock: Clock,
        anchors: Callable[[Session], TrustAnchors],
        sm2_anchors: Callable[[Session], Sm2Anchors],
        sm2_registry: Callable[[Session, bytes, datetime], Sm2ChainResult] | None = None,
        max_bytes: int,
    ) -> None:
        self._clock = clock
        # ``trust.sm2_chain.validate_sm2_certificate`` over this domain's SM2 records: the seal
        # certificate is one this domain issued, for a seal, chained through its recorded CAs.
        self._registry = sm2_registry
        self._anchors = anchors
        self._sm2 = sm2_anchors
        self.max_bytes = max_bytes

    def verify(self, session: Session, data: bytes, channel: str = "upload") -> Report:
        """All three steps in this process (the CLI, tests, servers without isolation)."""
        prepared = self.prepare(session, data, channel)
        if isinstance(prepared, Report):
            return prepared
        found = examine_ofd(
            prepared.data,
            Limits(),
            anchors=prepared.anchors,
            sm2=prepared.sm2,
            moment=prepared.moment,
            revoked=prepared.revoked,
            tolerance=prepared.tolerance,
        )
        if not isinstance(found, OfdFacts):
            check = Check(found.check, CheckResult.FAILED, found.detail)
            return self.refusal(check, found.indication, found.sub, found.detail, channel)
        return self.decide(session, prepared, found, channel)

    def prepare(self, session: Session, data: bytes, channel: str) -> OfdPrepared | Report:
        if len(data) > self.max_bytes:
            check = Check("format", CheckResult.FAILED, f"{len(data)} bytes > {self.max_bytes}")
            return self.refusal(
                check, Indication.INDETERMINATE, SubIndication.LIMIT_EXCEEDED, None, channel
            )
        return OfdPrepared(
            data=data,
            digest=hashlib.sha256(data).hexdigest(),
            anchors=self._anchors(session),
            sm2=self._sm2(session),
            revoked=ltv.known_revocations(session),
            moment=self._clock.now(),
        )

    def decide(
        self, session: Session, prepared: OfdPrepared, facts: OfdFacts, channel: str
    ) -> Report:
        """The worker's checks, then this domain's records: the first failure decides."""
        steps = Steps(checks=list(facts.checks))
        steps.extra = {"method": METHOD}
        stop: Stop | None = None
        if facts.failure is not None:
            indication, sub, message = facts.failure
            stop = Stop(indication, sub, message or WORDS.get(sub) or MESSAGES[sub])
        else:
            try:
                self._records(session, prepared, facts, steps)
            except Stop as failed:
                stop = failed
        return self._report(steps, stop, channel, facts)

    def refusal(
        self,
        check: Check,
        indication: Indication,
        sub: SubIndication | None,
        message: str | None,
        channel: str,
    ) -> Report:
        """A report of one failed check: a package refused before any decision."""
        stop = Stop(indication, sub, message or MESSAGES[sub])
        steps = Steps(checks=[check], extra={"method": METHOD})
        return build_report(steps, stop, at=self._clock.now(), channel=channel)

    def _records(
        self, session: Session, prepared: OfdPrepared, facts: OfdFacts, steps: Steps
    ) -> None:
        from licences.models import LicenceOfd  # revision 0027

        assert facts.signer_serial is not None  # set whenever the examination passed
        serial = format(facts.signer_serial, "x")
        revoked = self._registered(session, facts, steps)
        steps.apply(_revocation(session, serial, facts.proven))
        if revoked is not None:  # the SM2 records' own word, should the rows ever disagree
            raise steps.fail(
                "revocation", revoked, Indication.FAILED, SubIndication.REVOKED, _REVOKED
            )
        # The row's names only, not its bytes: the digest already says they are these.
        stored = session.exec(
            select(LicenceOfd.identifier, LicenceOfd.sm2_certificate_serial).where(
                LicenceOfd.sha256 == prepared.digest
            )
        ).first()
        if stored is None:
            raise steps.fail(
                "repository",
                _missing(session, facts.identifier),
                Indication.FAILED,
                SubIndication.NOT_IN_REPOSITORY,
            )
        identifier, sealed_with = stored
        licence = session.get(Licence, identifier)
        assert licence is not None  # licence_ofd.identifier references it
        if sealed_with != serial:
            raise steps.fail(
                "repository",
                "sealed by another SM2 certificate than the repository recorded",
                Indication.FAILED,
                SubIndication.NOT_IN_REPOSITORY,
            )
        steps.ok("repository", f"SHA-256 matches the OFD of licence {licence.identifier}")
        steps.record = full_record(session, licence)
        steps.timestamp = facts.proven.isoformat() if facts.proven else None
        steps.signing_time = facts.signing_time.isoformat() if facts.signing_time else None
        current = effective_status(licence, china_today(self._clock.now()))
        steps.apply(rules.licence_status(current, current.label))

    def _registered(self, session: Session, facts: OfdFacts, steps: Steps) -> str | None:
        """The signer's certificate in this domain's SM2 records at the proven time: anything
        but a revocation (decided next, as for a PDF) is NO_CHAIN_FOUND. The revocation's
        reason, if the records say revoked or suspended."""
        if self._registry is None or facts.signer_der is None:
            return None
        found = self._registry(session, facts.signer_der, facts.proven or self._clock.now())
        if found.sub_indication in ("REVOKED", "SUSPENDED"):
            return found.reason
        if not found.ok:
            raise steps.fail(
                "registered",
                found.reason,
                Indication.INDETERMINATE,
                SubIndication.NO_CHAIN_FOUND,
            )
        steps.ok("registered", "an SM2 seal certificate this domain issued and recorded")
        return None

    def _report(self, steps: Steps, stop: Stop | None, channel: str, facts: OfdFacts) -> Report:
        record = steps.record
        now = self._clock.now()
        seal = None
        if record is not None:
            seal = seal_summary(record, steps.signing_time, steps.timestamp)
            if facts.signer_serial is not None:  # the SM2 certificate that sealed this file
                seal = replace(seal, certificate_serial=format(facts.signer_serial, "x"))
        sections = Sections(
            licence=licence_summary(record, china_today(now)) if record else None, seal=seal
        )
        return build_report(steps, stop, at=now, channel=channel, sections=sections)


def _revocation(session: Session, serial: str, proven: datetime | None) -> Verdict:
    """The SM2 seal certificate's status: that of the ECDSA seal certificate it follows (and
    its CA), against the proven sealing time (``verify.ltv``)."""
    from trust.sm2_records import Sm2CertificateRecord

    record = session.get(Sm2CertificateRecord, serial)
    if record is None or record.follows_serial is None:
        return Verdict(
            Check("revocation", CheckResult.SKIPPED, "SM2 certificate not in this domain's records")
        )
    return ltv.revocation_verdict(session, int(record.follows_serial, 16), proven)


def check_ofd(
    verifier: OfdVerifier,
    inspector: Inspector | None,
    engine: Engine,
    data: bytes,
    channel: str,
) -> Report:
    """An upload through the three steps: with an inspector, the examination runs in its
    limited worker, between two short reads (no connection is held while it runs)."""
    if inspector is None:
        with reading(engine) as session:
            return verifier.verify(session, data, channel)
    with reading(engine) as session:
        prepared = verifier.prepare(session, data, channel)
    if isinstance(prepared, Report):
        return prepared
    found = inspector.examine_ofd(
        prepared.data,
        prepared.anchors,
        prepared.sm2,
        moment=prepared.moment,
        revoked=prepared.revoked,
        tolerance=prepared.tolerance,
    )
    if not isinstance(found, OfdFacts):
        check = Check(found.check, CheckResult.FAILED, found.detail)
        return verifier.refusal(check, found.indication, found.sub, found.detail, channel)
    with reading(engine) as session:
        return verifier.decide(session, prepared, found, channel)


def _missing(session: Session, identifier: str | None) -> str:
    """Why no stored OFD matched: the claimed licence has another file (a re-packed or altered
    copy), or nothing here has these bytes."""
    from licences.models import LicenceOfd

    if identifier is None:
        return "no licence in the repository has these bytes"
    named = select(LicenceOfd.identifier).where(LicenceOfd.identifier == identifier)
    if session.exec(named).first() is not None:
        return "the licence this file names was issued as another file (re-packed or altered)"
    return "no licence in the repository has these bytes"
