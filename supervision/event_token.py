"""An event as the receiver gets it: a compact JWS signed by the domain's credential key.

The key is the one the signed trust list publishes under ``credential_keys`` (``trust.jose``),
so a receiver that pinned our trust list verifies every event with the list it already holds,
and nobody who merely knows the subscription URL can post an event it would believe. The header
says ``typ: elicence-event+jwt`` so a status list or a credential (also signed by that key) is
never taken for an event, nor an event for them. ``aud`` is the subscription: an event posted to
one subscriber cannot be replayed to another as if meant for it.

A delivery is signed once, when it is first claimed, and the token kept: every retry and every
replay sends the same bytes under the same event id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from core.db import as_utc
from keys.store import KeyUseListener
from supervision.outbox import OutboxEvent
from trust.jose import CredentialKeys, verify_compact

TYP = "elicence-event+jwt"
MEDIA_TYPE = "application/jose"
PURPOSE = "event-delivery"


def claims(event: OutboxEvent, subscription_id: str, issuer: str) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "kind": event.kind,
        "occurred_at": as_utc(event.occurred_at).isoformat().replace("+00:00", "Z"),
        "iss": issuer,
        "aud": subscription_id,
        "data": event.data,
    }


def sign_event(
    keys: CredentialKeys,
    event: OutboxEvent,
    subscription_id: str,
    issuer: str,
    listener: KeyUseListener,
) -> str:
    payload = json.dumps(
        claims(event, subscription_id, issuer), ensure_ascii=False, separators=(",", ":")
    ).encode()
    return keys.sign({"typ": TYP}, payload, purpose=PURPOSE, listener=listener)


def read_event(
    token: str,
    keys: Callable[[str], ec.EllipticCurvePublicKey | None],
    *,
    issuer: str,
    subscription_id: str,
) -> dict[str, Any]:
    """What a receiver does: the claims of ``token`` when it verifies under ``keys`` (the trust
    list's credential keys), is an event, and was meant for this subscription of this issuer;
    ``trust.jose.JwsError`` or ``ValueError`` otherwise."""
    _, payload = verify_compact(token, keys, typ=TYP)
    body = json.loads(payload)
    if not isinstance(body, dict):
        raise ValueError("the event is not a JSON object")
    if body.get("iss") != issuer or body.get("aud") != subscription_id:
        raise ValueError("the event was meant for another issuer or subscription")
    return body

