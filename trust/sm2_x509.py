"""SM2-with-SM3 certificates and CRLs (GB/T 20518, RFC 5280 structures), built with asn1crypto.

``cryptography`` cannot sign with SM2, so the to-be-signed structures are assembled here and
their DER is signed through the key store (``keys.sm2.sign_message``: e = SM3(Z || TBS) with the
issuer's public key and the default distinguishing ID, as OpenSSL and GM/T 0015 readers expect).
The profiles are those of the ECDSA hierarchy (``trust.profiles``): the same names, the same key
usages per role, SKI/AKI, CRL distribution point and AIA (OCSP, CA issuers) below the root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509

from keys.sm2 import SM2_WITH_SM3_OID, Sm2PublicKey, Sm2SigningStore, sign_message
from keys.store import KeyRef, KeyUseListener
from trust.profiles import DOCUMENT_SIGNING, Endpoints, Role, random_serial

# RFC 5280 names of the revocation reasons of trust.crl.REASON_TABLE, as asn1crypto spells them.
CRL_REASONS = {
    "unspecified": "unspecified",
    "keyCompromise": "key_compromise",
    "cACompromise": "ca_compromise",
    "affiliationChanged": "affiliation_changed",
    "superseded": "superseded",
    "cessationOfOperation": "cessation_of_operation",
    "certificateHold": "certificate_hold",
}
_OCSP_SIGNING = "1.3.6.1.5.5.7.3.9"


class Sm2Signer:
    """An SM2 key in the key store that signs certificates, CRLs or OCSP answers."""

    def __init__(
        self,
        keystore: Sm2SigningStore,
        ref: KeyRef,
        listener: KeyUseListener | None,
        purpose: str,
    ) -> None:
        self._keystore = keystore
        self.ref = ref
        self._listener = listener
        self._purpose = purpose

    def sign(self, tbs_der: bytes) -> bytes:
        return sign_message(
            self._keystore, self.ref, tbs_der, listener=self._listener, purpose=self._purpose
        )


def algorithm() -> asn1_x509.SignedDigestAlgorithm:
    """SM2-with-SM3, parameters absent (as OpenSSL and GM/T 0015 write it)."""
    return asn1_x509.SignedDigestAlgorithm({"algorithm": SM2_WITH_SM3_OID})


def asn1_name(name: x509.Name) -> asn1_x509.Name:
    """A ``cryptography`` name (``trust.profiles.name``) as asn1crypto's, byte for byte."""
    return asn1_x509.Name.load(name.public_bytes())


def key_identifier(spki_der: bytes) -> bytes:
    """RFC 5280 § 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value."""
    info = asn1_keys.PublicKeyInfo.load(spki_der)
    return hashlib.sha1(bytes(info["public_key"])).digest()  # noqa: S324 - an identifier


def _time(moment: datetime) -> asn1_x509.Time:
    moment = moment.astimezone(UTC).replace(microsecond=0)
    if moment.year < 2050:  # RFC 5280 § 4.1.2.5
        return asn1_x509.Time({"utc_time": moment})
    return asn1_x509.Time({"general_time": moment})


def _uri(url: str) -> asn1_x509.GeneralName:
    return asn1_x509.GeneralName(name="uniform_resource_identifier", value=url)


@dataclass(frozen=True)
class Sm2CertificateSpec:
    role: Role
    subject: x509.Name
    subject_spki: bytes
    not_before: datetime
    lifetime: timedelta


def _extensions(
    spec: Sm2CertificateSpec,
    issuer_spki: bytes,
    issuer_ca_name: str | None,
    endpoints: Endpoints,
) -> list[dict[str, object]]:
    role = spec.role
    out: list[dict[str, object]] = []
    if role in (Role.ROOT_CA, Role.ISSUING_CA):
        path = 0 if role is Role.ISSUING_CA else 1
        out.append(
            {
                "extn_id": "basic_constraints",
                "critical": True,
                "extn_value": {"ca": True, "path_len_constraint": path},
            }
        )
        out.append(
            {
                "extn_id": "key_usage",
                "critical": True,
                "extn_value": {"key_cert_sign", "crl_sign"},
            }
        )
    else:
        usage = (
            {"digital_signature"} if role is Role.OCSP else {"digital_signature", "non_repudiation"}
        )
        eku = _OCSP_SIGNING if role is Role.OCSP else DOCUMENT_SIGNING.dotted_string
        out.append({"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": False}})
        out.append({"extn_id": "key_usage", "critical": True, "extn_value": usage})
        out.append({"extn_id": "extended_key_usage", "critical": False, "extn_value": [eku]})
        if role is Role.OCSP:
            out.append({"extn_id": "ocsp_no_check", "critical": False, "extn_value": None})
    out.append({"extn_id": "key_identifier", "extn_value": key_identifier(spec.subject_spki)})
    out.append(
        {
            "extn_id": "authority_key_identifier",
            "extn_value": {"key_identifier": key_identifier(issuer_spki)},
        }
    )
    if issuer_ca_name is not None:
        out.append(
            {
                "extn_id": "crl_distribution_points",
                "extn_value": [
                    {"distribution_point": {"full_name": [_uri(endpoints.crl(issuer_ca_name))]}}
                ],
            }
        )
        out.append(
            {
                "extn_id": "authority_information_access",
                "extn_value": [
                    {
                        "access_method": "ocsp",
                        "access_location": _uri(endpoints.ocsp),
                    },
                    {
                        "access_method": "ca_issuers",
                        "access_location": _uri(endpoints.ca_cert(issuer_ca_name)),
                    },
                ],
            }
        )
    return out


