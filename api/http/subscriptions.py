"""Departments subscribe an HTTPS endpoint to signed events (``docs/events.md``).

A department's client needs scope ``events:subscribe``; a supervision office's client (scope
``supervise``, which holds no other) may subscribe to ``alerts`` only, and the platform's
message service (``events:reminders``) to ``reminders``. What each topic lets through, the URL
rule, the limit per department and the audit are ``supervision.subscriptions``'s; another
department's subscription is a 404, as one that does not exist. This module only shapes HTTP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.edge.auth import DepartmentPrincipal, require
from api.edge.state import services_of
from core.errors import Forbidden
from seals.clients import REMINDERS, SUPERVISE
from supervision.subscriptions import MAX_TOPICS, SUBSCRIBE, SubscriptionView

router = APIRouter(prefix="/api/v1", tags=["events"])


def subscriber(request: Request) -> DepartmentPrincipal:
    """A department's client with ``events:subscribe``, else the message service's client
    (``events:reminders``) or a supervision office's (``supervise``); the first refusal is the
    one reported."""
    try:
        return require(SUBSCRIBE)(request)
    except Forbidden as refused:
        for scope in (REMINDERS, SUPERVISE):
            try:
                return require(scope)(request)
            except Forbidden:
                continue
        raise refused from None


Subscriber = Annotated[DepartmentPrincipal, Depends(subscriber)]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        max_length=4096,
        description="接收事件的 https 地址 / the https endpoint events are posted to",
    )
    topics: list[Annotated[str, Field(max_length=128)]] = Field(
        max_length=MAX_TOPICS,
        description="issued | pulled | type:<证照类型代码> | alerts | reminders",
    )


class SubscriptionOut(BaseModel):
    id: str
    url: str
    topics: list[str]
    created_at: datetime
    status: Literal["active", "disabled"]
    disabled_reason: str | None = None


def _out(view: SubscriptionView) -> SubscriptionOut:
    return SubscriptionOut(
        id=view.id,
        url=view.url,
        topics=list(view.topics),
        created_at=view.created_at,
        status="disabled" if view.status == "disabled" else "active",
        disabled_reason=view.disabled_reason,
    )


def _scopes(principal: DepartmentPrincipal) -> frozenset[str]:
    return frozenset(s for s in (SUBSCRIBE, SUPERVISE, REMINDERS) if principal.allows(s))


@router.post("/subscriptions", status_code=201, response_model=SubscriptionOut)
def create_subscription(
    body: SubscriptionIn, request: Request, principal: Subscriber
) -> SubscriptionOut:
    """订阅事件 / subscribe an endpoint to signed events."""
    view = services_of(request).subscriptions.create(
        department_code=principal.department_code,
        client_id=principal.client_id,
        scopes=_scopes(principal),
        actor=principal.actor,
        url=body.url,
        topics=body.topics,
        request_id=request.state.request_id,
    )
    return _out(view)


@router.get("/subscriptions")
def list_subscriptions(request: Request, principal: Subscriber) -> dict[str, Any]:
    """本部门的订阅 / the department's subscriptions."""
    views = services_of(request).subscriptions.of_department(principal.department_code)
    return {"items": [_out(v).model_dump(mode="json") for v in views]}


@router.delete("/subscriptions/{subscription_id}", status_code=204, response_class=Response)
def delete_subscription(subscription_id: str, request: Request, principal: Subscriber) -> Response:
    """取消订阅（待发送的事件不再发送）/ end a subscription; pending events are not sent."""
    services_of(request).subscriptions.delete(
        department_code=principal.department_code,
        subscription_id=subscription_id,
        actor=principal.actor,
        request_id=request.state.request_id,
    )
    return Response(status_code=204)


@router.get("/subscriptions/{subscription_id}/deliveries")
def list_deliveries(
    subscription_id: str,
    request: Request,
    principal: Subscriber,
    state: Annotated[
        Literal["pending", "delivered", "dead", "cancelled"] | None, Query()
    ] = None,
) -> dict[str, Any]:
    """投递记录，最新在前，至多100条 / deliveries, newest first, at most 100."""
    items = services_of(request).subscriptions.deliveries(
        department_code=principal.department_code, subscription_id=subscription_id, state=state
    )
    return {"items": items}


@router.post(
    "/subscriptions/{subscription_id}/deliveries/{event_id}/replay", status_code=202
)
def replay_delivery(
    subscription_id: str, event_id: str, request: Request, principal: Subscriber
) -> dict[str, Any]:
    """重发已送达或死信的事件（同一事件编号、同一签名）/ send a delivered or dead event
    again, with the same event id and the same signed bytes."""
    return services_of(request).subscriptions.replay(
        department_code=principal.department_code,
        subscription_id=subscription_id,
        event_id=event_id,
        actor=principal.actor,
        request_id=request.state.request_id,
    )
