"""Certificate profiles: every role is built to its profile, and anything else is refused
before it is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from trust.profiles import (
    DOCUMENT_SIGNING,
    Endpoints,
    ProfileViolation,
    Role,
    build,
    check_profile,
    name,
)

ENDPOINTS = Endpoints("https://licence.example.gov.cn")
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    root = build(
        Role.ROOT_CA,
        subject=name("Test Root", "Test Org"),
        public_key=key.public_key(),
        issuer_certificate=None,
        issuer_key=key,
        issuer_ca_name=None,
        not_before=NOW,
        lifetime=timedelta(days=3650),
        endpoints=ENDPOINTS,
    )
    return root, key


def issue(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], role: Role, uscc: str | None = None
) -> x509.Certificate:
    root, root_key = ca
    return build(
        role,
        subject=name(f"Test {role.value}", "Test Org", uscc),
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        issuer_certificate=root,
        issuer_key=root_key,
        issuer_ca_name="root",
        not_before=NOW,
        lifetime=timedelta(days=365),
        endpoints=ENDPOINTS,
    )


@pytest.mark.parametrize("role", [Role.ISSUING_CA, Role.OCSP, Role.TSA, Role.TRUST_LIST])
def test_every_role_is_built_to_its_profile(ca, role: Role) -> None:  # type: ignore[no-untyped-def]
    certificate = issue(ca, role)
    check_profile(role, certificate)
    assert certificate.serial_number.bit_length() >= 64
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = {d.access_method: d.access_location.value for d in aia}
    assert urls[AuthorityInformationAccessOID.OCSP] == "https://licence.example.gov.cn/pki/ocsp"
    assert urls[AuthorityInformationAccessOID.CA_ISSUERS].endswith("/pki/ca/root.crt")
    crldp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert crldp[0].full_name[0].value == "https://licence.example.gov.cn/pki/crl/root.crl"


def test_tsa_certificate_has_only_a_critical_time_stamping_eku(ca) -> None:  # type: ignore[no-untyped-def]
    eku = issue(ca, Role.TSA).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_ocsp_certificate_has_ocsp_signing_and_nocheck(ca) -> None:  # type: ignore[no-untyped-def]
    certificate = issue(ca, Role.OCSP)
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    certificate.extensions.get_extension_for_class(x509.OCSPNoCheck)
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.content_commitment


def _raw(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    eku: list[x509.ObjectIdentifier] | None,
    eku_critical: bool = False,
    nocheck: bool = False,
    aia_ocsp: bool = True,
    serial: int | None = None,
    ca_flag: bool = False,
) -> x509.Certificate:
    """A certificate built by hand, to stray from a profile in one chosen way."""
    root, root_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(ENDPOINTS.ca_cert("root")),
        )
    ]
    if aia_ocsp:
        access.append(
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ENDPOINTS.ocsp)
            )
        )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name("Stray", "Test Org", "91350100M000100Y43"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .add_extension(x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.AuthorityInformationAccess(access), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(ENDPOINTS.crl("root"))], None, None, None
                    )
                ]
            ),
            critical=False,
        )
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=eku_critical)
    if nocheck:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    return builder.sign(root_key, hashes.SHA256())


def test_hand_built_seal_passes_when_it_follows_the_profile(ca) -> None:  # type: ignore[no-untyped-def]
    check_profile(Role.SEAL, _raw(ca, eku=[DOCUMENT_SIGNING]))


@pytest.mark.parametrize(
    ("role", "kwargs", "message"),
    [
        (Role.TSA, {"eku": [ExtendedKeyUsageOID.TIME_STAMPING]}, "must be critical"),
        (
            Role.TSA,
            {
                "eku": [ExtendedKeyUsageOID.TIME_STAMPING, DOCUMENT_SIGNING],
                "eku_critical": True,
            },
            "exactly",
        ),
        (Role.OCSP, {"eku": [ExtendedKeyUsageOID.OCSP_SIGNING]}, "nocheck"),
        (Role.SEAL, {"eku": [DOCUMENT_SIGNING], "nocheck": True}, "nocheck"),
        (Role.SEAL, {"eku": [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]}, "exactly"),
        (Role.SEAL, {"eku": None}, "missing extended key usage"),
        (Role.SEAL, {"eku": [DOCUMENT_SIGNING], "aia_ocsp": False}, "AIA"),
        (Role.SEAL, {"eku": [DOCUMENT_SIGNING], "serial": 12345}, "64 bits"),
        (Role.SEAL, {"eku": [DOCUMENT_SIGNING], "ca_flag": True}, "must not be a CA"),
        (Role.TRUST_LIST, {"eku": [ExtendedKeyUsageOID.CODE_SIGNING]}, "exactly"),
        (Role.ISSUING_CA, {"eku": None}, "signs certificates only"),
    ],
)
def test_a_certificate_off_its_profile_is_refused(ca, role, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProfileViolation, match=message):
        check_profile(role, _raw(ca, **kwargs))


def test_a_certificate_of_another_role_is_refused(ca) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProfileViolation):
        check_profile(Role.SEAL, issue(ca, Role.TSA))
    with pytest.raises(ProfileViolation):
        check_profile(Role.TSA, issue(ca, Role.OCSP))


def test_trust_domain_refuses_to_store_an_off_profile_certificate(ca) -> None:  # type: ignore[no-untyped-def]
    from keys.store import KeyRef
    from trust.authority import TrustDomain

    domain = TrustDomain.__new__(TrustDomain)  # _store checks before it touches the session
    with pytest.raises(ProfileViolation):
        domain._store(
            None,  # type: ignore[arg-type]
            issue(ca, Role.OCSP),
            Role.TSA,
            "tsa",
            1,
            KeyRef("soft", "x"),
        )
