"""Builds the object graph once from settings; every other module receives its collaborators."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.dev_idp.provider import DevIdentityProvider, RegisteredClient
from api.edge.holder_session import HolderSessions, load_key
from api.edge.tokens import TokenIssuer
from api.ops import demo
from api.pages.oidc import OidcClient, OidcConfig
from api.settings import Settings
from api.trust_wiring import TrustServices, build_trust_services
from core.audit import AuditLog
from core.clock import Clock, SystemClock
from core.db import create_db_engine, reading
from core.errors import Unavailable
from core.fonts import BOLD, REGULAR, cjk_font_path
from keys.audit import AuditCheckpointer
from keys.soft import SoftKeyStore
from keys.store import KeyStore
from licences.catalogue import Catalogue
from licences.grant_desk import GrantDesk
from licences.holder_desk import HolderDesk
from licences.holders import Holders
from licences.issuance import Fonts, IssuanceService
from licences.lifecycle import Lifecycle
from licences.models import LicenceType
from licences.presentation import PresentationService
from licences.presentation_desk import PresentationDesk
from licences.qrkeys import LicenceCodes, QrKeys
from licences.stamped import StampedCopies
from licences.versions import Versions
from seals.custody import KeyCustody
from seals.desk import IssuingRights, SealDesk
from seals.registry import SealRegistry
from trust.audit_anchor import CheckpointTsa
from trust.authority import DomainIdentity, TrustDomain
from trust.federation import Federation
from trust.profiles import Endpoints
from verify.code import CodeVerifier
from verify.foreign import ForeignVerifier
from verify.holder_usage import UsageLog
from verify.isolation import Inspector, Limits
from verify.pdf import CachedAnchors, PdfVerifier, TrustAnchors, anchors_from
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
    federation: Federation | None = None  # recognised trust domains (trust.federation)
    oidc: OidcClient | None = None  # holder sign-in (api/pages/oidc.py); None: not configured
    dev_idp: DevIdentityProvider | None = None  # demo mode only, mounted at /dev-idp
    stamped: StampedCopies | None = None  # purpose-stamped copies (licences/stamped.py)


def _passphrase(settings: Settings) -> bytes:
    if settings.key_passphrase is not None:
        return settings.key_passphrase.get_secret_value().encode()
    secret_dir = settings.data_dir / "secrets"
    secret_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = secret_dir / "keystore-passphrase"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    if path.stat().st_mode & 0o077:
        raise Unavailable(
            f"口令文件权限过宽 / {path} is readable by others; fix with: chmod 600 {path}"
        )
    return path.read_text().strip().encode()


def _secret(value: SecretStr | None, path: Path | None, what: str) -> str:
    """A secret from its variable, else from an owner-only file (re-read at each start, so a
    token sink kept fresh by an agent works)."""
    if value is not None:
        return value.get_secret_value()
    if path is None:
        return ""
    if not path.exists():
        raise Unavailable(f"{what}文件不存在 / {what} file {path} does not exist")
    if path.stat().st_mode & 0o077:
        raise Unavailable(
            f"{what}文件权限过宽 / {path} is readable by others; fix with: chmod 600 {path}"
        )
    return path.read_text().strip()


def private_directory(path: Path) -> None:
    """The data directory, owner-only (0700): it holds the database, keys and secrets. One made
    earlier with a wider mode is narrowed, when this account owns it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
        os.chmod(path, 0o700)


