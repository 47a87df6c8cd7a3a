"""Federation at the edge: the signed licence-status answer every domain gives to the others,
and the operator's routes for recognised domains (``admin`` scope; the CLI does the same).

``GET /pki/licence-status/{key}`` is public and rate-limited per address with the other public
routes (``api.limits.PUBLIC_PREFIXES``): another domain verifying one of our licences asks it
for the licence's current status, by the SHA-256 of the PDF or by the licence identifier, with a nonce. The answer is signed with
the trust-list key (``trust.federation_jws``), so the asking domain checks it with the
fingerprint it pinned; personal data in it is masked as on the verification page. Each answer
is a key use and leaves audit entries; it is never cached (``Cache-Control: no-store``).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.edge.auth import DepartmentPrincipal, require
from api.edge.state import services_of
from core.db import as_utc, transaction
from core.errors import InvalidInput
from keys.audit import AuditedKeyUse
from licences.identifiers import LicenceIdentifier, validate_licence_type_code
from licences.models import Licence
from licences.qrkeys import digest_of
from licences.repository import china_today, full_record, licence_by_sha256
from trust.federation_jws import STATUS_FORMAT, STATUS_TYPE, sign_document
from trust.profiles import Endpoints
from verify.summary import licence_summary, seal_summary

router = APIRouter()
Admin = Annotated[DepartmentPrincipal, Depends(require("admin"))]
SHA256 = re.compile(r"[0-9a-f]{64}")
NONCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
STATUS_ACTOR = "public:licence-status"


# -- the public status answer ---------------------------------------------------------------


def _find(session: Session, key: str) -> Licence | None:
    if SHA256.fullmatch(key):
        return licence_by_sha256(session, key)
    identifier = str(LicenceIdentifier.parse(key))  # 422 naming the broken rule
    return session.get(Licence, identifier)


def status_body(session: Session, services: Any, key: str, nonce: str | None) -> dict[str, Any]:
    """The unsigned answer: what the issuing domain knows about the licence now."""
    now = services.clock.now()
    endpoints = Endpoints(services.settings.public_base_url.rstrip("/"))
    body: dict[str, Any] = {
        "format": STATUS_FORMAT,
        "domain": {
            "name": services.trust.identity.name,
            "organisation": services.trust.identity.organisation,
            "base_url": endpoints.base_url,
            "trust_list_url": endpoints.trust_list,
        },
        "query": key,
        "nonce": nonce,
        "produced_at": as_utc(now).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "found": False,
        "licence": None,
        "seal": None,
    }
    licence = _find(session, key)
    if licence is None:
        return body
    record = full_record(session, licence)
    summary = asdict(licence_summary(record, china_today(now)))
    seal = asdict(seal_summary(record, None))
    seal.pop("signing_time", None)
    seal.pop("timestamp", None)
    body.update(
        found=True,
        licence={
            **summary,
            "sha256": licence.sha256,
            "record_digest": digest_of(record).hex(),
            "seal_certificate_serial": seal["certificate_serial"],
        },
        seal=seal,
    )
    return body


def _answer(request: Request, key: str, nonce: str | None) -> dict[str, Any]:
    services = services_of(request)
    rid = getattr(request.state, "request_id", None)
    with transaction(services.engine) as session:
        body = status_body(session, services, key, nonce)
        listener = AuditedKeyUse(services.audit, session, STATUS_ACTOR, rid)
        signed = sign_document(
            services.trust,
            session,
            body,
            typ=STATUS_TYPE,
            purpose="licence-status",
            listener=listener,
        )
        licence = body["licence"]
        services.audit.append(
            session,
            actor=STATUS_ACTOR,
            action="licence.status_query",
            object_type="licence",
            object_id=licence["identifier"] if licence else f"unknown:{key}"[:128],
            outcome=licence["status"] if licence else "unknown",
            request_id=rid,
            detail={"by": "sha256" if SHA256.fullmatch(key) else "identifier"},
        )
    return signed


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
    return services_of(request).federation.describe()  # type: ignore[no-any-return]


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
