"""Public PKI endpoints for relying parties: CA certificates, CRLs, the OCSP responder
(RFC 6960, POST and GET), the time-stamping authority (RFC 3161) and the signed trust list.

Every OCSP response, timestamp and trust list is a key use, so each request that signs runs in
a transaction that writes its audit entry."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp as x509_ocsp
from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from api.edge.limits import PKI_BODY
from api.edge.state import services_of
from core.db import reading, transaction
from core.errors import TooLarge
from keys.audit import AuditedKeyUse
from trust.ocsp import unsuccessful

router = APIRouter(prefix="/pki")


@router.get(
    "/ca/{name}.crt",
    response_class=Response,
    responses={200: {"content": {"application/pkix-cert": {}}}},
)
def ca_certificate(name: str, request: Request) -> Response:
    services = services_of(request)
    with transaction(services.engine) as session:
        certificate, _ = services.trust.authority(session, name)
    return Response(
        certificate.public_bytes(serialization.Encoding.DER), media_type="application/pkix-cert"
    )


@router.get(
    "/crl/{name}.crl",
    response_class=Response,
    responses={200: {"content": {"application/pkix-crl": {}}}},
)
def crl(name: str, request: Request) -> Response:
    services = services_of(request)
    with transaction(services.engine) as session:
        der = services.trust.crl(session, name)
    return Response(
        der, media_type="application/pkix-crl", headers={"Cache-Control": "max-age=300"}
    )


MAX_PKI_REQUEST = PKI_BODY  # the edge stops reading a POST body past it (api/edge/limits.py)
OCSP_TYPES = {200: {"content": {"application/ocsp-response": {}}}}


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_PKI_REQUEST:
        raise TooLarge(f"请求过大 / request larger than {MAX_PKI_REQUEST} bytes")
    return body


def _ocsp(request: Request, der: bytes) -> bytes:
    services = services_of(request)
    with transaction(services.engine) as session:
        listener = AuditedKeyUse(
            services.audit, session, "public:ocsp", getattr(request.state, "request_id", None)
        )
        return services.trust_services.ocsp.respond(session, der, listener)  # type: ignore[no-any-return]


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
    services = services_of(request)
    with transaction(services.engine) as session:
        unit = services.trust_services.tsa.unit(session)
        listener = AuditedKeyUse(
            services.audit, session, "public:tsa", getattr(request.state, "request_id", None)
        )
        return unit.respond_der(der, listener)  # type: ignore[no-any-return]


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
    services = services_of(request)
    publisher = services.trust_services.trust_list
    try:
        with transaction(services.engine) as session:
            listener = AuditedKeyUse(
                services.audit,
                session,
                "public:trust-list",
                getattr(request.state, "request_id", None),
            )
            return publisher.current(session, listener)  # type: ignore[no-any-return]
    except IntegrityError:
        # Another request published the same sequence first; serve that one.
        with reading(services.engine) as session:
            return publisher.current(session)  # type: ignore[no-any-return]
