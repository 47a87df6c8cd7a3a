"""The holder's JSON API (``/api/v1/holder/...``), for a holder app on the same site.

Every route needs the holder session cookie (``api.holder_session.current_holder``); writes also
need the session's CSRF token in ``X-CSRF-Token``, which ``GET /api/v1/holder/session``
returns. A department's credential is refused (403): it never acts for a holder. Another
holder's licence or copy is a 404, like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.edge.holder_session import HolderPrincipal, current_holder
from api.edge.state import services_of
from api.pages.holder_views import (
    copy_json,
    holder_key,
    licence_json,
    link_json,
    ofd_desk,
    ofd_response,
    pdf_response,
    presentation_json,
)
from licences.ofd_issue import MEDIA_TYPE as OFD_MEDIA_TYPE
from licences.stamped import MAX_PURPOSE

router = APIRouter(prefix="/api/v1/holder", tags=["holder 持证人"])
Holder = Annotated[HolderPrincipal, Depends(current_holder)]
LinkId = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[0-9a-f]+$")]
NO_STORE = {"Cache-Control": "no-store"}
PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "盖章的PDF / the sealed PDF"}
}


class StampedCopyRequest(BaseModel):
    """加注件：办理事项名称和/或事项编码，至少一项 / the purpose, a service item, or both."""

    model_config = ConfigDict(extra="forbid")
    purpose: str | None = Field(
        default=None,
        max_length=4 * MAX_PURPOSE,
        description=f"办理事项名称，2-{MAX_PURPOSE} 字 / the matter's name",
    )
    service_item: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Za-z-]{1,64}$",
        description="事项编码，须为此类证照的服务事项 / one of the licence type's service_items",
    )


@router.get("/session")
def session_info(request: Request, holder: Holder) -> JSONResponse:
    """The signed-in holder, and the CSRF token to send with writes."""
    return JSONResponse(
        {
            "subject": holder.subject,
            "issuer": holder.issuer,
            "name": holder.name,
            "id_type": holder.id_type,
            "id_number": holder.id_number,
            "csrf_token": request.state.holder_csrf,
        },
        headers=NO_STORE,
    )


@router.get("/licences")
def licences(request: Request, holder: Holder) -> JSONResponse:
    """本人的全部证照（含历史版本），新的在前 / every licence of mine, newest first."""
    services = services_of(request)
    records = services.holder_desk.licences(holder_key(holder))
    now, policy = services.clock.now(), services.expiry.policy
    body = [licence_json(r, now, expiry=policy) for r in records]
    return JSONResponse({"licences": body}, headers=NO_STORE)


@router.get("/licences/{identifier}")
def licence(identifier: str, request: Request, holder: Holder) -> JSONResponse:
    services = services_of(request)
    desk = services.holder_desk
    found = desk.licence(holder_key(holder), identifier)
    body = licence_json(
        found.record, services.clock.now(), detail=True, expiry=services.expiry.policy
    )
    body["stamped_copies"] = [copy_json(c, desk) for c in found.copies]
    return JSONResponse(body, headers=NO_STORE)


@router.get("/licences/{identifier}/pdf", response_class=Response, responses=PDF)
def licence_pdf(identifier: str, request: Request, holder: Holder) -> Response:
    desk = services_of(request).holder_desk
    return pdf_response(desk.licence_pdf(holder_key(holder), identifier))


@router.get(
    "/licences/{identifier}/document.ofd",
    response_class=Response,
    responses={
        200: {"content": {OFD_MEDIA_TYPE: {}}, "description": "国密签章的 OFD / the sealed OFD"}
    },
)
def licence_ofd(identifier: str, request: Request, holder: Holder) -> Response:
    """本人证照的 OFD 文件（其类型签发 OFD 时）/ my licence's sealed OFD, when its type issues one."""
    desk = ofd_desk(services_of(request).ofd_desk)
    return ofd_response(desk.for_holder(holder_key(holder), identifier))


class PresentationRequest(BaseModel):
    """用证授权：为某一事项生成授权码；缺省为仅出示 / the service item the code authorises a
    department's use for; absent: show only."""

    model_config = ConfigDict(extra="forbid")
    service_item: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Za-z-]{1,64}$",
        description="事项编码，须为此类证照声明的服务事项 / one of the licence type's service items",
    )


@router.post("/licences/{identifier}/presentations", status_code=201)
def present(
    identifier: str,
    request: Request,
    holder: Holder,
    body: PresentationRequest | None = None,
) -> JSONResponse:
    """A short-lived presentation code for a valid licence (409 otherwise); with a service item,
    a use authorisation code the first department to scan it may use once for that item."""
    services = services_of(request)
    presentation = services.holder_desk.present(
        holder_key(holder),
        identifier,
        request_id=request.state.request_id,
        service_item=body.service_item if body is not None else None,
    )
    answer = presentation_json(presentation, services.clock.now())
    answer["service_item"] = presentation.service_item
    return JSONResponse(answer, status_code=201, headers=NO_STORE)


@router.get("/licences/{identifier}/stamped-copies")
def stamped_copies(identifier: str, request: Request, holder: Holder) -> JSONResponse:
    desk = services_of(request).holder_desk
    found = desk.licence(holder_key(holder), identifier)
    body = [copy_json(c, desk) for c in found.copies]
    return JSONResponse({"stamped_copies": body}, headers=NO_STORE)


@router.post("/licences/{identifier}/stamped-copies", status_code=201)
def make_stamped_copy(
    identifier: str, body: StampedCopyRequest, request: Request, holder: Holder
) -> JSONResponse:
    """加注件：本服务按证照库数据重新生成并加盖发证部门印章 / a copy rendered from the
    repository with the purpose printed on it, sealed by the issuing department."""
    desk = services_of(request).holder_desk
    copy = desk.stamp(
        holder_key(holder),
        identifier,
        purpose=body.purpose,
        service_item=body.service_item,
        request_id=request.state.request_id,
    )
    return JSONResponse(copy_json(copy, desk), status_code=201, headers=NO_STORE)


@router.get("/stamped-copies/{copy_id}/pdf", response_class=Response, responses=PDF)
def stamped_copy_pdf(copy_id: str, request: Request, holder: Holder) -> Response:
    desk = services_of(request).holder_desk
    return pdf_response(desk.copy_pdf(holder_key(holder), copy_id))


@router.get("/links")
def holder_links(request: Request, holder: Holder) -> JSONResponse:
    """发给本人的持证人链接（出示页面），新的在前 / the holder links made for your licences,
    newest first: which licence, until when, and whether they still work."""
    links = services_of(request).holder_desk.links(holder_key(holder))
    return JSONResponse({"items": [link_json(link) for link in links]}, headers=NO_STORE)


@router.delete("/links/{link_id}")
def revoke_holder_link(link_id: LinkId, request: Request, holder: Holder) -> JSONResponse:
    """撤销持证人链接，即时生效 / revoke a holder link; it stops working at once."""
    desk = services_of(request).holder_desk
    link = desk.revoke_link(holder_key(holder), link_id, request_id=request.state.request_id)
    return JSONResponse(link_json(link), headers=NO_STORE)