def build_keystore(settings: Settings) -> KeyStore:
    """``ELICENCE_KEYSTORE`` picks the custody; the others' libraries are not even imported."""
    if settings.keystore == "vault":
        from keys.vault import VaultKeyStore

        return VaultKeyStore(
            addr=settings.vault_addr or "",
            token=_secret(settings.vault_token, settings.vault_token_file, "Vault 令牌 token"),
            mount=settings.vault_mount,
        )
    if settings.keystore == "pkcs11":
        from keys.pkcs11 import Pkcs11KeyStore

        return Pkcs11KeyStore(
            module=settings.pkcs11_module or "",
            token_label=settings.pkcs11_token_label or "",
            pin=_secret(settings.pkcs11_pin, settings.pkcs11_pin_file, "PIN "),
        )
    return SoftKeyStore(settings.data_dir / "keys", _passphrase(settings))


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


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    private_directory(settings.data_dir)
    clock = clock or SystemClock()
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
    # Each audit checkpoint is timestamped by the domain's TSA (trust.audit_anchor).
    checkpoints.timestamps = CheckpointTsa(trust=trust, tsa=trust_services.tsa)
    catalogue = Catalogue(audit, clock)
    lifecycle = Lifecycle(audit, clock)
    issuance = IssuanceService(
        engine=engine,
        catalogue=catalogue,
        seals=seals,
        audit=audit,
        clock=clock,
        fonts=fonts,
        public_base_url=base_url,
        qr_codes=LicenceCodes(keys=qr_keys, engine=engine, audit=audit),
        long_term=trust_services.long_term,
    )

    federation = Federation(
        engine=engine,
        clock=clock,
        audit=audit,
        trust=trust,
        local_types=local_type_name,
        own_list=trust_services.trust_list.content,
        refresh_seconds=settings.federation_refresh_seconds,
        allow_private_addresses=settings.federation_allow_private_addresses,
    )

    def anchors(session: object) -> TrustAnchors:
        return anchors_from(trust.roots(session), trust.intermediates(session))  # type: ignore[arg-type]

    inspector = build_inspector(settings)  # one worker pool, for local and foreign uploads
    verification = VerificationService(
        engine=engine,
        pdf=PdfVerifier(
            clock=clock, anchors=CachedAnchors(anchors), max_bytes=settings.max_upload_bytes
        ),
        code=CodeVerifier(clock, qr_keys),
        audit=audit,
        inspector=inspector,
        foreign=ForeignVerifier(
            engine=engine,
            clock=clock,
            federation=federation,
            local_anchors=CachedAnchors(anchors),
            inspector=inspector,
        ),
    )
    presentations = PresentationService(
        keys=qr_keys,
        clock=clock,
        audit=audit,
        ttl=timedelta(seconds=settings.presentation_ttl_seconds),
        public_base_url=base_url,
    )
    stamped = StampedCopies(
        engine=engine,
        seals=seals,
        audit=audit,
        clock=clock,
        fonts=fonts,
        public_base_url=base_url,
        long_term=trust_services.long_term,
    )
    holders = Holders(audit)
    return Services(
        settings=settings,
        engine=engine,
        clock=clock,
        keystore=keystore,
        audit=audit,
        trust=trust,
        seals=seals,
        catalogue=catalogue,
        issuance=issuance,
        lifecycle=lifecycle,
        versions=Versions(issuance=issuance, lifecycle=lifecycle, clock=clock),
        holders=holders,
        verification=verification,
        tokens=TokenIssuer(store=keystore, clock=clock, issuer=base_url),
        checkpoints=checkpoints,
        qr_keys=qr_keys,
        presentations=presentations,
        trust_services=trust_services,
        holder_sessions=HolderSessions(
            load_key(settings.data_dir),
            secure=base_url.startswith("https://"),
            lifetime=timedelta(minutes=settings.holder_session_minutes),
        ),
        seal_desk=SealDesk(
            engine=engine,
            registry=seals,
            trust=trust,
            audit=audit,
            issuing_rights=issuing_rights(catalogue),
        ),
        key_custody=KeyCustody(engine=engine, keystore=keystore, registry=seals),
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
        federation=federation,
        **build_sign_in(settings, clock, base_url),  # type: ignore[arg-type]
        stamped=stamped,
    )


DEV_CLIENT_ID = "elicence-demo"


def build_sign_in(settings: Settings, clock: Clock, base_url: str) -> dict[str, object]:
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
        return {"oidc": None, "dev_idp": None}
    return {"oidc": OidcClient(config, clock=clock), "dev_idp": dev_idp}


def issuing_rights(catalogue: Catalogue) -> IssuingRights:
    """The seals registry asks the catalogue whether a department may issue a licence type."""

    def check(session: Session, type_code: str, department_code: str) -> None:
        catalogue.check_issuer(catalogue.get(session, type_code), department_code)

    return check


def local_type_name(session: Session, code: str) -> str | None:
    """The name of a licence type of this domain's catalogue, or None (federation mappings)."""
    entry = session.get(LicenceType, code)
    return entry.name if entry is not None else None


def is_initialised(services: Services) -> bool:
    with reading(services.engine) as session:
        return services.trust.is_initialised(session)


def data_path(settings: Settings, name: str) -> Path:
    return settings.data_dir / name
