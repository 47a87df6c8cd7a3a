"""Public PKI endpoints for relying parties: CA certificates, CRLs, the OCSP responder
(RFC 6960, POST and GET), the time-stamping authority (RFC 3161), the signed trust list and
the signed status list (``licences.status_list``).

Every OCSP response, timestamp and trust list is a key use; ``trust.pki_desk.PkiDesk`` makes
each answer in a transaction that writes its audit entry, so these routes only shape the HTTP."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.x509 import ocsp as x509_ocsp
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.edge.limits import PKI_BODY
from api.edge.state import services_of
from core.errors import TooLarge
from licences.status_list import MEDIA_TYPE as STATUS_LIST_MEDIA_TYPE
from licences.status_list import TTL_MS
from trust.ocsp import unsuccessful
from trust.pki_desk import PkiDesk

router = APIRouter(prefix="/pki")
STATUS_LIST_MAX_AGE = TTL_MS // 1000  # what the list's own ttl tells a verifier


def _desk(request: Request) -> PkiDesk:
    return services_of(request).trust_services.pki


def _request_id(request: Request) -> str | None:
    rid: str | None = getattr(request.state, "request_id", None)
    return rid


@router.get(
    "/ca/{name}.crt",
    response_class=Response,
    responses={200: {"content": {"application/pkix-cert": {}}}},
)
def ca_certificate(name: str, request: Request) -> Response:
    return Response(_desk(request).ca_certificate(name), media_type="application/pkix-cert")


@router.get(
    "/crl/{name}.crl",
    response_class=Response,
    responses={200: {"content": {"application/pkix-crl": {}}}},
)
def crl(name: str, request: Request) -> Response:
    der = _desk(request).crl(name)
    return Response(
        der, media_type="application/pkix-crl", headers={"Cache-Control": "max-age=300"}
    )


MAX_PKI_REQUEST = PKI_BODY  # the edge stops reading a POST body past it (api/edge/limits.py)
OCSP_TYPES: dict[int | str, dict[str, Any]] = {200: {"content": {"application/ocsp-response": {}}}}


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_PKI_REQUEST:
        raise TooLarge(f"请求过大 / request larger than {MAX_PKI_REQUEST} bytes")
    return body


def _ocsp(request: Request, der: bytes) -> bytes:
    return _desk(request).ocsp(der, _request_id(request))


@router.post("/ocsp", response_class=Response, responses=OCSP_TYPES)
async def ocsp_post(request: Request) -> Response:
    """OCSP over POST (RFC 6960 A.1): the body is a DER OCSPRequest."""
    der = await _body(request)
    answer = await run_in_threadpool(_ocsp, request, der)
    return Response(answer, media_type="application/ocsp-response")


@router.get("/ocsp/{encoded:path}", response_class=Response, responses=OCSP_TYPES)
def ocsp_get(encoded: str, request: Request) -> Response:
    """OCSP over GET: the path is the base64 (URL-encoded) DER OCSPRequest."""
    try:
        der = base64.b64decode(encoded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        der = b""
    if not der or len(der) > MAX_PKI_REQUEST:
        answer = unsuccessful(x509_ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        return Response(answer, media_type="application/ocsp-response")
    answer = _ocsp(request, der)
    return Response(
        answer,
        media_type="application/ocsp-response",
        headers={"Cache-Control": "max-age=60, public"},
    )


def _timestamp(request: Request, der: bytes) -> bytes:
    return _desk(request).timestamp(der, _request_id(request))


@router.post(
    "/tsa",
    response_class=Response,
    responses={200: {"content": {"application/timestamp-reply": {}}}},
)
async def timestamp(request: Request) -> Response:
    """RFC 3161 over HTTP: the body is a DER TimeStampReq; refusals are TimeStampResp too."""
    der = await _body(request)
    answer = await run_in_threadpool(_timestamp, request, der)
    return Response(answer, media_type="application/timestamp-reply")


@router.get("/trust-list")
def trust_list(request: Request) -> dict[str, Any]:
    """The domain's signed trust list; see docs/trust-list.md for the signature format."""
    return _desk(request).trust_list(_request_id(request))


STATUS_LIST_TYPES: dict[int | str, dict[str, Any]] = {
    200: {"content": {STATUS_LIST_MEDIA_TYPE: {}}},
    304: {"description": "the list named by If-None-Match is still the current one"},
}


@router.get("/status-list", response_class=Response, responses=STATUS_LIST_TYPES)
def status_list(request: Request) -> Response:
    """The domain's signed status list (docs/status-list.md): a compact JWS, re-signed within a
    minute of a status change and at least daily. Verifiers poll it; the ETag (its sequence)
    lets an unchanged list cost them a 304."""
    published = services_of(request).status_list.current(_request_id(request))
    headers = {"ETag": published.etag, "Cache-Control": f"public, max-age={STATUS_LIST_MAX_AGE}"}
    if _matches(request.headers.get("if-none-match"), published.etag):
        return Response(status_code=304, headers=headers)
    return Response(published.token, media_type=STATUS_LIST_MEDIA_TYPE, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 13.1.2: weak comparison of each listed tag, or ``*``."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False
