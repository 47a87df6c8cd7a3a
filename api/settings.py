"""Configuration from ``ELICENCE_*`` environment variables, read once at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ELICENCE_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str | None = None
    # A PostgreSQL streaming replica: verification and search read there, every write goes to the
    # primary, and a licence not yet replayed on the replica is read from the primary.
    database_replica_url: str | None = None
    # Redis, the shared state of a fleet of workers: rate windows, revoked holder sessions,
    # single-use codes, the development identity provider's state. None: one node, in memory.
    redis_url: str | None = None
    keystore: Literal["soft", "vault", "pkcs11"] = "soft"
    key_passphrase: SecretStr | None = None
    vault_addr: str | None = None
    vault_token: SecretStr | None = None
    vault_token_file: Path | None = None  # owner-only file, e.g. a Vault Agent token sink
    vault_mount: str = "transit"
    pkcs11_module: str | None = None  # e.g. /usr/lib/softhsm/libsofthsm2.so
    pkcs11_token_label: str | None = None
    pkcs11_pin: SecretStr | None = None
    pkcs11_pin_file: Path | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    public_rate_limit: str = "60/minute"
    client_rate_limit: str = "1200/minute"
    # Per-address windows of their own: each timestamp or OCSP answer is a signature and an
    # audit entry; a statistics page aggregates whole tables.
    tsa_rate_limit: str = "60/minute"
    ocsp_rate_limit: str = "600/minute"
    statistics_rate_limit: str = "60/minute"
    cors_origins: list[str] = []
    audit_checkpoint_every: int = 100
    domain_name: str = "示范省电子证照信任域"
    domain_organisation: str = "示范省政务服务数据管理局"
    max_upload_bytes: int = 10 * 1024 * 1024
    # A JSON body (batches and imports may send the upload limit) and how deep it may nest.
    max_json_bytes: int = 1024 * 1024
    max_json_depth: int = 32
    # Uploaded PDFs are first parsed in a limited child process (verify/isolation.py).
    verify_isolation: bool = True
    verify_workers: int = 2
    verify_cpu_seconds: int = 10
    verify_memory_mb: int = 1024
    verify_wall_seconds: float = 20.0
    verify_max_objects: int = 20_000
    verify_max_pages: int = 10
    verify_max_depth: int = 64
    font_cache_dir: Path | None = None
    presentation_ttl_seconds: int = 300  # lifetime of a holder's presentation QR code
    kiosk_reset_seconds: int = Field(default=30, ge=5, le=600)  # /verify?kiosk=1 clears its result
    federation_refresh_seconds: int = 300  # recognised domains' lists are re-fetched this often
    # The signed status list (licences/status_list.py): valid this long, and signed anew at least
    # this often (and within a minute of any status change).
    status_list_lifetime_hours: int = 48
    status_list_refresh_hours: int = 24
    # Peers on loopback, link-local or private addresses (e.g. provinces on one private network,
    # or tests on 127.0.0.1) are refused unless this allows them (trust/federation_http.py).
    federation_allow_private_addresses: bool = False
    # Holder sign-in (api/pages/oidc.py): the unified identity platform, an OpenID Connect provider.
    # Without an issuer, demo mode signs holders in at the development provider under /dev-idp.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    holder_session_minutes: int = 30
    # Demo mode (`make run`): serves the development identity provider (api/dev_idp/provider.py) at
    # /dev-idp, which signs in the demo data's holders. Never on in production: 404 otherwise.
    demo_mode: bool = False
    # The daily expiry scan (supervision/expiry.py), in days: reminders before a licence's last
    # day (a default, and per licence type code as JSON, e.g. {"<type code>": 60}), the overdue
    # notice after it, how far back a scan after downtime looks, and the per-department alert.
    expiry_reminder_days: int = 30
    expiry_reminder_days_by_type: dict[str, int] = {}
    expiry_overdue_days: int = 30
    expiry_catch_up_days: int = 31
    expiry_alert_days: int = 30
    expiry_alert_threshold: int = 50
    # Objections (licences/objections.py): one left open longer than this many days raises the
    # supervisor's alert objection_overdue (supervision/objection_watch.py), 1 to 365.
    objection_overdue_days: int = 15
    # Signed event delivery (supervision/delivery.py, run by `elicence worker`): each post's
    # connect and read timeout, tries before a dead letter, the retry backoff's base and cap, and
    # how long a worker's claim on a delivery lasts (always more than two timeouts).
    events_timeout_seconds: float = 5.0
    events_max_attempts: int = 8
    events_backoff_base_seconds: float = 10.0
    events_backoff_cap_seconds: float = 3600.0
    events_lease_seconds: float = 30.0
    # Tests and the demo only: subscriptions may then post to http://127.0.0.1:<port>.
    events_allow_http_loopback: bool = False
    # Early warning (supervision/alerts.py): what each alert rule fires at, passed in by the
    # container. K failed verifications of one licence, or from one source, within W minutes.
    alert_licence_failures: int = Field(default=5, ge=1)
    alert_source_failures: int = Field(default=10, ge=1)
    alert_failure_window_minutes: int = Field(default=10, ge=1)
    # A department's last hour above k x its hourly mean of 28 days, and above the floor.
    alert_burst_factor: float = Field(default=5.0, gt=0)
    alert_burst_floor: int = Field(default=50, ge=0)
    # Working hours in China time, [start, end); weekends are off-hours unless they work.
    alert_work_start_hour: int = Field(default=9, ge=0, le=23)
    alert_work_end_hour: int = Field(default=18, ge=1, le=24)
    alert_work_weekends: bool = False
    # Licences sealed this long before their seal's suspension or revocation are listed.
    alert_seal_race_minutes: int = Field(default=60, ge=1)

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'elicence.db').resolve()}"
