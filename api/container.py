"""Builds the object graph once from settings; every other module receives its collaborators.

The one module of the edge that holds the engine: it makes it and hands it to the domain's
services, which open their own transactions (``core.db``). Secret files are read through
``api.ops.secrets``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.dev_idp.provider import DevIdentityProvider, RegisteredClient
from api.edge.holder_session import HolderSessions, load_key
from api.edge.tokens import TokenIssuer
from api.ops import demo
from api.ops.secrets import build_keystore, private_directory
from api.pages.oidc import OidcClient, OidcConfig
from api.settings import Settings
from core.audit import AuditLog
from core.clock import Clock, SystemClock
from core.db import create_db_engine
from core.errors import Unavailable
from core.fonts import BOLD, REGULAR, cjk_font_path
from core.health import Readiness, database_probe
from keys.audit import AuditCheckpointer
from keys.store import KeyStore
from licences.archive import ArchiveService
from licences.catalogue import Catalogue
from licences.catalogue_desk import CatalogueDesk
from licences.exchange_desk import ExchangeDesk
from licences.grant_desk import GrantDesk
from licences.holder_desk import HolderDesk
from licences.holders import Holders
from licences.issuance import Fonts, IssuanceService
from licences.licence_desk import LicenceDesk
from licences.lifecycle import Lifecycle
from licences.local_types import local_type_name
from licences.presentation import PresentationService
from licences.presentation_desk import PresentationDesk
from licences.qrkeys import LicenceCodes, QrKeys
from licences.setup import DomainSetup
from licences.stamped import StampedCopies
from licences.statistics import StatisticsDesk
from licences.versions import Versions
from seals.client_desk import ClientDesk
from seals.custody import KeyCustody
from seals.desk import IssuingRights, SealDesk
from seals.ltv import LongTermSealing
from seals.registry import SealRegistry
from trust.audit_anchor import CheckpointTsa
from trust.audit_desk import AuditDesk
from trust.authority import DomainIdentity, TrustDomain
from trust.federation import Federation
from trust.ocsp import OcspResponder
from trust.pki_desk import PkiDesk
from trust.profiles import Endpoints
from trust.trustlist import TrustListPublisher
from trust.tsa import TimeStampAuthority
from verify.code import CodeVerifier
from verify.foreign import ForeignVerifier
from verify.holder_usage import UsageLog
from verify.isolation import Inspector, Limits
from verify.licence_status import LicenceStatusDesk
from verify.pdf import CachedAnchors, PdfVerifier, TrustAnchors, anchors_from
from verify.service import VerificationService


@dataclass(frozen=True)
class TrustServices:
    """The domain's trust services, built over the trust domain (``build_trust_services``)."""

    ocsp: OcspResponder
    tsa: TimeStampAuthority
    trust_list: TrustListPublisher
    long_term: LongTermSealing
    archive: ArchiveService
    pki: PkiDesk  # what /pki serves, one transaction per answer


