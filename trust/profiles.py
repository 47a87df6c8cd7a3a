"""Certificate profiles, written down once.

Each profile states the extensions a certificate of that role carries; :func:`check_profile`
re-reads a built certificate and refuses it if it strays, before it is ever stored or served.
A relying party that finds an OCSP-signing certificate able to seal documents, or a seal able
to sign CRLs, has no reason to trust anything else the domain says; so every role has exactly
the key usages it needs and nothing more.
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
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
    ObjectIdentifier,
)

# RFC 9336 id-kp-documentSigning: the seal certificate signs documents, nothing else.
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# ETSI TS 119 612 id-tsl-kp-tslSigning: the key that signs the domain's trust list.
TRUST_LIST_SIGNING = ObjectIdentifier("0.4.0.2231.3.0")


class Role(str, Enum):
    ROOT_CA = "root-ca"
    ISSUING_CA = "issuing-ca"
    SEAL = "seal"
    OCSP = "ocsp"  # delegated OCSP responder of one CA (RFC 6960 § 4.2.2.2)
    TSA = "tsa"  # RFC 3161 time-stamping unit
    TRUST_LIST = "trust-list"


CA_ROLES = (Role.ROOT_CA, Role.ISSUING_CA)

# Which extended key usage each end-entity role carries, and whether it is critical.
# RFC 3161 § 2.3: a TSA certificate has id-kp-timeStamping only, and the extension is critical.
_EKU: dict[Role, tuple[ObjectIdentifier, bool]] = {
    Role.SEAL: (DOCUMENT_SIGNING, False),
    Role.OCSP: (ExtendedKeyUsageOID.OCSP_SIGNING, False),
    Role.TSA: (ExtendedKeyUsageOID.TIME_STAMPING, True),
    Role.TRUST_LIST: (TRUST_LIST_SIGNING, False),
}


@dataclass(frozen=True)
class Endpoints:
    """Where relying parties fetch CA certificates, CRLs, OCSP and timestamps (under
    PUBLIC_BASE_URL)."""

    base_url: str

    def ca_cert(self, ca_name: str) -> str:
        return f"{self.base_url}/pki/ca/{ca_name}.crt"

    def crl(self, ca_name: str) -> str:
        return f"{self.base_url}/pki/crl/{ca_name}.crl"

    @property
    def ocsp(self) -> str:
        return f"{self.base_url}/pki/ocsp"

    @property
    def tsa(self) -> str:
        return f"{self.base_url}/pki/tsa"

    @property
    def trust_list(self) -> str:
        return f"{self.base_url}/pki/trust-list"

    @property
    def status_list(self) -> str:
        return f"{self.base_url}/pki/status-list"


def random_serial() -> int:
    """Serials carry 127 bits of randomness (RFC 5280 allows up to 20 octets, positive)."""
    return secrets.randbits(127) | (1 << 126)


COMMON_NAME_BYTES = 64  # ub-common-name, as ``cryptography`` counts it: UTF-8 bytes


def fit_common_name(head: str, tail: str = "") -> str:
    """``head + tail`` within the common name's 64 bytes, ``head`` shortened (ending in "…")
    when needed. A Chinese department name of 16 characters and a seal type of 7 take 69 bytes;
    the full name stays in O, so only the label a certificate viewer shows is shortened."""
    whole = f"{head}{tail}"
    if len(whole.encode()) <= COMMON_NAME_BYTES:
        return whole
    room = COMMON_NAME_BYTES - len(f"…{tail}".encode())
    kept = ""
    for char in head:
        if len((kept + char).encode()) > room:
            break
        kept += char
    return f"{kept}…{tail}"


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
    builder = _with_role_extensions(builder, role)
    if issuer_ca_name is not None:
        builder = _with_issuer_locations(builder, endpoints, issuer_ca_name)
    certificate = builder.sign(issuer_key, hashes.SHA256())
    check_profile(role, certificate)
    return certificate


def _with_role_extensions(builder: x509.CertificateBuilder, role: Role) -> x509.CertificateBuilder:
    """Basic constraints, key usage and, for an end entity, the extended key usage of ``role``."""
    if role in CA_ROLES:
        path_length = 0 if role is Role.ISSUING_CA else 1
        return builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=path_length), critical=True
        ).add_extension(_key_usage(cert_sign=True), critical=True)
    eku, eku_critical = _EKU[role]
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(digital_signature=True, non_repudiation=role is not Role.OCSP),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=eku_critical)
    )
    if role is Role.OCSP:
        # RFC 6960 § 4.2.2.2.1: the responder's own status is not checked; it is short-lived.
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    return builder


def _with_issuer_locations(
    builder: x509.CertificateBuilder, endpoints: Endpoints, issuer_ca_name: str
) -> x509.CertificateBuilder:
    """Where the issuer's CRL, OCSP responder and certificate are published (CRL DP, AIA)."""
    return builder.add_extension(
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
                    AuthorityInformationAccessOID.OCSP,
                    x509.UniformResourceIdentifier(endpoints.ocsp),
                ),
                x509.AccessDescription(
                    AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier(endpoints.ca_cert(issuer_ca_name)),
                ),
            ]
        ),
        critical=False,
    )


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
    if role is not Role.ROOT_CA:
        _check_pointers(role, certificate)
    if role in CA_ROLES:
        if not basic.value.ca or not usage.value.key_cert_sign or usage.value.digital_signature:
            raise ProfileViolation(f"{role.value}: a CA certificate signs certificates only")
        return
    if basic.value.ca:
        raise ProfileViolation(f"{role.value}: must not be a CA")
    if not usage.value.digital_signature:
        raise ProfileViolation(f"{role.value}: needs digitalSignature")
    if usage.value.key_cert_sign or usage.value.crl_sign:
        raise ProfileViolation(f"{role.value}: must not sign certificates or CRLs")
    if usage.value.key_encipherment or usage.value.key_agreement or usage.value.data_encipherment:
        raise ProfileViolation(f"{role.value}: a signing key must not encrypt")
    _check_eku(role, certificate)
    if role is Role.SEAL:
        if not usage.value.content_commitment:
            raise ProfileViolation("seal: needs digitalSignature and nonRepudiation")
        if not certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER):
            raise ProfileViolation("seal: subject must carry the department's credit code")
    has_nocheck = any(e.oid == x509.OCSPNoCheck.oid for e in ext)
    if (role is Role.OCSP) != has_nocheck:
        raise ProfileViolation(
            f"{role.value}: id-pkix-ocsp-nocheck belongs on OCSP responder certificates only"
        )


def _check_eku(role: Role, certificate: x509.Certificate) -> None:
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise ProfileViolation(f"{role.value}: missing extended key usage") from None
    expected, critical = _EKU[role]
    if list(eku.value) != [expected]:
        raise ProfileViolation(
            f"{role.value}: extended key usage must be exactly {expected.dotted_string}"
        )
    if critical and not eku.critical:
        raise ProfileViolation(f"{role.value}: extended key usage must be critical")


def _check_pointers(role: Role, certificate: x509.Certificate) -> None:
    """Every certificate below the root says where its status and its issuer can be found."""
    try:
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
        certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound as exc:
        raise ProfileViolation(f"{role.value}: missing extension {exc.oid.dotted_string}") from exc
    methods = {d.access_method for d in aia.value}
    if (
        not {AuthorityInformationAccessOID.OCSP, AuthorityInformationAccessOID.CA_ISSUERS}
        <= methods
    ):
        raise ProfileViolation(f"{role.value}: AIA must name the OCSP responder and the CA issuer")
