"""Federation at the edge: the signed licence-status answer every domain gives to the others,
and the operator's routes for recognised domains (``admin`` scope; the CLI does the same).

``GET /pki/licence-status/{key}`` is public and rate-limited per address with the other public
routes (``api.edge.limits.PUBLIC_PREFIXES``): another domain verifying one of our licences asks
it for the licence's current status, by the SHA-256 of the PDF or by the licence identifier,
with a nonce. The answer is signed with the trust-list key (``trust.federation_jws``), so the asking domain checks it with the
fingerprint it pinned; personal data in it is masked as on the verification page. Each answer
is a key use and leaves audit entries, written with it by ``verify.licence_status``; it is never
cached (``Cache-Control: no-store``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.edge.auth import DepartmentPrincipal, require
from api.edge.state import services_of
from core.errors import InvalidInput
from licences.identifiers import validate_licence_type_code

router = APIRouter()
Admin = Annotated[DepartmentPrincipal, Depends(require("admin"))]
NONCE = re.compile(r"[A-Za-z0-9_-]{1,64}")


# -- the public status answer ---------------------------------------------------------------


def _answer(request: Request, key: str, nonce: str | None) -> dict[str, Any]:
    rid: str | None = getattr(request.state, "request_id", None)
    return services_of(request).licence_status.answer(key, nonce, rid)


STATUS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "签名的证照状态应答 / the signed licence-status answer",
        "content": {"application/json": {}},
    }
}


@router.get("/pki/licence-status/{key}", response_model=None, responses=STATUS_RESPONSES)
async def licence_status(
    key: str,
    request: Request,
    nonce: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """证照当前状态（供其他信任域核验） / the licence's current status for another domain: by
    the PDF's SHA-256 (64 lower-case hex digits) or the GB/T 36904 identifier."""
    if nonce is not None and NONCE.fullmatch(nonce) is None:
        raise InvalidInput("nonce 须为1至64个字母数字 / nonce: 1 to 64 of A-Z a-z 0-9 _ -")
    signed = await run_in_threadpool(_answer, request, key, nonce)
    return JSONResponse(signed, headers={"Cache-Control": "no-store"})


# -- the operator's routes ------------------------------------------------------------------


class AddBody(BaseModel):
    url: str = Field(max_length=512, description="对方信任列表网址 / the trust list's URL")
    fingerprint: str = Field(
        min_length=64, max_length=95, description="签名者证书SHA-256 / signer's SHA-256"
    )


class MappingBody(BaseModel):
    local_type: str = Field(min_length=21, max_length=21)


@router.get("/api/v1/federation/domains", tags=["federation"])
def list_domains(request: Request, principal: Admin) -> list[dict[str, Any]]:
    """已承认的信任域 / recognised domains, their lists and type mappings."""
    return services_of(request).federation.describe()


@router.post("/api/v1/federation/domains", status_code=201, tags=["federation"])
def add_domain(body: AddBody, request: Request, principal: Admin) -> dict[str, Any]:
    """承认一个信任域 / recognise a domain by its trust list URL and pinned signer."""
    federation = services_of(request).federation
    outcome = federation.add(body.url, body.fingerprint, actor=principal.actor)
    return {"result": outcome.result, **federation.describe(outcome.name)[0]}


@router.post("/api/v1/federation/domains/{name}/refresh", tags=["federation"])
def refresh_domain(name: str, request: Request, principal: Admin) -> dict[str, Any]:
    """按序号更新信任列表 / fetch the domain's list again (sequence rules apply)."""
    federation = services_of(request).federation
    (outcome,) = federation.refresh(name, actor=principal.actor)
    return {"result": outcome.result, **federation.describe(outcome.name)[0]}


@router.delete("/api/v1/federation/domains/{name}", status_code=204, tags=["federation"])
def remove_domain(name: str, request: Request, principal: Admin) -> Response:
    """不再承认该信任域 / stop recognising the domain (its mappings go with it)."""
    services_of(request).federation.remove(name, actor=principal.actor)
    return Response(status_code=204)


@router.put("/api/v1/federation/domains/{name}/mappings/{foreign_type}", tags=["federation"])
def map_type(
    name: str, foreign_type: str, body: MappingBody, request: Request, principal: Admin
) -> dict[str, str]:
    """外域证照类型对应的本域类型 / the local licence type a foreign type corresponds to."""
    validate_licence_type_code(foreign_type, field="foreign_type")
    validate_licence_type_code(body.local_type, field="local_type")
    services_of(request).federation.map(
        name, foreign_type, body.local_type, actor=principal.actor
    )
    return {"domain": name, "foreign_type": foreign_type, "local_type": body.local_type}


@router.delete(
    "/api/v1/federation/domains/{name}/mappings/{foreign_type}",
    status_code=204,
    tags=["federation"],
)
def unmap_type(name: str, foreign_type: str, request: Request, principal: Admin) -> Response:
    services_of(request).federation.map(name, foreign_type, None, actor=principal.actor)
    return Response(status_code=204)
