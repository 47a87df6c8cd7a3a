"""Verification of a licence issued in another, recognised trust domain (docs/federation.md).

The local verifier answers first; ``verify.service`` hands over a PDF it found INDETERMINATE
for want of a chain (NO_CHAIN_FOUND, or NO_POE: a foreign TSA is not trusted here) and a QR
code whose key it does not know. The seal is examined in the limited worker process
(``verify.signature.examine`` through ``verify.isolation``) against this domain's CAs and every
recognised domain's; a seal of ours keeps the local answer. Otherwise the seal is attributed
to exactly one recognised domain by its chain: the domain whose own root (recorded when it was
recognised) the seal certificate chains to through that domain's CAs — never by trying domains
in turn. That domain decides, with its own material only: its CAs and TSA for the chain and the
sealing time, its ``seals`` for the certificate, its OCSP responder for revocation, and its
signed status answer for the licence, which is also where every licence and seal detail of the
report comes from. A QR key is attributed to the one recognised domain that lists it; a key two
domains claim is nobody's. First failure decides, as at home.

A public report never carries a peer's URL, its HTTP status or anything else it answered
outside its signed documents: a peer that cannot be asked, or whose answer is not believed,
is the neutral ``NEUTRAL`` detail; the reason goes to the log.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime

from cryptography import x509
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.clock import Clock
from core.db import reading
from core.errors import ElicenceError
from licences.links import code_from_text, is_random_code
from licences.payload import PayloadError, decode
from trust.federation import AUTO, Federation, Recognised
from trust.federation_ocsp import chain_status
from trust.federation_scope import chain_root
from trust.federation_status import StatusAnswer, query_status
from trust.trustlist import fingerprint
from verify import foreign_checks, rules
from verify.code import check_signed
from verify.isolation import Inspector
from verify.report import (
    DomainSummary,
    Indication,
    Recognition,
    Report,
    SubIndication,
)
from verify.signature import SignatureFacts, TrustAnchors, examine
from verify.steps import Sections, Steps, Stop, build_report, qr_wording
from verify.structure import Inspection

HANDED_OVER = (SubIndication.NO_CHAIN_FOUND, SubIndication.NO_POE)
NEUTRAL = "对方信任域状态服务不可用 / the peer domain's status service is unavailable"
log = logging.getLogger(__name__)


def owners(domains: list[Recognised], certificate: x509.Certificate) -> list[Recognised]:
    """The recognised domains whose own root ``certificate`` chains to through their CAs."""
    found = []
    for domain in domains:
        root = chain_root(domain.trust_list, certificate)
        if root is not None and fingerprint(root) == domain.root_sha256:
            found.append(domain)
    return found


class ForeignVerifier:
    def __init__(
        self,
        *,
        engine: Engine,
        clock: Clock,
        federation: Federation,
        local_anchors: Callable[[Session], TrustAnchors],
        inspector: Inspector | None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._federation = federation
        self._local = local_anchors
        self._inspector = inspector

    # -- PDF ---------------------------------------------------------------------------------

    def verify_pdf(self, data: bytes, local: Report, channel: str) -> Report | None:
        """A report when the seal is not ours; None keeps the local report."""
        if (
            local.indication is not Indication.INDETERMINATE
            or local.sub_indication not in HANDED_OVER
        ):
            return None
        with reading(self._engine) as session:
            own = self._local(session)
        domains = self._federation.recognised()
        now = self._clock.now()
        anchors = TrustAnchors(
            roots=own.roots
            + tuple(der for d in domains for der in foreign_checks.ders(d, roots=True)),
            intermediates=own.intermediates
            + tuple(der for d in domains for der in foreign_checks.ders(d, roots=False)),
        )
        facts = self._examine(data, anchors, now)
        steps = Steps()
        if isinstance(facts, Inspection):
            steps.checks.append(foreign_checks.check(facts.check, False, facts.detail))
            sub = facts.sub or SubIndication.MALFORMED
            return self._report(steps, now, channel, Stop(facts.indication, sub, facts.detail))
        if facts.signer_der is None or facts.error or facts.signatures != 1 or facts.docmdp != 1:
            return None  # the local verifier's answer stands for what it already judged
        signer = x509.load_der_x509_certificate(facts.signer_der)
        if any(foreign_checks.issued_by(signer, der) for der in own.roots + own.intermediates):
            return None  # our own seal: the local answer (e.g. NO_POE) is the right one
        claimed = owners(domains, signer)
        try:
            for verdict in rules.seal_form(facts):  # all pass: the local verifier judged them
                steps.apply(verdict)
            if len(claimed) != 1:
                raise steps.fail(
                    "domain",
                    f"the seal certificate chains to the own root of {len(claimed)} of the "
                    f"{len(domains)} recognised domain(s), not of exactly one",
                    Indication.INDETERMINATE,
                    SubIndication.NO_CHAIN_FOUND,
                )
            domain = claimed[0]
            steps.extra["domain"] = domain
            self._decide(data, facts, signer, domain, steps, now)
            stop = None
        except Stop as failed:
            stop = failed
        return self._report(steps, now, channel, stop)

    def _examine(
        self, data: bytes, anchors: TrustAnchors, now: datetime
    ) -> SignatureFacts | Inspection:
        if self._inspector is not None:
            return self._inspector.examine(data, anchors, moment=now)
        try:
            return examine(data, anchors, moment=now)
        except (MemoryError, RecursionError):
            return Inspection(
                False,
                "limits",
                "资源超限 / limit exceeded",
                Indication.INDETERMINATE,
                SubIndication.LIMIT_EXCEEDED,
            )

    def _decide(
        self,
        data: bytes,
        facts: SignatureFacts,
        signer: x509.Certificate,
        domain: Recognised,
        steps: Steps,
        now: datetime,
    ) -> None:
        """The seal against the one domain it chains to, then that domain's answers."""
        proven = _seal_evidence(facts, domain, steps)
        entry = domain.trust_list.seal(signer)
        if entry is None:
            domain = self._refreshed(domain)
            entry = domain.trust_list.seal(signer)
        if entry is None:
            raise steps.fail(
                "seal_listed",
                f"serial {format(signer.serial_number, 'x')} is not a seal of {domain.name}'s list",
                Indication.INDETERMINATE,
                SubIndication.NO_CHAIN_FOUND,
            )
        steps.ok(
            "seal_listed",
            f"seal {entry.seal} of {entry.department_name} ({entry.status} in the list)",
        )
        self._revocation(signer, domain, proven, steps, now)
        answer = self._status(domain, hashlib.sha256(data).hexdigest(), steps, now)
        recorded = (answer.licence or {}).get("seal_certificate_serial")
        if recorded != format(signer.serial_number, "x"):
            raise steps.fail(
                "status",
                "sealed by another certificate than the issuing domain recorded",
                Indication.FAILED,
                SubIndication.NOT_IN_REPOSITORY,
            )
        steps.signing_time = facts.signing_time.isoformat() if facts.signing_time else None
        steps.timestamp = proven.isoformat() if proven else None
        foreign_checks.licence_status(answer, steps)

    def _refreshed(self, domain: Recognised) -> Recognised:
        """The domain's list fetched again (a seal made since the last fetch); as it was if
        that fails."""
        try:
            self._federation.refresh(domain.name, actor=AUTO)
        except ElicenceError:
            return domain
        return next((d for d in self._federation.recognised() if d.name == domain.name), domain)

    def _revocation(
        self,
        signer: x509.Certificate,
        domain: Recognised,
        proven: datetime | None,
        steps: Steps,
        now: datetime,
    ) -> None:
        listed = domain.trust_list

        def issuer(cert: x509.Certificate) -> x509.Certificate | None:
            ca = listed.issuer_of(cert)
            return ca.certificate if ca else None

        def ocsp_url(ca_cert: x509.Certificate) -> str | None:
            return next((ca.ocsp_url for ca in listed.cas if ca.certificate == ca_cert), None)

        try:
            answers = chain_status(issuer, ocsp_url, signer, now, self._federation.peers)
        except ElicenceError as exc:
            raise self._unavailable(steps, "ocsp", domain, exc) from None
        foreign_checks.revocation(answers, proven, steps, domain.name)

    @staticmethod
    def _unavailable(steps: Steps, name: str, domain: Recognised, exc: ElicenceError) -> Stop:
        """The peer could not be asked, or its answer not believed: the reason (which may hold
        its URL or what it answered) goes to the log, the report says only that."""
        log.warning("%s of %s: %s", name, domain.name, exc.message)
        return steps.fail(
            name,
            NEUTRAL,
            Indication.INDETERMINATE,
            SubIndication.TRY_LATER,
            foreign_checks.TRY_LATER,
        )

    def _status(self, domain: Recognised, key: str, steps: Steps, now: datetime) -> StatusAnswer:
        try:
            answer = query_status(domain.trust_list, key, now, self._federation.peers)
        except ElicenceError as exc:
            raise self._unavailable(steps, "status", domain, exc) from None
        steps.extra["answer"] = answer
        if not answer.found:
            raise steps.fail(
                "status",
                f"{domain.name} has no licence with these bytes",
                Indication.FAILED,
                SubIndication.NOT_IN_REPOSITORY,
            )
        return answer

    # -- QR codes ----------------------------------------------------------------------------

    def verify_code(self, text: str, local: Report, channel: str) -> Report | None:
        """A signed QR payload made with a recognised domain's QR key; None keeps the local
        report (a key of nobody we know)."""
        if local.sub_indication is not SubIndication.NO_SIGNING_CERTIFICATE_FOUND:
            return None
        code = code_from_text(text)
        if code is None or is_random_code(code):
            return None
        try:
            kid = decode(code).kid
        except PayloadError:
            return None
        claimed = [d for d in self._federation.recognised() if kid in foreign_checks.qr_keys(d)]
        if len(claimed) != 1:
            if claimed:
                log.warning("QR key %s is listed by %s", kid.hex(), [d.name for d in claimed])
            return None  # nobody's key, or one no single domain can speak for
        owner = claimed[0]
        now = self._clock.now()
        steps = Steps(wording=qr_wording)
        steps.extra["domain"] = owner
        try:
            signed = check_signed(code, steps, foreign_checks.qr_keys(owner).get, now)
            if owner.stale:
                raise steps.fail(
                    "domain",
                    f"{owner.name}: trust list past its next_update",
                    Indication.INDETERMINATE,
                    SubIndication.TRY_LATER,
                    foreign_checks.stale_message(owner.name),
                )
            steps.ok("domain", f"QR key of {owner.name}, trust list {owner.trust_list.sequence}")
            answer = self._status(owner, signed.claims.identifier, steps, now)
            digest = (answer.licence or {}).get("record_digest")
            if digest != signed.claims.record_digest.hex():
                raise steps.fail(
                    "status",
                    "record digest differs from the issuing domain's record",
                    Indication.FAILED,
                    SubIndication.HASH_FAILURE,
                )
            foreign_checks.licence_status(answer, steps)
            stop = None
        except Stop as failed:
            stop = failed
        return self._report(steps, now, channel, stop)

    # -- the report --------------------------------------------------------------------------

    def _report(self, steps: Steps, now: datetime, channel: str, stop: Stop | None) -> Report:
        extra = dict(steps.extra)
        domain: Recognised | None = extra.pop("domain", None)
        answer: StatusAnswer | None = extra.pop("answer", None)
        licence = foreign_checks.licence(answer)
        summary = None
        if domain is not None:
            listed = domain.trust_list
            summary = DomainSummary(
                domain.name, listed.organisation, domain.fingerprint, listed.sequence
            )
        recognised = None
        if domain is not None and licence is not None:
            with reading(self._engine) as session:
                found = self._federation.local_type(session, domain.name, licence.type_code)
            recognised = Recognition(*found) if found else None
        name = summary.name if summary else ""
        sections = Sections(
            licence=licence,
            seal=foreign_checks.seal(answer, steps.signing_time, steps.timestamp),
            domain=summary,
            recognised_as=recognised,
        )
        passed = (
            f"证照真实有效，由互认信任域 {name} 签发 / the licence is "
            f"genuine and valid, issued in the recognised domain {name}"
        )
        return build_report(
            steps, stop, at=now, channel=channel, sections=sections, passed=passed, extra=extra
        )


