"""The typed service graph the edge reads (``Services``) and the one function that builds it."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from api.container.alerting import build_source_keyer
from api.container.builders import (
    build_credential_desk,
    build_expiry,
    build_federation,
    build_holder_desk,
    build_holder_sessions,
    build_issuance,
    build_legacy,
    build_licence_desk,
    build_licence_status,
    build_presentations,
    build_seal_desk,
    build_setup,
    build_stamped,
    build_status_list,
    build_verification,
)
from api.container.events import build_subscription_desk
from api.container.foundation import TrustServices, build_foundation, build_inspector
from api.container.sign_in import build_sign_in
from api.dev_idp.provider import DevIdentityProvider
from api.edge.holder_session import HolderSessions
from api.edge.tokens import TokenIssuer
from api.pages.oidc import OidcClient
from api.settings import Settings
from core.audit import AuditLog
from core.clock import Clock, SystemClock
from core.health import Readiness, database_probe
from core.shared_state import MemoryState, SharedState, announce, connect
from keys.audit import AuditCheckpointer
from keys.store import KeyStore
from licences.catalogue import Catalogue
from licences.catalogue_desk import CatalogueDesk
from licences.credential_desk import CredentialDesk
from licences.exchange_desk import ExchangeDesk
from licences.grant_desk import GrantDesk
from licences.holder_desk import HolderDesk
from licences.holders import Holders
from licences.issuance import IssuanceService
from licences.legacy_desk import LegacyConversion
from licences.licence_desk import LicenceDesk
from licences.lifecycle import Lifecycle
from licences.objections import ObjectionDesk
from licences.ofd_desk import OfdDesk
from licences.presentation import PresentationService
from licences.presentation_desk import PresentationDesk
from licences.qrkeys import QrKeys
from licences.setup import DomainSetup
from licences.specimen import Specimens
from licences.stamped import StampedCopies
from licences.statistics import StatisticsDesk
from licences.status_list import StatusListDesk
from licences.use_codes import UseCodeDesk
from licences.versions import Versions
from seals.client_desk import ClientDesk
from seals.custody import KeyCustody
from seals.desk import SealDesk
from seals.registry import SealRegistry
from supervision.alert_desk import AlertDesk
from supervision.audit_search import AuditSearch
from supervision.expiry import ExpiryScan
from supervision.figures import FiguresDesk
from supervision.objection_watch import ObjectionWatch
from supervision.sources import SourceKeyer
from supervision.subscriptions import SubscriptionDesk
from supervision.supervisor_desk import SupervisorDesk
from trust.audit_desk import AuditDesk
from trust.authority import TrustDomain
from trust.federation import Federation
from trust.jose import CredentialKeys
from verify.desk import CodeDesk
from verify.holder_usage import UsageLog
from verify.isolation import Inspector
from verify.licence_status import LicenceStatusDesk
from verify.service import VerificationService


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
    code_desk: CodeDesk  # QR checks on one thread, in batches (verify.desk)
    tokens: TokenIssuer
    checkpoints: AuditCheckpointer
    qr_keys: QrKeys
    credential_keys: CredentialKeys
    presentations: PresentationService
    trust_services: TrustServices
    holder_sessions: HolderSessions
    holder_desk: HolderDesk  # the signed-in holder's licences, copies, codes, links
    grant_desk: GrantDesk  # the holder's grants (licences/grant_desk.py)
    presentation_desk: PresentationDesk  # holder links, codes minted by department or link
    usage_log: UsageLog  # pulls and verifications of a holder's licences (verify/holder_usage.py)
    use_codes: UseCodeDesk  # holders' codes redeemed by departments (licences/use_codes.py)
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
    legacy: LegacyConversion  # existing licences converted (licences/legacy_desk.py)
    statistics: StatisticsDesk  # a department's counts (licences.statistics)
    status_list: StatusListDesk  # the signed status list /pki/status-list serves
    credential_desk: CredentialDesk  # a licence as a Verifiable Credential (vc+jwt)
    expiry: ExpiryScan  # the daily expiry scan: events, reminders, alerts (supervision.expiry)
    alert_desk: AlertDesk  # a supervision office's alerts and their acknowledgement
    sources: SourceKeyer  # a verification's keyed source, from the client address
    figures: FiguresDesk  # a supervision office's monthly figures (supervision.figures)
    audit_search: AuditSearch  # the audit chain searched by a supervision office
    subscriptions: SubscriptionDesk  # departments' event subscriptions (supervision.subscriptions)
    supervisors: SupervisorDesk  # supervisors' sign-in and per-request check
    objections: ObjectionDesk  # holders' objections, departments' answers (licences.objections)
    objection_watch: ObjectionWatch  # the overdue objections alert (supervision.objection_watch)
    oidc: OidcClient | None = None  # holder sign-in (api/pages/oidc.py); None: not configured
    dev_idp: DevIdentityProvider | None = None  # demo mode only, mounted at /dev-idp
    stamped: StampedCopies | None = None  # purpose-stamped copies (licences/stamped.py)
    inspector: Inspector | None = None  # the verification worker pool; None: no isolation
    # What the workers share (core.shared_state): Redis with ELICENCE_REDIS_URL, else memory.
    shared: SharedState = field(default_factory=MemoryState)
    # A licence's sealed OFD for its issuer, a granted department or its holder (licences.ofd_desk).
    ofd_desk: OfdDesk | None = None

    def close(self) -> None:
        """Ends what the graph started: the verification workers and the engine's connections."""
        self.code_desk.close()
        if self.inspector is not None:
            self.inspector.close()
        self.engine.dispose()


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
    shared = connect(settings.redis_url)
    announce(shared)
    oidc, dev_idp = build_sign_in(settings, clock, f.base_url, shared)
    holder_sessions = build_holder_sessions(settings, f.base_url)
    holder_sessions.shared = shared  # signed-out sessions, seen by every worker
    inspector = build_inspector(settings)
    verification = build_verification(f, federation, inspector)
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
        verification=verification,
        code_desk=CodeDesk(verification),
        tokens=TokenIssuer(store=f.keystore, clock=clock, issuer=f.base_url),
        checkpoints=f.checkpoints,
        qr_keys=f.qr_keys,
        credential_keys=f.credential_keys,
        presentations=presentations,
        trust_services=f.trust_services,
        holder_sessions=holder_sessions,
        holder_desk=build_holder_desk(f, presentations, stamped, holders),
        grant_desk=GrantDesk(engine=engine, audit=audit, clock=clock),
        presentation_desk=PresentationDesk(
            engine=engine, audit=audit, clock=clock, presentations=presentations
        ),
        usage_log=UsageLog(engine=engine),
        use_codes=UseCodeDesk(engine=engine, audit=audit, clock=clock, keys=f.qr_keys),
        seal_desk=build_seal_desk(f, catalogue),
        key_custody=KeyCustody(engine=engine, keystore=f.keystore, registry=f.seals),
        federation=federation,
        clients=ClientDesk(engine=engine, audit=audit, clock=clock, registry=f.seals),
        audit_desk=AuditDesk(engine=engine, audit=audit, trust=f.trust, checkpoints=f.checkpoints),
        licence_status=build_licence_status(f),
        setup=build_setup(f, catalogue),
        readiness=Readiness({"database": database_probe(engine), "keystore": f.keystore.list}),
        catalogue_desk=CatalogueDesk(
            engine=engine,
            catalogue=catalogue,
            clock=clock,
            specimens=Specimens(regular_font=f.fonts.regular, bold_font=f.fonts.bold),
        ),
        licence_desk=build_licence_desk(f, catalogue, lifecycle, holders),
        exchange_desk=ExchangeDesk(
            engine=engine, catalogue=catalogue, clock=clock, verify_url=issuance.verify_url
        ),
        legacy=build_legacy(f, catalogue, lifecycle),
        statistics=StatisticsDesk(engine=engine, seals=f.seals),
        status_list=build_status_list(f),
        credential_desk=build_credential_desk(f),
        expiry=build_expiry(f),
        alert_desk=AlertDesk(engine=engine, audit=audit, clock=clock),
        sources=build_source_keyer(settings),
        figures=FiguresDesk(engine=engine, clock=clock),
        audit_search=AuditSearch(engine=engine),
        subscriptions=build_subscription_desk(settings, engine, audit, clock),
        supervisors=SupervisorDesk(engine=engine, audit=audit),
        objections=ObjectionDesk(
            engine=engine,
            audit=audit,
            clock=clock,
            versions=Versions(issuance=issuance, lifecycle=lifecycle, clock=clock),
        ),
        objection_watch=ObjectionWatch(
            engine=engine, audit=audit, clock=clock, overdue_days=settings.objection_overdue_days
        ),
        oidc=oidc,
        dev_idp=dev_idp,
        stamped=stamped,
        inspector=inspector,
        shared=shared,
        ofd_desk=OfdDesk(engine),
    )
