"""Certificate profiles, written down once.

Each profile states the extensions a certificate of that role carries; :func:`check_profile`
re-reads a built certificate and refuses it if it strays, before it is ever stored or served.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

# RFC 9336 id-kp-documentSigning: the seal certificate signs documents, nothing else.
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")


class Role(str, Enum):
    ROOT_CA = "root-ca"
    ISSUING_CA = "issuing-ca"
    SEAL = "seal"


@dataclass(frozen=True)
class Endpoints:
    """Where relying parties fetch CA certificates and CRLs (under PUBLIC_BASE_URL)."""

    base_url: str

    def ca_cert(self, ca_name: str) -> str:
        return f"{self.base_url}/pki/ca/{ca_name}.crt"

    def crl(self, ca_name: str) -> str:
        return f"{self.base_url}/pki/crl/{ca_name}.crl"


def random_serial() -> int:
    """Serials carry 127 bits of randomness (RFC 5280 allows up to 20 octets, positive)."""
    return secrets.randbits(127) | (1 << 126)


def name(common_name: str, organisation: str, uscc: str | None = None) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
    ]
    if uscc:
        # ETSI EN 319 412-1 semantics identifier: NTR (national trade register) + country.
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRCN-{uscc}"))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def build(
    role: Role,
    *,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer_certificate: x509.Certificate | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    issuer_ca_name: str | None,
    not_before: datetime,
    lifetime: timedelta,
    endpoints: Endpoints,
) -> x509.Certificate:
    """Build and sign a certificate of ``role``; a root signs itself (issuer_certificate None)."""
    issuer_name = subject if issuer_certificate is None else issuer_certificate.subject
    issuer_public = public_key if issuer_certificate is None else issuer_certificate.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if role in (Role.ROOT_CA, Role.ISSUING_CA):
        path_length = 0 if role is Role.ISSUING_CA else 1
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=path_length), critical=True
        ).add_extension(_key_usage(cert_sign=True), critical=True)
    else:
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True, non_repudiation=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING]), critical=False)
        )
    if issuer_ca_name is not None:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(endpoints.crl(issuer_ca_name))],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        ).add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(endpoints.ca_cert(issuer_ca_name)),
                    )
                ]
            ),
            critical=False,
        )
    certificate = builder.sign(issuer_key, hashes.SHA256())
    check_profile(role, certificate)
    return certificate


def _key_usage(
    *, cert_sign: bool = False, digital_signature: bool = False, non_repudiation: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


class ProfileViolation(ValueError):
    pass


def check_profile(role: Role, certificate: x509.Certificate) -> None:
    """Refuse a certificate that does not match its role's profile."""
    ext = certificate.extensions
    try:
        basic = ext.get_extension_for_class(x509.BasicConstraints)
        usage = ext.get_extension_for_class(x509.KeyUsage)
        ext.get_extension_for_class(x509.SubjectKeyIdentifier)
        ext.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound as exc:
        raise ProfileViolation(f"{role.value}: missing extension {exc.oid.dotted_string}") from exc
    if certificate.serial_number.bit_length() < 64:
        raise ProfileViolation(f"{role.value}: serial number has fewer than 64 bits")
    if not (basic.critical and usage.critical):
        raise ProfileViolation(f"{role.value}: basic constraints and key usage must be critical")
    if role in (Role.ROOT_CA, Role.ISSUING_CA):
        if not basic.value.ca or not usage.value.key_cert_sign or usage.value.digital_signature:
            raise ProfileViolation(f"{role.value}: a CA certificate signs certificates only")
        return
    if basic.value.ca:
        raise ProfileViolation("seal: must not be a CA")
    if not (usage.value.digital_signature and usage.value.content_commitment):
        raise ProfileViolation("seal: needs digitalSignature and nonRepudiation")
    if usage.value.key_cert_sign or usage.value.crl_sign:
        raise ProfileViolation("seal: must not sign certificates or CRLs")
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    if DOCUMENT_SIGNING not in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku:
        raise ProfileViolation("seal: extended key usage must be document signing")
    if not certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER):
        raise ProfileViolation("seal: subject must carry the department's credit code")
