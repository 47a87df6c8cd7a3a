"""A holder's presentation code redeemed by a department's counter system: the use authorisation
code (用证授权码). Routes are added by the use-code work."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
