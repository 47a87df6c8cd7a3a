"""Public PKI endpoints: CA certificates and CRLs for relying parties."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Request, Response

from core.db import transaction

router = APIRouter(prefix="/pki")


@router.get(
    "/ca/{name}.crt",
    response_class=Response,
    responses={200: {"content": {"application/pkix-cert": {}}}},
)
def ca_certificate(name: str, request: Request) -> Response:
    services = request.app.state.services
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
    services = request.app.state.services
    with transaction(services.engine) as session:
        der = services.trust.crl(session, name)
    return Response(
        der, media_type="application/pkix-crl", headers={"Cache-Control": "max-age=300"}
    )
