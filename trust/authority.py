"""The trust domain's CA hierarchy: a root, an issuing CA for seals, their CRLs.

Every signature is made through the key store (see ``keys.signing``) and recorded in the audit
chain. Initialising is idempotent: a domain that exists is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from sqlmodel import Session, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import as_utc
from core.errors import Conflict, NotFound
from keys.audit import AuditedKeyUse
from keys.signing import private_key_for
from keys.store import KeyRef, KeyStore
from trust.crl import CrlRecord
from trust.models import AuthorityRecord, CertificateRecord
from trust.profiles import Endpoints, Role, build, name

ROOT = "root"
SEAL_CA = "seal-ca"
CRL_LIFETIME = timedelta(hours=24)
CRL_REFRESH_MARGIN = timedelta(hours=12)

_REASONS = {
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "unspecified": x509.ReasonFlags.unspecified,
}


@dataclass(frozen=True)
class DomainIdentity:
    name: str  # e.g. 某某省电子证照信任域
    organisation: str


def load_pem(record: CertificateRecord) -> x509.Certificate:
    return x509.load_pem_x509_certificate(record.pem.encode())


class TrustDomain:
    def __init__(
        self,
        *,
        keystore: KeyStore,
        clock: Clock,
        audit: AuditLog,
        endpoints: Endpoints,
        identity: DomainIdentity,
    ) -> None:
        self._keys = keystore
        self._clock = clock
        self._audit = audit
        self._endpoints = endpoints
        self._identity = identity
        self._cert_cache: dict[str, x509.Certificate] = {}

    @property
    def identity(self) -> DomainIdentity:
        return self._identity

    # -- hierarchy -------------------------------------------------------------------------

    def is_initialised(self, session: Session) -> bool:
        return session.get(AuthorityRecord, SEAL_CA) is not None

    def initialise(self, session: Session, actor: str) -> bool:
        """Create the root and the seal-issuing CA. Returns False when they already exist."""
        if self.is_initialised(session):
            return False
        now = self._clock.now()
        root_ref = self._new_key("ca-root")
        root_key = private_key_for(self._keys, root_ref, "root-ca", self._listener(session, actor))
        root = build(
            Role.ROOT_CA,
            subject=name(f"{self._identity.name} 根CA Root CA", self._identity.organisation),
            public_key=root_key.public_key(),
            issuer_certificate=None,
            issuer_key=root_key,
            issuer_ca_name=None,
            not_before=now - timedelta(minutes=5),
            lifetime=timedelta(days=365 * 20),
            endpoints=self._endpoints,
        )
        self._store(session, root, Role.ROOT_CA, ROOT, None, root_ref)
        session.add(AuthorityRecord(name=ROOT, certificate_serial=_hex(root.serial_number)))
        ca_ref = self._new_key("ca-seal")
        ca_key = private_key_for(self._keys, ca_ref, "issuing-ca", self._listener(session, actor))
        issuing = build(
            Role.ISSUING_CA,
            subject=name(f"{self._identity.name} 电子印章CA Seal CA", self._identity.organisation),
            public_key=ca_key.public_key(),
            issuer_certificate=root,
            issuer_key=root_key,
            issuer_ca_name=ROOT,
            not_before=now - timedelta(minutes=5),
            lifetime=timedelta(days=365 * 10),
            endpoints=self._endpoints,
        )
        self._store(session, issuing, Role.ISSUING_CA, SEAL_CA, root.serial_number, ca_ref)
        session.add(AuthorityRecord(name=SEAL_CA, certificate_serial=_hex(issuing.serial_number)))
        session.flush()
        self._audit.append(
            session,
            actor=actor,
            action="domain.init",
            object_type="domain",
            object_id=self._identity.name,
            detail={"root": _hex(root.serial_number), "seal_ca": _hex(issuing.serial_number)},
        )
        return True

    def _new_key(self, label: str) -> KeyRef:
        if self._keys.exists(label):
            raise Conflict(
                f"密钥 {label} 已存在但信任域未初始化 / key {label} exists but the domain does not; "
                "restore the database or use a fresh key store"
            )
        return self._keys.create(label)

    def _listener(self, session: Session, actor: str) -> AuditedKeyUse:
        return AuditedKeyUse(self._audit, session, actor)

    def _store(
        self,
        session: Session,
        certificate: x509.Certificate,
        role: Role,
        cert_name: str,
        issuer_serial: int | None,
        key_ref: KeyRef,
    ) -> CertificateRecord:
        record = CertificateRecord(
            serial=_hex(certificate.serial_number),
            role=role.value,
            name=cert_name,
            issuer_serial=_hex(issuer_serial) if issuer_serial is not None else None,
            subject=certificate.subject.rfc4514_string(),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
            key_ref=str(key_ref),
        )
        session.add(record)
        return record

    def authority(
        self, session: Session, ca_name: str
    ) -> tuple[x509.Certificate, CertificateRecord]:
        authority = session.get(AuthorityRecord, ca_name)
        if authority is None:
            raise NotFound(f"没有该CA / no CA named {ca_name}")
        record = session.get(CertificateRecord, authority.certificate_serial)
        if record is None:
            raise NotFound(f"CA certificate of {ca_name} is missing")
        cert = self._cert_cache.get(record.serial)
        if cert is None:
            cert = self._cert_cache[record.serial] = load_pem(record)
        return cert, record

    def roots(self, session: Session) -> list[x509.Certificate]:
        return [self.authority(session, ROOT)[0]]

    def intermediates(self, session: Session) -> list[x509.Certificate]:
        return [self.authority(session, SEAL_CA)[0]]

    # -- seal certificates -----------------------------------------------------------------

    def issue_seal_certificate(
        self,
        session: Session,
        *,
        actor: str,
        department_name: str,
        department_code: str,
        seal_name: str,
        seal_code: str,
        key_ref: KeyRef,
        lifetime: timedelta,
    ) -> CertificateRecord:
        ca_cert, ca_record = self.authority(session, SEAL_CA)
        ca_key = private_key_for(
            self._keys,
            KeyRef.parse(ca_record.key_ref),
            "issue-seal-certificate",
            self._listener(session, actor),
        )
        certificate = build(
            Role.SEAL,
            subject=name(f"{department_name}{seal_name}", department_name, department_code),
            public_key=self._keys.public_key(key_ref),  # type: ignore[arg-type]
            issuer_certificate=ca_cert,
            issuer_key=ca_key,
            issuer_ca_name=SEAL_CA,
            not_before=self._clock.now() - timedelta(minutes=5),
            lifetime=lifetime,
            endpoints=self._endpoints,
        )
        record = self._store(
            session, certificate, Role.SEAL, seal_code, ca_cert.serial_number, key_ref
        )
        self._audit.append(
            session,
            actor=actor,
            action="certificate.issue",
            object_type="certificate",
            object_id=record.serial,
            detail={"role": Role.SEAL.value, "seal": seal_code},
        )
        return record

    def revoke(
        self, session: Session, *, actor: str, serial: str, reason: str
    ) -> CertificateRecord:
        if reason not in _REASONS:
            raise Conflict(f"未知的吊销原因 / unknown revocation reason {reason}")
        record = session.get(CertificateRecord, serial)
        if record is None:
            raise NotFound(f"证书不存在 / no certificate {serial}")
        if record.status == "revoked":
            raise Conflict("证书已吊销 / the certificate is already revoked")
        record.status = "hold" if reason == "certificateHold" else "revoked"
        record.revoked_at = self._clock.now()
        record.revocation_reason = reason
        session.add(record)
        self._audit.append(
            session,
            actor=actor,
            action="certificate.revoke",
            object_type="certificate",
            object_id=serial,
            detail={"reason": reason},
        )
        issuer = session.exec(
            select(AuthorityRecord).where(
                AuthorityRecord.certificate_serial == record.issuer_serial
            )
        ).first()
        if issuer is not None:
            self._issue_crl(session, issuer.name, actor)
        return record

    # -- CRLs ------------------------------------------------------------------------------

    def crl(self, session: Session, ca_name: str, actor: str = "system") -> bytes:
        """The current CRL (DER). Made anew when none exists or it is within 12 h of expiry."""
        authority = session.get(AuthorityRecord, ca_name)
        if authority is None:
            raise NotFound(f"没有该CA / no CA named {ca_name}")
        existing = session.get(CrlRecord, ca_name)
        if (
            existing is not None
            and as_utc(existing.next_update) - CRL_REFRESH_MARGIN > self._clock.now()
        ):
            return existing.der
        return self._issue_crl(session, ca_name, actor)

    def _issue_crl(self, session: Session, ca_name: str, actor: str) -> bytes:
        ca_cert, ca_record = self.authority(session, ca_name)
        authority = session.get(AuthorityRecord, ca_name, with_for_update=True)
        assert authority is not None
        authority.crl_number += 1
        now = self._clock.now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now)
            .next_update(now + CRL_LIFETIME)
            .add_extension(x509.CRLNumber(authority.crl_number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        revoked = session.exec(
            select(CertificateRecord).where(
                CertificateRecord.issuer_serial == ca_record.serial,
                CertificateRecord.status != "good",
            )
        )
        for row in revoked:
            assert row.revoked_at is not None
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(row.serial, 16))
                .revocation_date(as_utc(row.revoked_at))
                .add_extension(
                    x509.CRLReason(_REASONS[row.revocation_reason or "unspecified"]), critical=False
                )
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        key = private_key_for(
            self._keys, KeyRef.parse(ca_record.key_ref), "crl", self._listener(session, actor)
        )
        der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        record = session.get(CrlRecord, ca_name) or CrlRecord(
            ca_name=ca_name, der=b"", next_update=now
        )
        record.der = der
        record.next_update = now + CRL_LIFETIME
        record.crl_number = authority.crl_number
        session.add(authority)
        session.add(record)
        session.flush()
        return der


def _hex(serial: int) -> str:
    return format(serial, "x")


def certificate_cn(certificate: x509.Certificate) -> str:
    values = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else certificate.subject.rfc4514_string()
