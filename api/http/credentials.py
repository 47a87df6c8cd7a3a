"""A licence exported as a W3C Verifiable Credential (``application/vc+jwt``) for its issuer.

The route asks what the licence read and PDF routes ask — a department's Bearer credential, no
particular scope — but, unlike them, offers no pull under a holder's grant: the credential
carries the holder's ID number whole, so only the issuing department (and the holder, on
``/me``) gets it; any other department is answered 404, as for a licence that does not exist.
The document and its signature are ``licences.credential``; ``docs/credentials.md`` describes it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.edge.auth import DepartmentPrincipal, department
from api.edge.state import services_of
from licences.credential import MEDIA_TYPE
from licences.credential_desk import ExportedCredential

router = APIRouter(prefix="/api/v1")
Principal = Annotated[DepartmentPrincipal, Depends(department)]


def credential_response(exported: ExportedCredential) -> Response:
    """A signed credential as a download (also the holder page's answer)."""
    return Response(
        exported.token,
        media_type=MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{exported.filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/licences/{identifier}/credential",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}},
)
def credential(identifier: str, request: Request, principal: Principal) -> Response:
    """可验证凭证（W3C VC 2.0，vc+jwt），仅发证部门 / the licence as a W3C Verifiable
    Credential (vc+jwt), for the issuing department only."""
    exported = services_of(request).credential_desk.for_issuer(
        identifier,
        department_code=principal.department_code,
        actor=principal.actor,
        request_id=request.state.request_id,
    )
    return credential_response(exported)
