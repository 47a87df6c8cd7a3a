"""Chain validation of an SM2 certificate to the domain's SM2 root at a given time: what the OFD
verifier (GB/T 38540 seals) asks of the SM2 PKI.

The path is built only from the domain's own SM2 CA certificates (the trust anchors are the SM2
roots this domain made, never a certificate the file carries), each signature is checked with
the issuer's SM2 key and the GB/T 35276 default ID, each certificate must be within its validity
at the time, CAs must be CAs and the end entity of the role asked for, and the end entity must be
a certificate this domain issued (a certificate with a good signature the domain has no row for
means its CA key signed something it did not record: refused). Revocation comes from the same
rows the CRLs and OCSP answers are made from (``Sm2Pki.status``).

A failure carries a sub-indication whose value is that of ``verify.report.SubIndication``
(ETSI EN 319 102-1 names where the product uses them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from asn1crypto import x509 as asn1_x509
from sqlmodel import Session

from core.db import as_utc
from keys.sm2 import SM2_WITH_SM3_OID, Sm2PublicKey, cached_public_key
from trust.profiles import Role
from trust.sm2_pki import Sm2Pki, Sm2Status
from trust.sm2_records import Sm2CertificateRecord
from trust.sm2_x509 import load_certificate, signed_by

MAX_DEPTH = 4


class Sm2ChainFailure(str, Enum):
    MALFORMED = "MALFORMED"  # not a DER certificate, or not SM2-with-SM3 on an SM2 key
    NO_CHAIN_FOUND = "NO_CHAIN_FOUND"  # no path to the domain's SM2 root; a foreign signer
    NOT_CERTIFIED = "NOT_CERTIFIED"  # a path exists but a certificate is off its role
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    SUSPENDED = "SUSPENDED"


@dataclass(frozen=True)
class Sm2ChainResult:
    """``failure`` None: the certificate chains to the SM2 root and was not revoked at the
    time. ``status`` is the certificate's status now (a revocation after the time leaves the
    result good and shows here, with its date)."""

    failure: Sm2ChainFailure | None
    reason: str
    chain: tuple[bytes, ...] = ()  # DER, the end entity first, the root last
    serial: str | None = None
    status: Sm2Status | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def sub_indication(self) -> str | None:
        return self.failure.value if self.failure is not None else None


def _fail(failure: Sm2ChainFailure, reason: str) -> Sm2ChainResult:
    return Sm2ChainResult(failure, reason)


def _key_id(certificate: asn1_x509.Certificate, which: str) -> bytes | None:
    value = certificate.key_identifier if which == "ski" else certificate.authority_key_identifier
    return bytes(value) if value is not None else None


def _within(certificate: asn1_x509.Certificate, at: datetime) -> Sm2ChainFailure | None:
    if at < certificate.not_valid_before:
        return Sm2ChainFailure.NOT_YET_VALID
    if at > certificate.not_valid_after:
        return Sm2ChainFailure.EXPIRED
    return None


def _is_ca(certificate: asn1_x509.Certificate) -> bool:
    basic = certificate.basic_constraints_value
    usage = certificate.key_usage_value
    return bool(
        basic is not None
        and basic["ca"].native
        and usage is not None
        and "key_cert_sign" in usage.native
    )


def _fits_role(certificate: asn1_x509.Certificate, role: Role) -> bool:
    if role in (Role.ROOT_CA, Role.ISSUING_CA):
        return _is_ca(certificate)  # the seal maker (SESeal.cert) is the SM2 seal CA
    basic = certificate.basic_constraints_value
    usage = set(certificate.key_usage_value.native) if certificate.key_usage_value else set()
    if basic is not None and basic["ca"].native:
        return False
    if role is Role.SEAL:
        return {"digital_signature", "non_repudiation"} <= usage
    return "digital_signature" in usage


def _issuer_of(
    pki: Sm2Pki, cas: list[Sm2CertificateRecord], certificate: asn1_x509.Certificate
) -> Sm2CertificateRecord | None:
    """The domain CA whose name and key identifier match and whose key made the signature."""
    aki = _key_id(certificate, "aki")
    for record in cas:
        ca = pki.parsed(record)
        if ca.subject != certificate.issuer:
            continue
        if aki is not None and _key_id(ca, "ski") != aki:
            continue
        try:
            public = cached_public_key(ca.public_key.dump())  # the domain's own CA keys
        except ValueError:
            continue
        if signed_by(certificate, public):
            return record
    return None


def validate_sm2_certificate(
    session: Session,
    pki: Sm2Pki,
    certificate_der: bytes,
    at: datetime,
    *,
    role: Role = Role.SEAL,
) -> Sm2ChainResult:
    """Validate ``certificate_der`` (an end entity of ``role``) to the domain's SM2 root at
    ``at`` (the proven time), with validity and revocation. Never raises on hostile input."""
    at = as_utc(at)
    try:
        leaf = load_certificate(certificate_der)
        if leaf["signature_algorithm"]["algorithm"].dotted != SM2_WITH_SM3_OID:
            raise ValueError("not SM2-with-SM3")
        Sm2PublicKey.from_spki_der(leaf.public_key.dump())
    except (ValueError, TypeError, KeyError) as exc:
        return _fail(Sm2ChainFailure.MALFORMED, f"不是 SM2 证书 / not an SM2 certificate: {exc}")
    cas = pki.ca_records(session)
    path: list[tuple[asn1_x509.Certificate, bytes]] = [(leaf, bytes(certificate_der))]
    current = leaf
    for _ in range(MAX_DEPTH):
        issuer = _issuer_of(pki, cas, current)
        if issuer is None:
            return _fail(
                Sm2ChainFailure.NO_CHAIN_FOUND,
                "证书不是本信任域 SM2 CA 所签 / the certificate is not signed by an SM2 CA of "
                "this domain",
            )
        ca = pki.parsed(issuer)
        if not _is_ca(ca):
            return _fail(Sm2ChainFailure.NOT_CERTIFIED, "issuer is not a CA")
        path.append((ca, issuer.der))
        if issuer.role == Role.ROOT_CA.value:
            break
        current = ca
    else:
        return _fail(Sm2ChainFailure.NO_CHAIN_FOUND, "SM2 chain too long")
    if path[-1][1] not in pki.roots(session):
        return _fail(Sm2ChainFailure.NO_CHAIN_FOUND, "no path to the SM2 root")
    for certificate, _der in path:
        out_of_bounds = _within(certificate, at)
        if out_of_bounds is not None:
            return _fail(
                out_of_bounds,
                f"证书在该时间不在有效期内 / a certificate of the chain is "
                f"{out_of_bounds.value.lower()} at {at.isoformat()}",
            )
    if not _fits_role(leaf, role):
        return _fail(Sm2ChainFailure.NOT_CERTIFIED, f"not a {role.value} certificate")
    serial = format(leaf.serial_number, "x")
    record = pki.record(session, serial)
    if record is None or record.der != bytes(certificate_der) or record.role != role.value:
        return _fail(
            Sm2ChainFailure.NO_CHAIN_FOUND,
            "本信任域未签发此证书 / this domain has no record of issuing the certificate",
        )
    chain = tuple(der for _, der in path)
    status = pki.status(session, record)
    if status.status != "good" and status.revoked_at is not None and status.revoked_at <= at:
        failure = Sm2ChainFailure.SUSPENDED if status.status == "hold" else Sm2ChainFailure.REVOKED
        return Sm2ChainResult(
            failure,
            f"证书在该时间已{'暂停' if status.status == 'hold' else '吊销'} / the certificate was "
            f"{'suspended' if status.status == 'hold' else 'revoked'} at "
            f"{status.revoked_at.isoformat()} ({status.reason})",
            chain,
            serial,
            status,
        )
    return Sm2ChainResult(None, "ok", chain, serial, status)
