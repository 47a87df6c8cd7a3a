"""The trust domain's CA hierarchy: a root, an issuing CA for seals, the service certificates
(OCSP responders, TSA, trust-list signer, see ``trust.services``) and seal certificates.
Revocation, holds and CRLs of what the CAs issued live in ``trust.revocation`` (the domain's
``revocation`` attribute).

Every signature is made through the key store (see ``keys.signing``) and recorded in the audit
chain. Initialising is idempotent: the CAs of a domain that exists are left as they are, and only
missing or expiring service certificates are issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlmodel import Session, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import as_utc
from core.errors import Conflict, NotFound, Unavailable
from keys.audit import AuditedKeyUse
from keys.signing import private_key_for
from keys.store import KeyRef, KeyStore
from trust.models import AuthorityRecord, CertificateRecord
from trust.profiles import Endpoints, Role, build, check_profile, fit_common_name, name
from trust.revocation import Revocation
from trust.services import ROOT, SEAL_CA, ensure_service_certificates
from trust.sm2_pki import Sm2Pki


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
        self._ca_certificates: dict[str, x509.Certificate] = {}
        self.revocation = Revocation(self, keystore=keystore, clock=clock, audit=audit)
        # The SM2 hierarchy of the national form (OFD seals), beside this ECDSA one.
        self.sm2 = Sm2Pki(
            keystore=keystore, clock=clock, audit=audit, endpoints=endpoints, identity=identity
        )

    @property
    def identity(self) -> DomainIdentity:
        return self._identity

    # -- hierarchy -------------------------------------------------------------------------

    def is_initialised(self, session: Session) -> bool:
        return session.get(AuthorityRecord, SEAL_CA) is not None

    @property
    def keystore(self) -> KeyStore:
        return self._keys

    def now(self) -> datetime:
        return self._clock.now()

    def initialise(self, session: Session, actor: str) -> bool:
        """Create the root, the seal-issuing CA and the service certificates (OCSP, TSA, trust
        list). Returns False when the CAs already existed; missing or expiring service
        certificates are issued either way, so re-running init upgrades an older data dir."""
        if self.is_initialised(session):
            ensure_service_certificates(self, session, actor)
            if self.sm2.available:  # an older data dir gets its SM2 CAs here
                self.sm2.ensure(session, actor)
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
        ensure_service_certificates(self, session, actor)
        if self.sm2.available:  # SM2 keys live in the soft store only
            self.sm2.ensure(session, actor)
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
        check_profile(role, certificate)  # nothing off-profile is ever stored or served
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
        return [self._ca_certificate(session, ROOT)]

    def intermediates(self, session: Session) -> list[x509.Certificate]:
        return [self._ca_certificate(session, SEAL_CA)]

    def _ca_certificate(self, session: Session, ca_name: str) -> x509.Certificate:
        """A CA's certificate, read once per process: a CA's row names its certificate when
        the domain is initialised and nothing changes it after (the CRL counter beside it
        does change, and :meth:`authority` reads the row for that). Every seal and every B-LTA
        evidence asks for the chain; this spares them two reads each."""
        cert = self._ca_certificates.get(ca_name)
        if cert is None:
            cert = self._ca_certificates[ca_name] = self.authority(session, ca_name)[0]
        return cert

    def ca_names(self, session: Session) -> list[str]:
        return list(session.exec(select(AuthorityRecord.name).order_by(AuthorityRecord.name)))

    def certificate(self, record: CertificateRecord) -> x509.Certificate:
        """The parsed certificate of a row, parsed once per process."""
        cert = self._cert_cache.get(record.serial)
        if cert is None:
            cert = self._cert_cache[record.serial] = load_pem(record)
        return cert

    @staticmethod
    def not_after(record: CertificateRecord) -> datetime:
        return as_utc(record.not_after)

    def current_service_record(
        self, session: Session, role: Role, cert_name: str
    ) -> CertificateRecord | None:
        """The newest good certificate of a service (OCSP responder of a CA, TSA, trust-list
        signer) that is valid now, or None."""
        now = self._clock.now()
        rows = session.exec(
            select(CertificateRecord).where(
                CertificateRecord.role == role.value,
                CertificateRecord.name == cert_name,
                CertificateRecord.status == "good",
            )
        ).all()
        usable = [r for r in rows if as_utc(r.not_before) <= now < as_utc(r.not_after)]
        return max(usable, key=lambda r: as_utc(r.not_before), default=None)

    def service_certificate(
        self, session: Session, role: Role, cert_name: str
    ) -> tuple[x509.Certificate, CertificateRecord]:
        record = self.current_service_record(session, role, cert_name)
        if record is None:
            raise Unavailable(
                f"{role.value} {cert_name} 没有可用证书，请运行 elicence init / no usable "
                f"{role.value} certificate for {cert_name}; run `elicence init`"
            )
        return self.certificate(record), record

    def issue_certificate(
        self,
        session: Session,
        *,
        actor: str,
        role: Role,
        cert_name: str,
        issuer_ca: str,
        common_name: str,
        key_ref: KeyRef,
        lifetime: timedelta,
    ) -> CertificateRecord:
        """Issue an end-entity certificate of a service role from one of the domain's CAs."""
        return self._issue_end_entity(
            session,
            actor=actor,
            role=role,
            subject=name(common_name, self._identity.organisation),
            cert_name=cert_name,
            issuer_ca=issuer_ca,
            key_ref=key_ref,
            lifetime=lifetime,
            detail={"role": role.value, "name": cert_name, "issuer": issuer_ca},
        )

    def _issue_end_entity(
        self,
        session: Session,
        *,
        actor: str,
        role: Role,
        subject: x509.Name,
        cert_name: str,
        issuer_ca: str,
        key_ref: KeyRef,
        lifetime: timedelta,
        detail: dict[str, str],
    ) -> CertificateRecord:
        """The one path by which a CA of the domain signs an end-entity certificate: profile
        checked, stored, and audited in the caller's transaction."""
        ca_cert, ca_record = self.authority(session, issuer_ca)
        ca_key = private_key_for(
            self._keys,
            KeyRef.parse(ca_record.key_ref),
            f"issue-{role.value}-certificate",
            self._listener(session, actor),
        )
        certificate = build(
            role,
            subject=subject,
            public_key=self._keys.public_key(key_ref),  # type: ignore[arg-type]
            issuer_certificate=ca_cert,
            issuer_key=ca_key,
            issuer_ca_name=issuer_ca,
            not_before=self._clock.now() - timedelta(minutes=5),
            lifetime=lifetime,
            endpoints=self._endpoints,
        )
        record = self._store(session, certificate, role, cert_name, ca_cert.serial_number, key_ref)
        session.flush()
        self._audit.append(
            session,
            actor=actor,
            action="certificate.issue",
            object_type="certificate",
            object_id=record.serial,
            detail=detail,
        )
        return record

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
        return self._issue_end_entity(
            session,
            actor=actor,
            role=Role.SEAL,
            subject=name(
                fit_common_name(department_name, seal_name), department_name, department_code
            ),
            cert_name=seal_code,
            issuer_ca=SEAL_CA,
            key_ref=key_ref,
            lifetime=lifetime,
            detail={"role": Role.SEAL.value, "seal": seal_code},
        )


def _hex(serial: int) -> str:
    return format(serial, "x")
