"""Builds the object graph once from settings; every other module receives its collaborators."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from api.settings import Settings
from core.audit import AuditLog
from core.clock import Clock, SystemClock
from core.db import create_db_engine, reading
from core.errors import Unavailable
from core.fonts import BOLD, REGULAR, cjk_font_path
from keys.soft import SoftKeyStore
from keys.store import KeyStore
from licences.catalogue import Catalogue
from licences.issuance import Fonts, IssuanceService
from licences.lifecycle import Lifecycle
from seals.registry import SealRegistry
from trust.authority import DomainIdentity, TrustDomain
from trust.profiles import Endpoints
from verify.code import CodeVerifier
from verify.pdf import PdfVerifier, TrustAnchors, anchors_from
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
    verification: VerificationService


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


def build_keystore(settings: Settings) -> KeyStore:
    if settings.keystore == "soft":
        return SoftKeyStore(settings.data_dir / "keys", _passphrase(settings))
    raise Unavailable(
        f"密钥库 {settings.keystore} 尚未启用 / key store {settings.keystore} is not available yet"
    )


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clock = clock or SystemClock()
    engine = create_db_engine(settings.resolved_database_url())
    keystore = build_keystore(settings)
    audit = AuditLog(clock)
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
    catalogue = Catalogue(audit)
    issuance = IssuanceService(
        engine=engine,
        catalogue=catalogue,
        seals=seals,
        audit=audit,
        clock=clock,
        fonts=fonts,
        public_base_url=base_url,
    )

    def anchors(session: object) -> TrustAnchors:
        return anchors_from(trust.roots(session), trust.intermediates(session))  # type: ignore[arg-type]

    verification = VerificationService(
        engine=engine,
        pdf=PdfVerifier(clock=clock, anchors=anchors, max_bytes=settings.max_upload_bytes),
        code=CodeVerifier(clock),
        audit=audit,
    )
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
        lifecycle=Lifecycle(audit, clock),
        verification=verification,
    )


def is_initialised(services: Services) -> bool:
    with reading(services.engine) as session:
        return services.trust.is_initialised(session)


def data_path(settings: Settings, name: str) -> Path:
    return settings.data_dir / name