@dataclass
class Services:
    settings: Settings
    engine: Engine
    clock: Clock
    keystore: KeyStore
    audit: AuditLog
    trust: TrustDomain
    seals: SealRegistry
    catalogue: Catalogue
    issuance: IssuanceService
    lifecycle: Lifecycle
    versions: Versions
    holders: Holders
    verification: VerificationService
    tokens: TokenIssuer
    checkpoints: AuditCheckpointer
    qr_keys: QrKeys
    presentations: PresentationService
    trust_services: TrustServices
    holder_sessions: HolderSessions
    holder_desk: HolderDesk  # the signed-in holder's licences, copies, codes, links
    grant_desk: GrantDesk  # the holder's grants (licences/grant_desk.py)
    presentation_desk: PresentationDesk  # holder links, codes minted by department or link
    usage_log: UsageLog  # pulls and verifications of a holder's licences (verify/holder_usage.py)
    seal_desk: SealDesk  # departments and seals, for routes and commands (seals.desk)
    key_custody: KeyCustody  # key versions, their uses, seal key rotation (seals.custody)
    federation: Federation  # recognised trust domains (trust.federation)
    clients: ClientDesk  # department API clients: CLI, Bearer check, tokens (seals.client_desk)
    audit_desk: AuditDesk  # the audit trail's export and checks (trust.audit_desk)
    licence_status: LicenceStatusDesk  # signed status answers to other domains
    setup: DomainSetup  # elicence init: the trust domain and seed data (licences.setup)
    readiness: Readiness  # what /readyz reports (core.health)
    catalogue_desk: CatalogueDesk  # the catalogue for routes and commands (licences.catalogue_desk)
    licence_desk: LicenceDesk  # a department's licences, status changes, holder record
    exchange_desk: ExchangeDesk  # export and import in the exchange format
    statistics: StatisticsDesk  # a department's counts (licences.statistics)
    oidc: OidcClient | None = None  # holder sign-in (api/pages/oidc.py); None: not configured
    dev_idp: DevIdentityProvider | None = None  # demo mode only, mounted at /dev-idp
    stamped: StampedCopies | None = None  # purpose-stamped copies (licences/stamped.py)


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


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    f = build_foundation(settings, clock or SystemClock())
    engine, audit, clock = f.engine, f.audit, f.clock
    catalogue = Catalogue(audit, clock)
    lifecycle = Lifecycle(audit, clock)
    issuance = build_issuance(f, catalogue)
    federation = build_federation(f)
    presentations = build_presentations(f)
    stamped = build_stamped(f)
    holders = Holders(audit)
    oidc, dev_idp = build_sign_in(settings, clock, f.base_url)
    return Services(
        settings=settings,
        engine=engine,
        clock=clock,
        keystore=f.keystore,
        audit=audit,
        trust=f.trust,
        seals=f.seals,
        catalogue=catalogue,
        issuance=issuance,
        lifecycle=lifecycle,
        versions=Versions(issuance=issuance, lifecycle=lifecycle, clock=clock),
        holders=holders,
        verification=build_verification(f, federation),
        tokens=TokenIssuer(store=f.keystore, clock=clock, issuer=f.base_url),
        checkpoints=f.checkpoints,
        qr_keys=f.qr_keys,
        presentations=presentations,
        trust_services=f.trust_services,
        holder_sessions=build_holder_sessions(settings, f.base_url),
        holder_desk=HolderDesk(
            engine=engine,
            audit=audit,
            clock=clock,
            presentations=presentations,
            stamped=stamped,
            holders=holders,
        ),
        grant_desk=GrantDesk(engine=engine, audit=audit, clock=clock),
        presentation_desk=PresentationDesk(
            engine=engine, audit=audit, clock=clock, presentations=presentations
        ),
        usage_log=UsageLog(engine=engine),
        seal_desk=build_seal_desk(f, catalogue),
        key_custody=KeyCustody(engine=engine, keystore=f.keystore, registry=f.seals),
        federation=federation,
        clients=ClientDesk(engine=engine, audit=audit, clock=clock, registry=f.seals),
        audit_desk=AuditDesk(engine=engine, audit=audit, trust=f.trust, checkpoints=f.checkpoints),
        licence_status=build_licence_status(f),
        setup=build_setup(f, catalogue),
        readiness=Readiness({"database": database_probe(engine), "keystore": f.keystore.list}),
        catalogue_desk=CatalogueDesk(engine=engine, catalogue=catalogue, clock=clock),
        licence_desk=LicenceDesk(
            engine=engine, audit=audit, clock=clock, catalogue=catalogue, lifecycle=lifecycle,
            holders=holders,
        ),  # fmt: skip
        exchange_desk=ExchangeDesk(
            engine=engine, catalogue=catalogue, clock=clock, verify_url=issuance.verify_url
        ),
        statistics=StatisticsDesk(engine=engine, seals=f.seals),
        oidc=oidc,
        dev_idp=dev_idp,
        stamped=stamped,
    )