def build_certificate(
    spec: Sm2CertificateSpec,
    *,
    issuer: asn1_x509.Certificate | None,
    issuer_ca_name: str | None,
    signer: Sm2Signer,
    endpoints: Endpoints,
) -> bytes:
    """The DER certificate of ``spec``, signed by ``signer`` (a root: ``issuer`` None, signed
    by its own key). The validity never outlasts the issuer's."""
    subject = asn1_name(spec.subject)
    if issuer is None:
        issuer_name, issuer_spki = subject, spec.subject_spki
        not_after = spec.not_before + spec.lifetime
    else:
        issuer_name = issuer.subject
        issuer_spki = issuer.public_key.dump()
        not_after = min(spec.not_before + spec.lifetime, issuer.not_valid_after)
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": random_serial(),
            "signature": algorithm(),
            "issuer": issuer_name,
            "validity": {"not_before": _time(spec.not_before), "not_after": _time(not_after)},
            "subject": subject,
            "subject_public_key_info": asn1_keys.PublicKeyInfo.load(spec.subject_spki),
            "extensions": _extensions(spec, issuer_spki, issuer_ca_name, endpoints),
        }
    )
    tbs_der = tbs.dump()
    certificate = asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
            "signature_algorithm": algorithm(),
            "signature_value": signer.sign(tbs_der),
        }
    )
    der: bytes = certificate.dump()
    return der


def signed_by(certificate: asn1_x509.Certificate, issuer_public: Sm2PublicKey) -> bool:
    """Whether the certificate's SM2-with-SM3 signature is ``issuer_public``'s."""
    if certificate["signature_algorithm"]["algorithm"].dotted != SM2_WITH_SM3_OID:
        return False
    if certificate["tbs_certificate"]["signature"]["algorithm"].dotted != SM2_WITH_SM3_OID:
        return False
    return issuer_public.verify(
        bytes(certificate["signature_value"]), certificate["tbs_certificate"].dump()
    )


@dataclass(frozen=True)
class CrlEntry:
    serial: str  # lower-case hex
    revoked_at: datetime
    reason: str | None  # trust.crl REASONS name


def build_crl(
    *,
    ca: asn1_x509.Certificate,
    signer: Sm2Signer,
    number: int,
    now: datetime,
    lifetime: timedelta,
    entries: Iterable[CrlEntry],
) -> bytes:
    """A DER v2 CRL of ``ca`` signed with SM2-with-SM3 (held certificates: certificateHold)."""
    revoked = []
    for entry in entries:
        item: dict[str, object] = {
            "user_certificate": int(entry.serial, 16),
            "revocation_date": _time(entry.revoked_at),
        }
        reason = CRL_REASONS.get(entry.reason or "unspecified", "unspecified")
        if reason != "unspecified":  # RFC 5280: omit rather than unspecified
            item["crl_entry_extensions"] = [{"extn_id": "crl_reason", "extn_value": reason}]
        revoked.append(item)
    tbs: dict[str, object] = {
        "version": "v2",
        "signature": algorithm(),
        "issuer": ca.subject,
        "this_update": _time(now),
        "next_update": _time(now + lifetime),
        "crl_extensions": [
            {"extn_id": "crl_number", "extn_value": number},
            {
                "extn_id": "authority_key_identifier",
                "extn_value": {"key_identifier": key_identifier(ca.public_key.dump())},
            },
        ],
    }
    if revoked:
        tbs["revoked_certificates"] = revoked
    tbs_der = asn1_crl.TbsCertList(tbs).dump()
    der: bytes = asn1_crl.CertificateList(
        {
            "tbs_cert_list": asn1_crl.TbsCertList.load(tbs_der),
            "signature_algorithm": algorithm(),
            "signature": signer.sign(tbs_der),
        }
    ).dump()
    return der


def load_certificate(der: bytes) -> asn1_x509.Certificate:
    """Parse strictly (trailing data refused); ``ValueError`` on anything malformed."""
    try:
        certificate = asn1_x509.Certificate.load(bytes(der), strict=True)
        certificate.native  # noqa: B018 - parse every field now, not in a later check
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not a certificate: {exc}") from exc
    return certificate
