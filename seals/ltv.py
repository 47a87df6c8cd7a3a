"""Long-term seals (PAdES B-T, B-LT, B-LTA), made without any network access.

A seal certificate lives three years; a licence must verify for decades. So each seal is:
B-T, timestamped by the domain's TSA at sealing, which proves when it was made; B-LT, with OCSP
responses and certificates for the seal chain and the TSA chain stored in the document's DSS,
so a verifier needs no responder that may be gone by then; B-LTA, with a document timestamp
over all of that, which `elicence archive refresh` renews before its certificate expires.

The TSA and the OCSP responder are called in-process: sealing never makes an HTTP request to
its own service. pyHanko is given a ValidationContext holding exactly the responses generated
here, with fetching disabled, and embeds those.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator import ValidationContext
from sqlmodel import Session

from core.clock import Clock
from core.errors import Forbidden, Unavailable
from keys.store import KeyUseListener
from trust.authority import TrustDomain
from trust.ocsp import OcspResponder
from trust.tsa import TimeStampAuthority, TimeStampUnit


class _OfflineByDesign(logging.Filter):
    """pyHanko warns on every seal that fetching is disabled; here that is the design (all
    revocation data is produced in-process), so the warning is dropped, nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_OfflineByDesign())


class InProcessTimeStamper(TimeStamper):
    """pyHanko's TimeStamper answered by our own TSA unit, with no HTTP round trip."""

    def __init__(self, unit: TimeStampUnit, listener: KeyUseListener | None) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]
        self._unit = unit
        self._listener = listener

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return self._unit.respond(req, self._listener)

    async def async_dummy_response(self, md_algorithm: str) -> cms.ContentInfo:
        # pyHanko asks for a "dummy" token to size placeholders and find the TSA certificate;
        # a real token would cost a key-store signature and an audit entry for nothing.
        cached: cms.ContentInfo | None = self._dummy_response_cache.get(md_algorithm)
        if cached is not None:
            return cached
        dummy = self._unit.placeholder_token(md_algorithm)
        self._register_dummy(md_algorithm, dummy)  # type: ignore[no-untyped-call]
        return dummy

    def reserved(self, md_algorithm: str) -> int:
        """Room for one of this TSA's tokens in a document timestamp's /Contents (hex digits,
        two a byte), with room to spare for the serial and nonce: sized from the placeholder,
        so pyHanko need not ask for a dummy token (and index its certificates) per seal."""
        return 2 * len(self._unit.placeholder_token(md_algorithm).dump()) + 512


@dataclass(frozen=True)
class ArchivalEvidence:
    """What the DSS of a B-LTA seal holds, DER: the seal's CA chain (roots excluded: a verifier
    has them) and the TSA certificate, and one good OCSP response for each of them. The
    responders' certificates are taken from the responses when the DSS is written."""

    certificates: tuple[bytes, ...]
    ocsp_responses: tuple[bytes, ...]


@dataclass(frozen=True)
class LongTermEvidence:
    """What a long-term seal needs besides the seal key."""

    signing_time: datetime
    timestamper: InProcessTimeStamper
    # None: timestamp only (B-T); otherwise revocation data is embedded and the document
    # is timestamped again (B-LTA).
    archival: ArchivalEvidence | None


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


class LongTermSealing:
    """Gathers, in-process, the timestamps and revocation data a long-term seal embeds."""

    def __init__(
        self,
        *,
        trust: TrustDomain,
        ocsp: OcspResponder,
        tsa: TimeStampAuthority,
        clock: Clock,
        archival: bool = True,
    ) -> None:
        self._trust = trust
        self._ocsp = ocsp
        self._tsa = tsa
        self._clock = clock
        self._archival = archival

    def evidence(
        self,
        session: Session,
        chain_der: list[bytes],
        listener: KeyUseListener | None,
        *,
        archival: bool | None = None,
    ) -> LongTermEvidence:
        """``chain_der``: the seal certificate then its CA certificates (the root may be
        included; it needs no revocation data)."""
        unit = self._tsa.unit(session)
        timestamper = InProcessTimeStamper(unit, listener)
        # Whole seconds, like the token's genTime, so the signing time never follows it.
        now = self._clock.now().replace(microsecond=0)
        if not (self._archival if archival is None else archival):
            return LongTermEvidence(now, timestamper, None)
        return LongTermEvidence(now, timestamper, self.archival(session, chain_der, unit, listener))

    def archival(
        self,
        session: Session,
        chain_der: list[bytes],
        unit: TimeStampUnit,
        listener: KeyUseListener | None,
    ) -> ArchivalEvidence:
        """The certificates and OCSP responses the DSS embeds: every non-root certificate of
        the seal chain and the TSA certificate, each with a response from this domain's
        responder (reused for a few minutes per certificate, ``trust.ocsp``). Any answer but
        ``good`` stops the seal here: a B-LTA seal is only made with evidence that holds."""
        roots = {r.public_bytes(serialization.Encoding.DER) for r in self._trust.roots(session)}
        wanted: list[bytes] = []
        for der in [*chain_der, unit.certificate.dump()]:
            if der not in roots and der not in wanted:
                wanted.append(der)
        answers = self._ocsp.status_responses(
            session, [x509.load_der_x509_certificate(der) for der in wanted], listener
        )
        for der, answer in zip(wanted, answers, strict=True):
            _require_good(der, answer, seal=der == chain_der[0])
        return ArchivalEvidence(tuple(wanted), tuple(answers))

    def validation_context(
        self,
        session: Session,
        chain_der: list[bytes],
        unit: TimeStampUnit,
        listener: KeyUseListener | None,
        extra: list[x509.Certificate] | None = None,
    ) -> ValidationContext:
        """A context holding fresh OCSP responses for every non-root certificate of the seal
        chain, the TSA chain and ``extra``; hard-fail, no fetching, at the domain clock's now."""
        roots = self._trust.roots(session)
        root_ders = {r.public_bytes(serialization.Encoding.DER) for r in roots}
        tsa_cert = x509.load_der_x509_certificate(unit.certificate.dump())
        certificates = [x509.load_der_x509_certificate(der) for der in chain_der]
        certificates += [tsa_cert, *(extra or [])]
        ocsps = []
        seen: set[int] = set()
        for certificate in certificates:
            der = certificate.public_bytes(serialization.Encoding.DER)
            if der in root_ders or certificate.serial_number in seen:
                continue
            seen.add(certificate.serial_number)
            ocsps.append(self._ocsp.status_response(session, certificate, listener))
        return ValidationContext(
            trust_roots=[_asn1(r) for r in roots],
            other_certs=[_asn1(c) for c in self._trust.intermediates(session)],
            ocsps=ocsps,
            allow_fetching=False,
            revocation_mode="hard-fail",
            moment=self._clock.now(),
        )


def _require_good(certificate_der: bytes, response_der: bytes, *, seal: bool) -> None:
    status = ocsp.load_der_ocsp_response(response_der).certificate_status
    if status is ocsp.OCSPCertStatus.GOOD:
        return
    subject = x509.load_der_x509_certificate(certificate_der).subject.rfc4514_string()
    if seal:
        raise Forbidden(
            f"印章证书状态为 {status.name}，不能用于签发 / the seal's certificate is "
            f"{status.name.lower()} and cannot seal",
            extra={"seal_status": "certificate"},
        )
    raise Unavailable(
        f"证书 {subject} 状态为 {status.name}，不能加盖长期印章 / {subject} is "
        f"{status.name.lower()}; no long-term seal can be made"
    )
