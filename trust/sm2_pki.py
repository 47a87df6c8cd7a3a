"""The domain's SM2 PKI beside the ECDSA one: an SM2 root, an SM2 seal CA (the seal maker, 制章人,
of GB/T 38540 seals), their delegated OCSP responders and one SM2 seal certificate per seal that
is used for the national form (OFD).

The hierarchy is made by ``elicence init`` beside the ECDSA CAs, and by ``init`` run again on an
existing data directory (the upgrade path the ECDSA service certificates already use); the first
use of a seal for an OFD also makes it if it is missing. A seal's SM2 certificate is issued on
that seal's first OFD use, for the seal's current ECDSA certificate, which it *follows*: its
subject and expiry are that certificate's, and its revocation status is that certificate's row
(``trust.sm2_records``), so revoking or suspending a seal does both forms at once. A renewed or
rotated seal gets a new SM2 certificate (and SM2 key version) on its next OFD use.

Every signature goes through the key store and is a ``key.sign`` audit entry; every certificate
issued is a ``certificate.issue`` entry, in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.clock import Clock
from core.db import as_utc
from core.errors import Conflict, InvalidInput, NotFound
from keys.audit import AuditedKeyUse
from keys.sm2 import SM2_CUSTODIES
from keys.store import KeyAlgorithm, KeyRef, KeyStore
from trust.models import CertificateRecord
from trust.profiles import Endpoints, Role, fit_common_name, name
from trust.sm2_crl import current_crl
from trust.sm2_records import Sm2AuthorityRecord, Sm2CertificateRecord
from trust.sm2_x509 import (
    Sm2CertificateSpec,
    Sm2Signer,
    build_certificate,
    load_certificate,
)

if TYPE_CHECKING:
    from trust.authority import DomainIdentity

SM2_ROOT = "sm2-root"
SM2_SEAL_CA = "sm2-seal-ca"
SM2_CA_NAMES = (SM2_ROOT, SM2_SEAL_CA)
ROOT_LIFETIME = timedelta(days=365 * 20)
CA_LIFETIME = timedelta(days=365 * 10)
OCSP_LIFETIME = timedelta(days=365)
OCSP_RENEW_BEFORE = timedelta(days=30)
_BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class Sm2SealMaterial:
    """What sealing an OFD needs for one seal (GB/T 38540): the seal's SM2 key and certificate
    (SES_Signature.cert, SES_ESPropertyInfo.certList) and the seal maker's (the SM2 seal CA's)
    key and certificate (SESeal.cert, SESeal.signedValue)."""

    seal_code: str
    key_ref: KeyRef
    certificate_der: bytes
    serial: str  # lower-case hex, the SM2 seal certificate's
    follows_serial: str  # the ECDSA seal certificate whose revocation row it shares
    maker_key_ref: KeyRef
    maker_certificate_der: bytes


@dataclass(frozen=True)
class Sm2Status:
    """A certificate's revocation status: ``good``, ``revoked`` or ``hold`` (suspended)."""

    status: str
    revoked_at: datetime | None = None
    reason: str | None = None


def _hex(serial: int) -> str:
    return format(serial, "x")


