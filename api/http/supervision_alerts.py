"""Alerts (预警) for the supervision offices: list those of the departments under the office's
division and acknowledge one with a comment. A Bearer credential of a client holding the
``supervise`` scope; a department's ordinary credentials are 403, and no department route
touches alerts at all. The office is the credential's own, so an alert of another division is
answered 404 as if it did not exist."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.edge.state import services_of
from api.edge.supervisor_session import bearer_supervisor
from supervision.alert_desk import MAX_COMMENT, MAX_LIMIT
from supervision.supervisor_desk import Supervisor

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])
NO_STORE = {"Cache-Control": "no-store"}
Signed = Annotated[Supervisor, Depends(bearer_supervisor)]


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(min_length=1, max_length=MAX_COMMENT)


@router.get("/alerts")
def alerts(
    request: Request,
    supervisor: Signed,
    state: Literal["open", "all"] = "open",
    rule: Annotated[str | None, Query(max_length=48)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    before: Annotated[str | None, Query(max_length=20)] = None,
) -> JSONResponse:
    """预警列表（本辖区部门及全域），新者在前 / the office's alerts, newest first; ``before``
    is the last id of the previous page."""
    found = services_of(request).alert_desk.alerts_for(
        supervisor.office_code, state=state, rule=rule, limit=limit, before=before
    )
    return JSONResponse(
        {
            "items": [view.to_json() for view in found],
            "next_before": found[-1].id if len(found) == limit else None,
        },
        headers=NO_STORE,
    )


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(
    alert_id: str, body: Acknowledgement, request: Request, supervisor: Signed
) -> JSONResponse:
    """处理预警并填写意见 / acknowledge an alert with a comment (409 when already done)."""
    view = services_of(request).alert_desk.acknowledge(
        supervisor.office_code, alert_id, body.comment, supervisor.actor
    )
    return JSONResponse(view.to_json(), headers=NO_STORE)