def _seal_evidence(facts: SignatureFacts, domain: Recognised, steps: Steps) -> datetime | None:
    """The domain's list is current; the seal is intact, its timestamp from that domain's TSA
    and its chain ends at that domain's own root. The proven sealing time, if any."""
    listed = domain.trust_list
    if domain.stale:
        log.warning("trust list of %s is stale: %s", domain.name, domain.refresh_error)
        raise steps.fail(
            "domain",
            f"{domain.name}: list {listed.sequence} past {listed.next_update.isoformat()}, "
            "and no newer list could be fetched",
            Indication.INDETERMINATE,
            SubIndication.TRY_LATER,
            foreign_checks.stale_message(domain.name),
        )
    steps.ok(
        "domain",
        f"{domain.name}, trust list {listed.sequence}, signer {domain.fingerprint[:16]}…",
    )
    foreign_checks.signature_checks(facts, steps)
    proven = foreign_checks.sealing_time(facts, domain, steps)
    root = x509.load_der_x509_certificate(facts.chain[-1]) if facts.chain else None
    if not facts.trusted or root is None or fingerprint(root) != domain.root_sha256:
        raise steps.fail(
            "chain",
            f"no valid path to a root of {domain.name} ({facts.trust_problem})",
            Indication.INDETERMINATE,
            SubIndication.NO_CHAIN_FOUND,
        )
    steps.ok(
        "chain",
        f"chains to the root of {domain.name}"
        + (f", sealed at {proven.isoformat()}" if proven else ""),
    )
    return proven


def applies(report: Report) -> bool:
    """Whether the local answer leaves room for a recognised domain."""
    return report.indication is Indication.INDETERMINATE and report.sub_indication in (
        *HANDED_OVER,
        SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
    )
