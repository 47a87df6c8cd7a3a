"""The foundation every service is built over: the engine, key store, audit log, trust domain and
its services, seals registry, fonts and QR keys; and the verification worker pool."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from api.container.alerting import alert_thresholds
from api.ops.secrets import build_keystore, private_directory
from api.settings import Settings
from core.audit import AuditLog
from core.clock import Clock
from core.db import create_db_engine, create_replica_engine
from core.fonts import BOLD, REGULAR, cjk_font_path
from keys.audit import AuditCheckpointer
from keys.store import KeyStore
from licences.archive import ArchiveService
from licences.issuance import Fonts
from licences.qrkeys import QrKeys
from seals.ltv import LongTermSealing
from seals.registry import SealRegistry
from supervision import events
from supervision.alerts import AlertRules
from supervision.events import licence_event
from trust.audit_anchor import CheckpointTsa
from trust.authority import DomainIdentity, TrustDomain
from trust.jose import CredentialKeys
from trust.ocsp import OcspResponder
from trust.pki_desk import PkiDesk
from trust.profiles import Endpoints
from trust.trustlist import TrustListPublisher
from trust.tsa import TimeStampAuthority
from verify.isolation import Inspector, Limits


@dataclass(frozen=True)
class TrustServices:
    """The domain's trust services, built over the trust domain (``build_trust_services``)."""

    ocsp: OcspResponder
    tsa: TimeStampAuthority
    trust_list: TrustListPublisher
    long_term: LongTermSealing
    archive: ArchiveService
    pki: PkiDesk  # what /pki serves, one transaction per answer


@dataclass(frozen=True)
class Foundation:
    """What every service is built over: settings, clock, engine, keys, audit, the trust domain
    and its services, the seals registry, fonts and QR keys (``build_foundation``)."""

    settings: Settings
    clock: Clock
    engine: Engine
    keystore: KeyStore
    checkpoints: AuditCheckpointer
    audit: AuditLog
    trust: TrustDomain
    trust_services: TrustServices
    seals: SealRegistry
    fonts: Fonts
    qr_keys: QrKeys
    base_url: str
    credential_keys: CredentialKeys
    replica: Engine | None = None  # a streaming replica: verification and search read there


def build_foundation(settings: Settings, clock: Clock) -> Foundation:
    """The data directory (owner-only), engine, key store, audit log with its checkpoints, the
    trust domain and its services; each audit checkpoint is timestamped by the domain's TSA."""
    private_directory(settings.data_dir)
    engine = create_db_engine(settings.resolved_database_url())
    keystore = build_keystore(settings)
    checkpoints = AuditCheckpointer(keystore, clock, every=settings.audit_checkpoint_every)
    audit = AuditLog(clock, checkpointer=checkpoints)
    audit.observe(licence_event, events.concerns)  # every audited status change is an outbox event
    rules = AlertRules(audit, alert_thresholds(settings))
    audit.observe(rules, rules.concerns)  # early warning, same transaction
    base_url = settings.public_base_url.rstrip("/")
    trust = TrustDomain(
        keystore=keystore,
        clock=clock,
        audit=audit,
        endpoints=Endpoints(base_url),
        identity=DomainIdentity(settings.domain_name, settings.domain_organisation),
    )
    fonts = Fonts(
        regular=cjk_font_path(REGULAR, settings.font_cache_dir),
        bold=cjk_font_path(BOLD, settings.font_cache_dir),
    )
    seals = SealRegistry(
        trust=trust, keystore=keystore, clock=clock, audit=audit, font_path=fonts.bold
    )
    qr_keys = QrKeys(keystore)
    credential_keys = CredentialKeys(keystore)
    endpoints = Endpoints(base_url)

    def published_keys() -> dict[str, Any]:
        """What the trust list adds for offline verifiers: the QR keys, the credential keys
        and where the status list is."""
        return {
            **qr_keys.to_json(),
            **credential_keys.to_json(),
            "status_list": {"url": endpoints.status_list, "media_type": "application/vc+jwt"},
        }

    trust_services = build_trust_services(
        engine=engine,
        trust=trust,
        clock=clock,
        audit=audit,
        endpoints=endpoints,
        extra_members=published_keys,
    )
    checkpoints.timestamps = CheckpointTsa(trust=trust, tsa=trust_services.tsa)
    return Foundation(
        settings, clock, engine, keystore, checkpoints, audit, trust, trust_services, seals,
        fonts, qr_keys, base_url, credential_keys,
        create_replica_engine(settings.database_replica_url),
    )  # fmt: skip


def build_trust_services(
    *,
    engine: Engine,
    trust: TrustDomain,
    clock: Clock,
    audit: AuditLog,
    endpoints: Endpoints,
    extra_members: Callable[[], dict[str, Any]] | None = None,
) -> TrustServices:
    """OCSP, TSA, the trust list, the public PKI desk over them, long-term sealing and the
    archive refresh."""
    ocsp = OcspResponder(trust=trust, clock=clock)
    tsa = TimeStampAuthority(trust=trust, clock=clock)
    long_term = LongTermSealing(trust=trust, ocsp=ocsp, tsa=tsa, clock=clock)
    trust_list = TrustListPublisher(
        trust=trust, clock=clock, endpoints=endpoints, extra_members=extra_members
    )
    return TrustServices(
        ocsp=ocsp,
        tsa=tsa,
        trust_list=trust_list,
        long_term=long_term,
        archive=ArchiveService(
            engine=engine, trust=trust, tsa=tsa, long_term=long_term, audit=audit, clock=clock
        ),
        pki=PkiDesk(
            engine=engine, trust=trust, audit=audit, ocsp=ocsp, tsa=tsa, trust_list=trust_list
        ),
    )


def build_inspector(settings: Settings) -> Inspector | None:
    if not settings.verify_isolation:
        return None
    return Inspector(
        Limits(
            cpu_seconds=settings.verify_cpu_seconds,
            memory_bytes=settings.verify_memory_mb * 1024 * 1024,
            wall_seconds=settings.verify_wall_seconds,
            max_objects=settings.verify_max_objects,
            max_pages=settings.verify_max_pages,
            max_depth=settings.verify_max_depth,
            workers=settings.verify_workers,
        )
    )
