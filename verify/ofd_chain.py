"""The SM2 certificates of an OFD seal against this domain's SM2 roots, at the proven time.

pyhanko-certvalidator does not know SM2-with-SM3, so the path is built here, narrowly: from the
certificate up through the given intermediates (matched by issuer name) to a root that is one of
the given anchors byte for byte; every signature verified with SM2 (GB/T 32918, default ID),
every certificate valid at the moment, every issuer a CA (basicConstraints cA, keyCertSign), and
at most ``MAX_DEPTH`` links. Pure: runs in the upload's worker; revocation is decided by the
parent from this domain's records (``verify.ltv``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509 as asn1_x509

from keys.sm2 import SM2_WITH_SM3_OID, Sm2PublicKey

MAX_DEPTH = 4


@dataclass(frozen=True)
class Sm2Anchors:
    """This domain's SM2 roots and the CAs under them, DER."""

    roots: tuple[bytes, ...]
    intermediates: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class ChainResult:
    trusted: bool
    detail: str
    path: tuple[bytes, ...] = ()  # leaf first, DER, root last


def _load(der: bytes) -> asn1_x509.Certificate:
    cert = asn1_x509.Certificate.load(der, strict=True)
    cert["tbs_certificate"]["validity"]
    cert.subject, cert.issuer  # noqa: B018
    return cert


def _signed_by(cert: asn1_x509.Certificate, issuer: asn1_x509.Certificate) -> bool:
    if cert["signature_algorithm"]["algorithm"].dotted != SM2_WITH_SM3_OID:
        return False
    try:
        key = Sm2PublicKey.from_certificate_der(issuer.dump())
    except ValueError:
        return False
    return key.verify(cert["signature_value"].native, cert["tbs_certificate"].dump())


def _valid_at(cert: asn1_x509.Certificate, at: datetime) -> bool:
    validity = cert["tbs_certificate"]["validity"]
    return bool(validity["not_before"].native <= at <= validity["not_after"].native)


def _is_ca(cert: asn1_x509.Certificate) -> bool:
    usage = cert.key_usage_value
    return bool(cert.ca) and (usage is None or "key_cert_sign" in usage.native)


def validate(
    cert_der: bytes, anchors: Sm2Anchors, at: datetime, whose: str = "signer's"
) -> ChainResult:
    """Whether ``cert_der`` chains to one of ``anchors.roots`` at ``at``; the first reason
    it does not, otherwise. The reasons name certificates by their place in the path (``whose``
    for the first), never by a name the uploaded file gave them."""
    try:
        current = _load(cert_der)
        roots = [_load(d) for d in anchors.roots]
        pool = roots + [_load(d) for d in anchors.intermediates]
    except (ValueError, TypeError) as exc:
        return ChainResult(False, f"certificate unreadable: {type(exc).__name__}")
    try:
        return _walk(current, roots, pool, at, whose)
    except (ValueError, TypeError, KeyError) as exc:  # a part read lazily that does not parse
        return ChainResult(False, f"certificate unreadable: {type(exc).__name__}")


def _walk(
    current: asn1_x509.Certificate,
    roots: list[asn1_x509.Certificate],
    pool: list[asn1_x509.Certificate],
    at: datetime,
    whose: str,
) -> ChainResult:
    path = [current]
    for _ in range(MAX_DEPTH):
        subject = f"the {whose} certificate" if len(path) == 1 else "its issuer"
        if not _valid_at(current, at):
            return ChainResult(False, f"{subject} not valid at {at.isoformat()}")
        if any(current.dump() == root.dump() for root in roots):
            # the root is this domain's own (byte for byte): its name is ours to show
            root = current.subject.human_friendly
            return ChainResult(
                True,
                f"chains to the SM2 root {root}, valid at {at.isoformat()}",
                tuple(c.dump() for c in path),
            )
        # Names compared as encoded: this domain's CAs write their names one way (and
        # asn1crypto's normalising comparison costs milliseconds a pair).
        issuer = current.issuer.dump()
        issuers = [
            c for c in pool if c.subject.dump() == issuer and _is_ca(c) and _signed_by(current, c)
        ]
        if not issuers:
            return ChainResult(False, f"no SM2 CA of this domain signed {subject}")
        current = issuers[0]
        path.append(current)
    return ChainResult(False, f"SM2 chain longer than {MAX_DEPTH}")
