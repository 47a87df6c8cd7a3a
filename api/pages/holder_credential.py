"""The signed-in holder's own licence as a W3C Verifiable Credential."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