def build_foundation(settings: Settings, clock: Clock) -> Foundation:
    """The data directory (owner-only), engine, key store, audit log with its checkpoints, the
    trust domain and its services; each audit checkpoint is timestamped by the domain's TSA."""
    private_directory(settings.data_dir)
    engine = create_db_engine(settings.resolved_database_url())
    keystore = build_keystore(settings)
    checkpoints = AuditCheckpointer(keystore, clock, every=settings.audit_checkpoint_every)
    audit = AuditLog(clock, checkpointer=checkpoints)
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
    trust_services = build_trust_services(
        engine=engine,
        trust=trust,
        clock=clock,
        audit=audit,
        endpoints=Endpoints(base_url),
        extra_members=qr_keys.to_json,
    )
    checkpoints.timestamps = CheckpointTsa(trust=trust, tsa=trust_services.tsa)
    return Foundation(
        settings, clock, engine, keystore, checkpoints, audit, trust, trust_services, seals,
        fonts, qr_keys, base_url,
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


def build_issuance(f: Foundation, catalogue: Catalogue) -> IssuanceService:
    return IssuanceService(
        engine=f.engine,
        catalogue=catalogue,
        seals=f.seals,
        audit=f.audit,
        clock=f.clock,
        fonts=f.fonts,
        public_base_url=f.base_url,
        qr_codes=LicenceCodes(keys=f.qr_keys, engine=f.engine, audit=f.audit),
        long_term=f.trust_services.long_term,
    )


def build_federation(f: Foundation) -> Federation:
    return Federation(
        engine=f.engine,
        clock=f.clock,
        audit=f.audit,
        trust=f.trust,
        local_types=local_type_name,
        own_list=f.trust_services.trust_list.content,
        refresh_seconds=f.settings.federation_refresh_seconds,
        allow_private_addresses=f.settings.federation_allow_private_addresses,
    )


def build_verification(f: Foundation, federation: Federation) -> VerificationService:
    """Local and foreign uploads share one worker pool (``build_inspector``)."""
    trust = f.trust

    def anchors(session: Session) -> TrustAnchors:
        roots: list[object] = [*trust.roots(session)]
        intermediates: list[object] = [*trust.intermediates(session)]
        return anchors_from(roots, intermediates)

    inspector = build_inspector(f.settings)
    return VerificationService(
        engine=f.engine,
        pdf=PdfVerifier(
            clock=f.clock, anchors=CachedAnchors(anchors), max_bytes=f.settings.max_upload_bytes
        ),
        code=CodeVerifier(f.clock, f.qr_keys),
        audit=f.audit,
        inspector=inspector,
        foreign=ForeignVerifier(
            engine=f.engine,
            clock=f.clock,
            federation=federation,
            local_anchors=CachedAnchors(anchors),
            inspector=inspector,
        ),
    )


def build_presentations(f: Foundation) -> PresentationService:
    return PresentationService(
        keys=f.qr_keys,
        clock=f.clock,
        audit=f.audit,
        ttl=timedelta(seconds=f.settings.presentation_ttl_seconds),
        public_base_url=f.base_url,
    )


def build_stamped(f: Foundation) -> StampedCopies:
    return StampedCopies(
        engine=f.engine,
        seals=f.seals,
        audit=f.audit,
        clock=f.clock,
        fonts=f.fonts,
        public_base_url=f.base_url,
        long_term=f.trust_services.long_term,
    )


def build_holder_sessions(settings: Settings, base_url: str) -> HolderSessions:
    return HolderSessions(
        load_key(settings.data_dir),
        secure=base_url.startswith("https://"),
        lifetime=timedelta(minutes=settings.holder_session_minutes),
    )


def build_licence_status(f: Foundation) -> LicenceStatusDesk:
    return LicenceStatusDesk(
        engine=f.engine,
        trust=f.trust,
        audit=f.audit,
        clock=f.clock,
        endpoints=Endpoints(f.base_url),
    )


def build_setup(f: Foundation, catalogue: Catalogue) -> DomainSetup:
    return DomainSetup(
        engine=f.engine,
        trust=f.trust,
        seals=f.seals,
        catalogue=catalogue,
        audit=f.audit,
        clock=f.clock,
    )


def build_seal_desk(f: Foundation, catalogue: Catalogue) -> SealDesk:
    return SealDesk(
        engine=f.engine,
        registry=f.seals,
        trust=f.trust,
        audit=f.audit,
        issuing_rights=issuing_rights(catalogue),
    )


DEV_CLIENT_ID = "elicence-demo"


def build_sign_in(
    settings: Settings, clock: Clock, base_url: str
) -> tuple[OidcClient | None, DevIdentityProvider | None]:
    """Holder sign-in: the unified identity platform when ``ELICENCE_OIDC_ISSUER`` is set; in
    demo mode without one, the development provider at ``/dev-idp`` of this same service, with
    a client secret made for this process (demo mode serves one worker)."""
    redirect = f"{base_url}/me/callback"
    dev_idp = None
    if settings.demo_mode:
        client = RegisteredClient(DEV_CLIENT_ID, secrets.token_urlsafe(32), (redirect,))
        dev_idp = DevIdentityProvider(
            issuer=f"{base_url}/dev-idp", clients=(client,), holders=tuple(demo.holders())
        )
    if settings.oidc_issuer:
        if not settings.oidc_client_id or settings.oidc_client_secret is None:
            raise Unavailable(
                "统一身份认证配置不完整 / ELICENCE_OIDC_ISSUER needs ELICENCE_OIDC_CLIENT_ID and "
                "ELICENCE_OIDC_CLIENT_SECRET"
            )
        config = OidcConfig(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(),
            redirect_uri=redirect,
        )
    elif dev_idp is not None:
        registered = dev_idp.clients[0]
        config = OidcConfig(dev_idp.issuer, registered.client_id, registered.secret, redirect)
    else:
        return None, None
    return OidcClient(config, clock=clock), dev_idp


def issuing_rights(catalogue: Catalogue) -> IssuingRights:
    """The seals registry asks the catalogue whether a department may issue a licence type."""

    def check(session: Session, type_code: str, department_code: str) -> None:
        catalogue.check_issuer(catalogue.get(session, type_code), department_code)

    return check
