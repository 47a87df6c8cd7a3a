"""Holder sign-in: the unified identity platform, or the development provider in demo mode."""

from __future__ import annotations

import secrets

from api.dev_idp.provider import DevIdentityProvider, RegisteredClient
from api.ops import demo
from api.pages.oidc import OidcClient, OidcConfig
from api.settings import Settings
from core.clock import Clock
from core.errors import Unavailable
from core.shared_state import MemoryState, SharedState, StoreUnavailable

DEV_CLIENT_ID = "elicence-demo"


def build_sign_in(
    settings: Settings, clock: Clock, base_url: str, shared: SharedState | None = None
) -> tuple[OidcClient | None, DevIdentityProvider | None]:
    """Holder sign-in: the unified identity platform when ``ELICENCE_OIDC_ISSUER`` is set; in
    demo mode without one, the development provider at ``/dev-idp`` of this same service, its
    state and client secret in the shared store (one per fleet with Redis, else this process's)."""
    redirect = f"{base_url}/me/callback"
    store = shared if shared is not None else MemoryState()
    dev_idp = None
    if settings.demo_mode:
        made = secrets.token_urlsafe(32)
        try:
            secret = store.put_once(f"dev-idp:client-secret:{base_url}", made)
        except StoreUnavailable:  # Redis down at start: this worker's own, the demo still works
            secret = made
        client = RegisteredClient(DEV_CLIENT_ID, secret, (redirect,))
        dev_idp = DevIdentityProvider(
            issuer=f"{base_url}/dev-idp",
            clients=(client,),
            holders=tuple(demo.holders()),
            store=store,
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
