"""Signed event delivery's parts, built from settings: the departments' subscription desk (a
field of ``Services``) and the delivery worker ``elicence worker`` runs (built on demand, so
the HTTP server never starts its connection pool or threads)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from api.settings import Settings
from core.audit import AuditLog
from core.clock import Clock
from supervision.delivery import DeliveryPolicy, DeliveryWorker
from supervision.endpoints import EndpointRule
from supervision.subscriptions import SubscriptionDesk
from trust.jose import CredentialKeys

if TYPE_CHECKING:
    from api.container.graph import Services


def endpoint_rule(settings: Settings) -> EndpointRule:
    return EndpointRule(allow_http_loopback=settings.events_allow_http_loopback)


def build_subscription_desk(
    settings: Settings, engine: Engine, audit: AuditLog, clock: Clock
) -> SubscriptionDesk:
    return SubscriptionDesk(engine=engine, audit=audit, clock=clock, rule=endpoint_rule(settings))


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    """The settings' policy; a lease is always longer than two posts can take, so a worker
    whose lease ran out is not still sending when another worker takes the delivery over."""
    timeout = settings.events_timeout_seconds
    return DeliveryPolicy(
        timeout_seconds=timeout,
        max_attempts=max(1, settings.events_max_attempts),
        backoff_base_seconds=settings.events_backoff_base_seconds,
        backoff_cap_seconds=settings.events_backoff_cap_seconds,
        lease_seconds=max(settings.events_lease_seconds, 2 * timeout + 1),
    )


def build_delivery_worker(
    settings: Settings,
    engine: Engine,
    audit: AuditLog,
    clock: Clock,
    keys: CredentialKeys,
) -> DeliveryWorker:
    return DeliveryWorker(
        engine=engine,
        audit=audit,
        clock=clock,
        keys=keys,
        issuer=settings.public_base_url.rstrip("/"),
        rule=endpoint_rule(settings),
        policy=delivery_policy(settings),
    )


def delivery_worker_for(services: Services) -> DeliveryWorker:
    """The worker over an opened service graph (what ``elicence worker`` runs)."""
    return build_delivery_worker(
        services.settings,
        services.engine,
        services.audit,
        services.clock,
        services.credential_keys,
    )
