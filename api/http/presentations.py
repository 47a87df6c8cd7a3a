"""A holder's presentation code redeemed by a department's counter system: the use authorisation
code (用证授权码).

``POST /api/v1/presentations:redeem`` (the ``:verb`` form of ``/licences:batch``): the clerk's
system sends what its scanner read, the code's URL or the bare code, with its Bearer credential
(scope ``licences:pull``, as a pull under a grant). The answer is the licence record shaped as a
pull for the code's service item gives it — that item's fields, the holder masked, no status
reason — with the consent it was given under. Every check, the claim of the code, the pull row
and the audit entry are ``licences.use_codes``'s; this route only shapes HTTP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from api.edge.auth import DepartmentPrincipal, require
from api.edge.state import services_of
from api.http.licences import licence_out
from api.http.schemas import LicenceOut, Links
from licences.links import MAX_CODE
from licences.use_codes import RedeemRequest

router = APIRouter(prefix="/api/v1")
Puller = Annotated[DepartmentPrincipal, Depends(require("licences:pull"))]


class RedeemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(
        min_length=1,
        max_length=MAX_CODE + 256,
        description="扫码所得：授权码的网址或码本身 / what the scanner read: the code's URL or "
        "the bare code",
    )
    business_number: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Za-z-]{1,64}$",
        description="办件编号（可选），记入持证人的用证记录 / the department's case number "
        "(optional), shown in the holder's usage log",
    )


class AuthorisationOut(BaseModel):
    """The consent the record was given under."""

    service_item: str
    business_number: str
    presented_at: datetime
    expires_at: datetime
    used_at: datetime
    repeat: bool = Field(description="本部门再次使用同一授权码：同样的答复 / asked again")


class RedeemedOut(BaseModel):
    licence: LicenceOut
    authorisation: AuthorisationOut


@router.post("/presentations:redeem", response_model=RedeemedOut)
def redeem(body: RedeemBody, request: Request, principal: Puller) -> RedeemedOut:
    """用证授权码：持证人为某一事项生成的出示码，在有效期内由第一个扫码的部门使用一次，得到该事项
    所需字段，持证人信息脱敏 / a holder's code for one service item, used once, within its
    lifetime, by the first department that scans it: that item's fields, the holder masked."""
    services = services_of(request)
    authorised = services.use_codes.redeem(
        RedeemRequest(
            text=body.code,
            department_code=principal.department_code,
            client_id=principal.client_id,
            actor=principal.actor,
            business_number=body.business_number,
            request_id=request.state.request_id,
        )
    )
    pulled = authorised.pulled
    out = licence_out(request, pulled.record.licence, pulled.record.holder)
    licence = out.model_copy(
        update={
            "holder": pulled.holder,
            "fields": pulled.fields,
            "status_reason": None,
            # The code gives the record only; the sealed PDF is the whole licence.
            "links": Links(pdf="", verify=out.links.verify),
        }
    )
    return RedeemedOut(
        licence=licence,
        authorisation=AuthorisationOut(
            service_item=authorised.service_item,
            business_number=authorised.business_number,
            presented_at=authorised.presented_at,
            expires_at=authorised.expires_at,
            used_at=authorised.used_at,
            repeat=authorised.repeat,
        ),
    )
