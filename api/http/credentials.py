"""A licence exported as a W3C Verifiable Credential (``application/vc+jwt``) for its issuer."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
