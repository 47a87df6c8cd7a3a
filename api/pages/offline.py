"""The offline verifier's service worker and what it caches for ``/verify``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
