"""Objections (错录申诉) for the issuing department: the queue of its holders' objections and
its two answers. Scope ``licences:manage``, as for amending a licence; a department sees only
objections to licences it issued, and another department's objection is a 404 like a missing
one. Amending issues a new sealed version through the licence's lifecycle (201 names it);
an objection already answered is a 409 whose ``current_state`` says how.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.edge.auth import DepartmentPrincipal, require
from api.edge.state import services_of
from licences.objection_records import MAX_TEXT

router = APIRouter(prefix="/api/v1/objections", tags=["objections 错录申诉"])
Manager = Annotated[DepartmentPrincipal, Depends(require("licences:manage"))]
ObjectionId = Annotated[str, Path(min_length=1, max_length=20)]  # unknown: 404 from the desk
NO_STORE = {"Cache-Control": "no-store"}


class AmendAnswer(BaseModel):
    """更正：字段的新值；缺省为持证人提出的更正值 / the field's new value; absent: the value the
    holder proposed."""

    model_config = ConfigDict(extra="forbid")
    value: Any = None


class RejectAnswer(BaseModel):
    """不予更正的理由（1-500 字）/ why the licence stays as it is (1-500 characters)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=4 * MAX_TEXT)  # counted and checked by the desk


@router.get("")
def queue(
    request: Request,
    principal: Manager,
    state: Literal["open", "amended", "rejected"] | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> JSONResponse:
    """本部门证照的错录申诉，先提出者在前 / objections to this department's licences, oldest
    first; the holder's ID number is masked."""
    found = services_of(request).objections.queue(
        principal.department_code, state=state, limit=limit
    )
    return JSONResponse({"items": [v.as_json() for v in found]}, headers=NO_STORE)


@router.get("/{objection_id}")
def one(objection_id: ObjectionId, request: Request, principal: Manager) -> JSONResponse:
    view = services_of(request).objections.one(principal.department_code, objection_id)
    return JSONResponse(view.as_json(), headers=NO_STORE)


@router.post("/{objection_id}/amend", status_code=201)
def amend(
    objection_id: ObjectionId, body: AmendAnswer, request: Request, principal: Manager
) -> JSONResponse:
    """更正：以新版本重新签发并盖章，申诉关联到新证照 / amend the licence (a new sealed
    version) and link the objection to it."""
    view = services_of(request).objections.amend(
        principal.department_code,
        objection_id,
        value=body.value,
        actor=principal.actor,
        request_id=request.state.request_id,
    )
    return JSONResponse(view.as_json(), status_code=201, headers=NO_STORE)


@router.post("/{objection_id}/reject")
def reject(
    objection_id: ObjectionId, body: RejectAnswer, request: Request, principal: Manager
) -> JSONResponse:
    """不予更正，并说明理由 / refuse, with the reason the holder will read."""
    view = services_of(request).objections.reject(
        principal.department_code,
        objection_id,
        reason=body.reason,
        actor=principal.actor,
        request_id=request.state.request_id,
    )
    return JSONResponse(view.as_json(), headers=NO_STORE)
