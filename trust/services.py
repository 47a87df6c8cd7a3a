"""The domain's service certificates: one delegated OCSP responder per CA, the time-stamping
unit, and the trust-list signer.

They are made at ``elicence init`` (also for a data directory initialised before they
existed) and renewed, each with a fresh key version, once they come within their renewal
margin. Each service has its own key so that a compromise of one (say, the OCSP responder,
which signs on every request) never lets an attacker forge a seal, a timestamp or a CA
signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session

from keys.store import KeyRef, KeyStore
from trust.models import CertificateRecord
from trust.profiles import Role

if TYPE_CHECKING:
    from trust.authority import TrustDomain

ROOT = "root"  # the self-signed CA
SEAL_CA = "seal-ca"  # issues seal certificates
TSA_NAME = "tsa"
TRUST_LIST_NAME = "trust-list"

# OCSP responder certificates carry id-pkix-ocsp-nocheck, so they are kept short-lived.
OCSP_LIFETIME = timedelta(days=365)
OCSP_RENEW_BEFORE = timedelta(days=30)
# A TSA certificate signs tokens for three years and stays valid three more, so every token
# it made can be checked, and re-timestamped by `elicence archive refresh`, before it expires.
TSA_LIFETIME = timedelta(days=365 * 6)
TSA_RENEW_BEFORE = timedelta(days=365 * 3)
TRUST_LIST_LIFETIME = timedelta(days=365 * 3)
TRUST_LIST_RENEW_BEFORE = timedelta(days=90)


@dataclass(frozen=True)
class ServiceSpec:
    role: Role
    cert_name: str  # ocsp: the CA it answers for; otherwise the service name
    issuer_ca: str
    key_label: str
    common_name: str
    lifetime: timedelta
    renew_before: timedelta


def service_specs(domain_name: str, ca_names: list[str]) -> list[ServiceSpec]:
    specs = [
        ServiceSpec(
            Role.OCSP,
            ca,
            ca,
            f"ocsp-{ca}",
            f"{domain_name} OCSP {ca}",
            OCSP_LIFETIME,
            OCSP_RENEW_BEFORE,
        )
        for ca in ca_names
    ]
    specs.append(
        ServiceSpec(
            Role.TSA,
            TSA_NAME,
            ROOT,
            "tsa",
            f"{domain_name} 时间戳服务 TSA",
            TSA_LIFETIME,
            TSA_RENEW_BEFORE,
        )
    )
    specs.append(
        ServiceSpec(
            Role.TRUST_LIST,
            TRUST_LIST_NAME,
            ROOT,
            "trust-list",
            f"{domain_name} 信任列表签名 Trust List",
            TRUST_LIST_LIFETIME,
            TRUST_LIST_RENEW_BEFORE,
        )
    )
    return specs


def fresh_key(keystore: KeyStore, label: str) -> KeyRef:
    """A key version no certificate uses yet: a new key, or a new version of an existing label
    (a version left over by an interrupted init is simply skipped)."""
    if keystore.exists(label):
        return keystore.rotate(label)
    return keystore.create(label)


def ensure_service_certificates(
    trust: TrustDomain, session: Session, actor: str
) -> list[CertificateRecord]:
    """Issue every service certificate that is missing or within its renewal margin.

    Idempotent: run twice, the second run issues nothing. Returns what it issued.
    """
    now = trust.now()
    issued = []
    for spec in service_specs(trust.identity.name, trust.ca_names(session)):
        current = trust.current_service_record(session, spec.role, spec.cert_name)
        if current is not None and trust.not_after(current) - spec.renew_before > now:
            continue
        issued.append(
            trust.issue_certificate(
                session,
                actor=actor,
                role=spec.role,
                cert_name=spec.cert_name,
                issuer_ca=spec.issuer_ca,
                common_name=spec.common_name,
                key_ref=fresh_key(trust.keystore, spec.key_label),
                lifetime=spec.lifetime,
            )
        )
    return issued