class Sm2Pki:
    """The SM2 hierarchy of one trust domain (``TrustDomain.sm2``)."""

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
        self._parsed: dict[str, asn1_x509.Certificate] = {}

    @property
    def endpoints(self) -> Endpoints:
        return self._endpoints

    @property
    def audit(self) -> AuditLog:
        return self._audit

    @property
    def keystore(self) -> KeyStore:
        return self._keys

    def now(self) -> datetime:
        return self._clock.now()

    # -- the hierarchy ---------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """Whether the key store can hold SM2 keys (the soft store only, see keys.sm2)."""
        return self._keys.name in SM2_CUSTODIES

    def _require_custody(self) -> None:
        if not self.available:
            raise InvalidInput(
                f"密钥库 {self._keys.name} 不支持 SM2，OFD 国密印章需要软件密钥库 / the "
                f"{self._keys.name} key store has no SM2 keys; the national form (OFD, SM2 "
                "seals) needs the soft key store"
            )

    def is_initialised(self, session: Session) -> bool:
        return session.get(Sm2AuthorityRecord, SM2_SEAL_CA) is not None

    def ensure(self, session: Session, actor: str) -> bool:
        """Create the SM2 root and seal CA if missing (True), and issue each SM2 CA's OCSP
        responder certificate when it is missing or within its renewal margin."""
        self._require_custody()
        created = False
        if not self.is_initialised(session):
            self._create_cas(session, actor)
            created = True
        for ca_name in SM2_CA_NAMES:
            current = self.current_responder(session, ca_name)
            if current is None or as_utc(current.not_after) - OCSP_RENEW_BEFORE <= self.now():
                self._issue(
                    session,
                    actor,
                    Role.OCSP,
                    ca_name,
                    issuer_ca=ca_name,
                    subject=self._name(f" SM2 OCSP {ca_name}"),
                    key_label=f"sm2-ocsp-{ca_name}",
                    lifetime=OCSP_LIFETIME,
                )
        return created

    def _name(self, suffix: str) -> x509.Name:
        return name(fit_common_name(self._identity.name, suffix), self._identity.organisation)

    def _create_cas(self, session: Session, actor: str) -> None:
        if session.get(Sm2AuthorityRecord, SM2_ROOT) is not None:
            raise Conflict("SM2 根CA已存在而印章CA缺失 / the SM2 root exists without its seal CA")
        root = self._issue(
            session,
            actor,
            Role.ROOT_CA,
            SM2_ROOT,
            issuer_ca=None,
            subject=self._name(" SM2根CA SM2 Root CA"),
            key_label="sm2-ca-root",
            lifetime=ROOT_LIFETIME,
        )
        session.add(Sm2AuthorityRecord(name=SM2_ROOT, certificate_serial=root.serial))
        session.flush()
        ca = self._issue(
            session,
            actor,
            Role.ISSUING_CA,
            SM2_SEAL_CA,
            issuer_ca=SM2_ROOT,
            subject=self._name(" SM2印章CA SM2 Seal CA"),
            key_label="sm2-ca-seal",
            lifetime=CA_LIFETIME,
        )
        session.add(Sm2AuthorityRecord(name=SM2_SEAL_CA, certificate_serial=ca.serial))
        session.flush()
        self._audit.append(
            session,
            actor=actor,
            action="domain.sm2-init",
            object_type="domain",
            object_id=self._identity.name,
            detail={"sm2_root": root.serial, "sm2_seal_ca": ca.serial},
        )

    def _fresh_key(self, label: str) -> KeyRef:
        """A key version no certificate uses yet (a new SM2 key, or a new version of one)."""
        if self._keys.exists(label):
            ref = self._keys.versions(label)[-1]
            if self._keys.algorithm(ref) is not KeyAlgorithm.SM2:
                raise Conflict(f"密钥 {label} 不是 SM2 密钥 / key {label} is not an SM2 key")
            return self._keys.rotate(label)
        return self._keys.create(label, KeyAlgorithm.SM2)

    def _issue(
        self,
        session: Session,
        actor: str,
        role: Role,
        cert_name: str,
        *,
        issuer_ca: str | None,
        subject: x509.Name,
        key_label: str,
        lifetime: timedelta,
        follows: CertificateRecord | None = None,
    ) -> Sm2CertificateRecord:
        """The one path by which an SM2 CA signs: built, stored and audited in ``session``."""
        key_ref = self._fresh_key(key_label)
        listener = AuditedKeyUse(self._audit, session, actor)
        now = self.now()
        spec = Sm2CertificateSpec(
            role, subject, self._keys.public_key_der(key_ref), now - _BACKDATE, lifetime
        )
        if issuer_ca is None:
            issuer, issuer_serial = None, None
            signer = Sm2Signer(self._keys, key_ref, listener, f"sm2-issue-{role.value}")
        else:
            issuer, issuer_record = self.authority(session, issuer_ca)
            issuer_serial = issuer_record.serial
            signer = Sm2Signer(
                self._keys,
                KeyRef.parse(issuer_record.key_ref),
                listener,
                f"sm2-issue-{role.value}-certificate",
            )
        der = build_certificate(
            spec,
            issuer=issuer,
            issuer_ca_name=issuer_ca,
            signer=signer,
            endpoints=self._endpoints,
        )
        parsed = load_certificate(der)
        record = Sm2CertificateRecord(
            serial=_hex(parsed.serial_number),
            role=role.value,
            name=cert_name,
            issuer_serial=issuer_serial,
            subject=parsed.subject.human_friendly[:512],
            not_before=parsed.not_valid_before,
            not_after=parsed.not_valid_after,
            der=der,
            key_ref=str(key_ref),
            follows_serial=follows.serial if follows is not None else None,
        )
        session.add(record)
        session.flush()
        self._audit.append(
            session,
            actor=actor,
            action="certificate.issue",
            object_type="certificate",
            object_id=record.serial,
            detail={
                "role": role.value,
                "name": cert_name,
                "issuer": issuer_ca or cert_name,
                "algorithm": "sm2-with-sm3",
                **({"follows": follows.serial} if follows is not None else {}),
            },
        )
        return record

    # -- lookups ---------------------------------------------------------------------------

    def parsed(self, record: Sm2CertificateRecord) -> asn1_x509.Certificate:
        """The row's certificate, parsed once per process."""
        cert = self._parsed.get(record.serial)
        if cert is None:
            cert = self._parsed[record.serial] = load_certificate(record.der)
        return cert

    def authority(
        self, session: Session, ca_name: str
    ) -> tuple[asn1_x509.Certificate, Sm2CertificateRecord]:
        authority = session.get(Sm2AuthorityRecord, ca_name)
        if authority is None:
            raise NotFound(
                f"没有该 SM2 CA，请运行 elicence init / no SM2 CA named {ca_name}; "
                "run `elicence init`"
            )
        record = session.get(Sm2CertificateRecord, authority.certificate_serial)
        if record is None:
            raise NotFound(f"SM2 CA certificate of {ca_name} is missing")
        return self.parsed(record), record

    def ca_certificate_der(self, session: Session, ca_name: str) -> bytes:
        return self.authority(session, ca_name)[1].der

    def ca_records(self, session: Session) -> list[Sm2CertificateRecord]:
        """Every SM2 CA certificate the domain ever made (roots and seal CAs)."""
        roles = (Role.ROOT_CA.value, Role.ISSUING_CA.value)
        return list(
            session.exec(
                select(Sm2CertificateRecord)
                .where(col(Sm2CertificateRecord.role).in_(roles))
                .order_by(col(Sm2CertificateRecord.not_before))
            ).all()
        )

    def roots(self, session: Session) -> list[bytes]:
        """DER of the SM2 trust anchors."""
        return [r.der for r in self.ca_records(session) if r.role == Role.ROOT_CA.value]

    def intermediates(self, session: Session) -> list[bytes]:
        """DER of the SM2 seal CAs (seal makers)."""
        return [r.der for r in self.ca_records(session) if r.role == Role.ISSUING_CA.value]

    def record(self, session: Session, serial: str) -> Sm2CertificateRecord | None:
        return session.get(Sm2CertificateRecord, serial)

    def current_responder(self, session: Session, ca_name: str) -> Sm2CertificateRecord | None:
        """The newest SM2 OCSP responder certificate of ``ca_name`` valid now, or None."""
        now = self.now()
        rows = session.exec(
            select(Sm2CertificateRecord).where(
                Sm2CertificateRecord.role == Role.OCSP.value,
                Sm2CertificateRecord.name == ca_name,
            )
        ).all()
        usable = [r for r in rows if as_utc(r.not_before) <= now < as_utc(r.not_after)]
        return max(usable, key=lambda r: as_utc(r.not_before), default=None)

    def status(self, session: Session, record: Sm2CertificateRecord) -> Sm2Status:
        """The row's revocation status: a seal certificate's is that of the ECDSA seal
        certificate it follows (the same row the ECDSA CRL and OCSP read)."""
        if record.follows_serial is None:
            return Sm2Status("good")
        followed = session.get(CertificateRecord, record.follows_serial)
        if followed is None:
            return Sm2Status("revoked", record.not_before, "unspecified")  # cannot happen (FK)
        if followed.status == "good" or followed.revoked_at is None:
            return Sm2Status("good")
        return Sm2Status(followed.status, as_utc(followed.revoked_at), followed.revocation_reason)

    # -- seals -----------------------------------------------------------------------------

    def seal_material(
        self,
        session: Session,
        *,
        actor: str,
        seal_certificate_serial: str,
    ) -> Sm2SealMaterial:
        """The SM2 key and certificate for the seal whose current ECDSA certificate is
        ``seal_certificate_serial`` (``Seal.certificate_serial``), issuing them on first use
        (audited in ``session`` under ``actor``), and the seal maker's key and certificate."""
        # Locked: two first uses of a seal at once (two workers issuing OFDs) make one SM2
        # certificate; the second waits, then finds it.
        followed = session.get(CertificateRecord, seal_certificate_serial, with_for_update=True)
        if followed is None or followed.role != Role.SEAL.value:
            raise NotFound(f"印章证书不存在 / no seal certificate {seal_certificate_serial}")
        self.ensure_hierarchy(session, actor)
        _, maker = self.authority(session, SM2_SEAL_CA)
        now = self.now()
        existing = session.exec(
            select(Sm2CertificateRecord)
            .where(
                Sm2CertificateRecord.role == Role.SEAL.value,
                Sm2CertificateRecord.follows_serial == followed.serial,
                Sm2CertificateRecord.issuer_serial == maker.serial,
            )
            .order_by(col(Sm2CertificateRecord.not_before).desc())
        ).first()
        if existing is None or as_utc(existing.not_after) <= now:
            if as_utc(followed.not_after) <= now:
                raise Conflict(
                    f"印章证书已过期，请先延续印章 / the seal certificate {followed.serial} has "
                    "expired; renew the seal first",
                    extra={"current_status": "expired"},
                )
            subject = x509.load_pem_x509_certificate(followed.pem.encode()).subject
            existing = self._issue(
                session,
                actor,
                Role.SEAL,
                followed.name,
                issuer_ca=SM2_SEAL_CA,
                subject=subject,
                key_label=f"sm2-seal-{followed.name}",
                lifetime=as_utc(followed.not_after) - (now - _BACKDATE),
                follows=followed,
            )
        return Sm2SealMaterial(
            seal_code=followed.name,
            key_ref=KeyRef.parse(existing.key_ref),
            certificate_der=existing.der,
            serial=existing.serial,
            follows_serial=followed.serial,
            maker_key_ref=KeyRef.parse(maker.key_ref),
            maker_certificate_der=maker.der,
        )

    def ensure_hierarchy(self, session: Session, actor: str) -> None:
        """The SM2 CAs, made now if ``init`` has not run since they exist."""
        if not self.is_initialised(session):
            self.ensure(session, actor)

    def seal_certificates(self, session: Session) -> list[Sm2CertificateRecord]:
        return list(
            session.exec(
                select(Sm2CertificateRecord)
                .where(Sm2CertificateRecord.role == Role.SEAL.value)
                .order_by(col(Sm2CertificateRecord.name), col(Sm2CertificateRecord.not_before))
            ).all()
        )

    # -- CRLs ------------------------------------------------------------------------------

    def crl(self, session: Session, ca_name: str, actor: str = "system") -> bytes:
        """The SM2 CA's current DER CRL (``trust.sm2_crl``)."""
        return current_crl(self, session, ca_name, actor)
