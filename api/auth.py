"""Who is calling: a department, through its API key in ``Authorization: Bearer``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from core.db import reading
from core.errors import Unauthenticated
from seals.clients import authenticate


@dataclass(frozen=True)
class DepartmentPrincipal:
    department_code: str
    client_id: str

    @property
    def actor(self) -> str:
        return f"department:{self.department_code}/client:{self.client_id}"


def department(request: Request) -> DepartmentPrincipal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "需要部门凭证 / department credentials required (Authorization: Bearer)"
        )
    services = request.app.state.services
    with reading(services.engine) as session:
        client = authenticate(session, token.strip())
    return DepartmentPrincipal(client.department_code, client.id)
