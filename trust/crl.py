"""CRLs: how one is built, and the last one each CA published, kept so a request does not
cost a signature."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from sqlalchemy import Column, DateTime, LargeBinary
from sqlmodel import Field, SQLModel

from core.db import as_utc
from trust.models import CertificateRecord


@dataclass(frozen=True)
class Reason:
    """An RFC 5280 § 5.3.1 CRLReason: the name operators type (the ASN.1 name), the flag CRLs
    and OCSP answers carry, and whether a department may give it for its own seal."""

    name: str
    flag: x509.ReasonFlags
    for_seals: bool = True


# The one table of revocation reasons: CRLs and OCSP answers (trust.crl, trust.ocsp), the
# authority's check (trust.authority), the seal routes and the seal CLI all read it.
# cACompromise names a CA's key, never a seal's, so a department cannot choose it.
REASON_TABLE = (
    Reason("keyCompromise", x509.ReasonFlags.key_compromise),
    Reason("cACompromise", x509.ReasonFlags.ca_compromise, for_seals=False),
    Reason("affiliationChanged", x509.ReasonFlags.affiliation_changed),
    Reason("superseded", x509.ReasonFlags.superseded),
    Reason("cessationOfOperation", x509.ReasonFlags.cessation_of_operation),
    Reason("certificateHold", x509.ReasonFlags.certificate_hold),
    Reason("unspecified", x509.ReasonFlags.unspecified),
)
REASONS = {reason.name: reason.flag for reason in REASON_TABLE}
SEAL_REASONS = tuple(reason.name for reason in REASON_TABLE if reason.for_seals)


class CrlRecord(SQLModel, table=True):
    __tablename__ = "crl"

    ca_name: str = Field(primary_key=True, max_length=32)
    crl_number: int = 0
    der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    next_update: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


def build_crl(
    *,
    ca_cert: x509.Certificate,
    ca_key: CertificateIssuerPrivateKeyTypes,
    number: int,
    now: datetime,
    lifetime: timedelta,
    revoked: Iterable[CertificateRecord],
) -> bytes:
    """A DER CRL of ``ca_cert`` listing ``revoked`` (held certificates with certificateHold;
    a lifted hold simply leaves the next CRL)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + lifetime)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    for row in revoked:
        assert row.revoked_at is not None
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(row.serial, 16))
            .revocation_date(as_utc(row.revoked_at))
        )
        reason = REASONS[row.revocation_reason or "unspecified"]
        if reason is not x509.ReasonFlags.unspecified:  # RFC 5280: omit rather than unspecified
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
