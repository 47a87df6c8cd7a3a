"""The signed-in holder's own licence as a W3C Verifiable Credential: the download link on the
licence page (``holder_licence.html``), ``GET /me/licences/{identifier}/credential``.

The holder session is read as for the other ``/me`` downloads (``api.pages.holder``): nobody
signed in gets the sign-in page, another holder's licence is a 404 page exactly like one that
does not exist, and a refusal is a page in words. The document is ``licences.credential``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.edge.errors import STATUS
from api.edge.holder_session import optional_holder, page_context
from api.edge.state import services_of
from api.pages.holder_views import holder_key
from api.pages.signin import message_page
from core.errors import ElicenceError
from licences.credential import MEDIA_TYPE

router = APIRouter(include_in_schema=False)
SIGN_IN = "下载本人电子证照须先通过统一身份认证登录。/ Sign in to download your licences."


@router.get("/me/licences/{identifier}/credential")
def licence_credential(identifier: str, request: Request) -> Response:
    """可验证凭证下载 / the holder's licence as ``application/vc+jwt``."""
    holder = optional_holder(request)
    if holder is None:
        problem = getattr(request.state, "holder_problem", None)
        return message_page(
            request, 401, ("请先登录", "Please sign in"), problem or SIGN_IN, kind="warn"
        )
    try:
        exported = services_of(request).credential_desk.for_holder(
            holder_key(holder), identifier, request_id=request.state.request_id
        )
    except ElicenceError as exc:
        return refused(request, exc, page_context(request, holder, nav="licences"))
    return Response(
        exported.token,
        media_type=MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{exported.filename}"',
            "Cache-Control": "no-store",
        },
    )


def refused(request: Request, exc: ElicenceError, context: dict[str, object]) -> HTMLResponse:
    return message_page(
        request,
        STATUS[exc.kind],
        ("无法完成", "Could not be done"),
        exc.message,
        signin=False,
        context=context,
    )
