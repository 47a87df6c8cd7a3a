"""One small builder per domain service that needs more than the foundation's parts."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from api.container.foundation import Foundation
from api.container.ofd import build_ofd
from api.edge.holder_session import HolderSessions, load_key
from api.settings import Settings
from licences.catalogue import Catalogue
from licences.credential_desk import CredentialDesk
from licences.holder_desk import HolderDesk
from licences.holders import Holders
from licences.issuance import IssuanceService
from licences.legacy_desk import LegacyConversion
from licences.licence_desk import LicenceDesk
from licences.lifecycle import Lifecycle
from licences.local_types import local_type_name
from licences.presentation import PresentationService
from licences.qrkeys import LicenceCodes
from licences.setup import DomainSetup
from licences.stamped import StampedCopies
from licences.status_list import StatusListDesk
from seals.desk import IssuingRights, SealDesk
from supervision.expiry import ExpiryScan
from supervision.expiry_policy import ExpiryPolicy
from trust.federation import Federation
from trust.profiles import Endpoints
from trust.sm2_chain import validate_sm2_certificate
from verify.code import CodeVerifier
from verify.foreign import ForeignVerifier
from verify.isolation import Inspector
from verify.licence_status import LicenceStatusDesk
from verify.ofd import OfdVerifier
from verify.ofd_chain import Sm2Anchors
from verify.pdf import CachedAnchors, PdfVerifier, TrustAnchors, anchors_from
from verify.service import VerificationService


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
        ofd=build_ofd(f),  # OFD licences with SM2 seals, where the key store holds SM2 keys
    )


def build_legacy(f: Foundation, catalogue: Catalogue, lifecycle: Lifecycle) -> LegacyConversion:
    return LegacyConversion(
        engine=f.engine,
        catalogue=catalogue,
        seals=f.seals,
        audit=f.audit,
        lifecycle=lifecycle,
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


def build_verification(
    f: Foundation, federation: Federation, inspector: Inspector | None
) -> VerificationService:
    """Local and foreign uploads share one worker pool, which the service graph owns."""
    trust = f.trust

    def anchors(session: Session) -> TrustAnchors:
        roots: list[object] = [*trust.roots(session)]
        intermediates: list[object] = [*trust.intermediates(session)]
        return anchors_from(roots, intermediates)

    def sm2_anchors(session: Session) -> Sm2Anchors:
        return Sm2Anchors(tuple(trust.sm2.roots(session)), tuple(trust.sm2.intermediates(session)))

    return VerificationService(
        engine=f.engine,
        pdf=PdfVerifier(
            clock=f.clock, anchors=CachedAnchors(anchors), max_bytes=f.settings.max_upload_bytes
        ),
        code=CodeVerifier(f.clock, f.qr_keys),
        audit=f.audit,
        inspector=inspector,
        replica=f.replica,
        ofd=OfdVerifier(
            clock=f.clock,
            anchors=CachedAnchors(anchors),
            sm2_anchors=sm2_anchors,
            sm2_registry=lambda session, der, at: validate_sm2_certificate(
                session, trust.sm2, der, at
            ),
            max_bytes=f.settings.max_upload_bytes,
        ),
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
        qr_codes=LicenceCodes(keys=f.qr_keys, engine=f.engine, audit=f.audit),
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


def build_status_list(f: Foundation) -> StatusListDesk:
    return StatusListDesk(
        engine=f.engine,
        keys=f.credential_keys,
        clock=f.clock,
        audit=f.audit,
        endpoints=Endpoints(f.base_url),
        issuer_name=f.settings.domain_name,
        lifetime=timedelta(hours=f.settings.status_list_lifetime_hours),
        refresh=timedelta(hours=f.settings.status_list_refresh_hours),
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


def issuing_rights(catalogue: Catalogue) -> IssuingRights:
    """The seals registry asks the catalogue whether a department may issue a licence type."""

    def check(session: Session, type_code: str, department_code: str) -> None:
        catalogue.check_issuer(catalogue.get(session, type_code), department_code)

    return check


def build_holder_desk(
    f: Foundation, presentations: PresentationService, stamped: StampedCopies, holders: Holders
) -> HolderDesk:
    return HolderDesk(
        engine=f.engine,
        audit=f.audit,
        clock=f.clock,
        presentations=presentations,
        stamped=stamped,
        holders=holders,
    )


def build_credential_desk(f: Foundation) -> CredentialDesk:
    return CredentialDesk(
        engine=f.engine, audit=f.audit, clock=f.clock, keys=f.credential_keys, base_url=f.base_url
    )


def build_licence_desk(
    f: Foundation, catalogue: Catalogue, lifecycle: Lifecycle, holders: Holders
) -> LicenceDesk:
    return LicenceDesk(
        engine=f.engine,
        audit=f.audit,
        clock=f.clock,
        catalogue=catalogue,
        lifecycle=lifecycle,
        holders=holders,
        search_engine=f.replica,
    )


def build_expiry(f: Foundation) -> ExpiryScan:
    """The expiry scan and its windows; a bad window stops the service at start, naming it."""
    s = f.settings
    policy = ExpiryPolicy(
        reminder_days=s.expiry_reminder_days,
        reminder_days_by_type=dict(s.expiry_reminder_days_by_type),
        overdue_days=s.expiry_overdue_days,
        catch_up_days=s.expiry_catch_up_days,
        alert_days=s.expiry_alert_days,
        alert_threshold=s.expiry_alert_threshold,
    )
    return ExpiryScan(engine=f.engine, audit=f.audit, policy=policy)
