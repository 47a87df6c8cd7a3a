"""Asking another domain's OCSP responder about one of its seal certificates (RFC 6960).

The responder is found through the ``ocsp_url`` of the CA in that domain's trust list, never
through the certificate's own AIA. Its answer is believed only when it is signed by the CA
that issued the certificate, or by a responder certificate that CA issued for OCSP signing
(EKU id-kp-OCSPSigning, valid now); when it names exactly the certificate asked about (serial,
issuer name and key hashes); echoes our nonce; and is current (thisUpdate not in the future,
nextUpdate not past, within the clock skew).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from core.errors import InvalidInput
from trust import federation_http
from trust.federation_http import Peers

MAX_RESPONSE_BYTES = 64 * 1024
SKEW = timedelta(minutes=5)
MAX_DEPTH = 4  # seal, issuing CA, root: a little room, never a loop


@dataclass(frozen=True)
class OcspAnswer:
    status: str  # good | revoked | unknown
    this_update: datetime
    next_update: datetime | None
    revoked_at: datetime | None = None
    reason: str | None = None
    responder: str = ""


class OcspRefused(InvalidInput):
    """The answer is not one we can believe (signature, names, freshness)."""


def build_request(certificate: x509.Certificate, issuer: x509.Certificate, nonce: bytes) -> bytes:
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA256())
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
    )
    return request.public_bytes(serialization.Encoding.DER)


def query(
    url: str,
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime,
    peers: Peers,
) -> OcspAnswer:
    nonce = secrets.token_bytes(16)
    body, _ = federation_http.fetch(
        "POST",
        url,
        peers=peers,
        max_bytes=MAX_RESPONSE_BYTES,
        what="OCSP应答",
        content=build_request(certificate, issuer, nonce),
        headers={"Content-Type": "application/ocsp-request"},
    )
    return check_response(body, certificate, issuer, nonce, now)


def check_response(
    der: bytes,
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    nonce: bytes | None,
    now: datetime,
) -> OcspAnswer:
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        raise _refused("不是OCSP应答 / not an OCSP response") from None
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _refused(f"OCSP应答失败 / responder answered {response.response_status.name}")
    responder = _responder(response, issuer, now)
    if not _signature_holds(response, responder):
        raise _refused("OCSP应答签名无效 / the OCSP response's signature does not verify")
    single = _single(response)
    expected = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, single.hash_algorithm)
        .build()
    )
    if (
        single.serial_number != certificate.serial_number
        or single.issuer_name_hash != expected.issuer_name_hash
        or single.issuer_key_hash != expected.issuer_key_hash
    ):
        raise _refused("OCSP应答与所询证书不符 / the OCSP response is about another certificate")
    if nonce is not None:
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            echoed = None
        if echoed != nonce:
            raise _refused("OCSP应答未回显随机数 / the OCSP response does not echo our nonce")
    this_update = single.this_update_utc
    next_update = single.next_update_utc
    if this_update > now + SKEW or (next_update is not None and next_update < now - SKEW):
        raise _refused("OCSP应答不在有效时间内 / the OCSP response is not current")
    status = single.certificate_status
    if status is ocsp.OCSPCertStatus.REVOKED:
        reason = single.revocation_reason
        return OcspAnswer(
            "revoked",
            this_update,
            next_update,
            single.revocation_time_utc,
            reason.value if reason is not None else None,  # the RFC 5280 name, as in trust.crl
            responder.subject.rfc4514_string(),
        )
    word = "good" if status is ocsp.OCSPCertStatus.GOOD else "unknown"
    return OcspAnswer(word, this_update, next_update, responder=responder.subject.rfc4514_string())


def _single(response: ocsp.OCSPResponse) -> ocsp.OCSPSingleResponse:
    singles = list(response.responses)
    if len(singles) != 1:
        raise _refused(f"OCSP应答含 {len(singles)} 项 / expected one single response")
    return singles[0]


def _responder(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> x509.Certificate:
    """The CA itself, or a delegated responder it issued for OCSP signing (RFC 6960 § 4.2.2.2)."""
    if _names(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _names(response, candidate):
            continue
        if not _ocsp_signer_of(candidate, issuer):
            continue
        if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
            raise _refused(
                "OCSP响应者证书不在有效期内 / the OCSP responder certificate is not valid"
            )
        return candidate
    raise _refused(
        "OCSP应答不是该CA或其授权响应者签发 / the OCSP response is not signed by the CA or a "
        "responder it authorised"
    )


def _ocsp_signer_of(candidate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        candidate.verify_directly_issued_by(issuer)
        usages = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except Exception:  # not issued by this CA, or no EKU: not a responder for it
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in list(usages)


def _names(response: ocsp.OCSPResponse, certificate: x509.Certificate) -> bool:
    """Whether the response's ResponderID designates ``certificate``."""
    if response.responder_name is not None:
        return response.responder_name == certificate.subject
    # KeyHash: SHA-1 of the subjectPublicKey BIT STRING, which is RFC 5280's key identifier
    # method 1.
    digest = x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest
    return response.responder_key_hash == digest


def _signature_holds(response: ocsp.OCSPResponse, responder: x509.Certificate) -> bool:
    public = responder.public_key()
    algorithm = response.signature_hash_algorithm
    if algorithm is None:
        return False
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm
            )
        else:
            return False
    except Exception:  # InvalidSignature
        return False
    return True


def _refused(message: str) -> OcspRefused:
    return OcspRefused(message, field="ocsp")


def chain_status(
    issuer_of: Callable[[x509.Certificate], x509.Certificate | None],
    ocsp_url_of: Callable[[x509.Certificate], str | None],
    certificate: x509.Certificate,
    now: datetime,
    peers: Peers,
) -> list[tuple[x509.Certificate, OcspAnswer]]:
    """OCSP answers for ``certificate`` and every CA above it short of the root, each asked of
    the responder its issuing CA names (``ocsp_url_of`` that CA)."""
    answers = []
    current = certificate
    for _ in range(MAX_DEPTH):
        issuer = issuer_of(current)
        if issuer is None:
            raise _refused("证书链不完整 / the chain has a certificate of no listed CA")
        url = ocsp_url_of(issuer)
        if not url:
            raise _refused("信任列表未给出OCSP地址 / the trust list names no OCSP responder")
        answers.append((current, query(url, current, issuer, now, peers)))
        if issuer.issuer == issuer.subject:  # the root: nothing above to ask about
            return answers
        current = issuer
    raise _refused("证书链过长 / the chain is longer than expected")
