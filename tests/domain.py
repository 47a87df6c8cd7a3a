"""A demo trust domain on disk, built once per test module and shared by its tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Services, build_services
from api.ops.bootstrap import initialise
from api.settings import Settings
from core.clock import Clock


@dataclass
class Domain:
    settings: Settings
    services: Services
    client: TestClient
    credentials: dict[str, Any]

    def department(self, index: int = 0) -> dict[str, Any]:
        return self.credentials["departments"][index]  # type: ignore[no-any-return]

    def auth(self, index: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.department(index)['api_key']}"}

    def issue(self, index: int = 0, **overrides: Any) -> dict[str, Any]:
        body = dict(self.department(index)["sample_request"])
        body.update(overrides)
        response = self.client.post("/api/v1/licences", json=body, headers=self.auth(index))
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def pdf(self, issued: dict[str, Any], index: int = 0) -> bytes:
        response = self.client.get(
            f"/api/v1/licences/{issued['identifier']}/pdf", headers=self.auth(index)
        )
        assert response.status_code == 200, response.text
        return response.content

    def verify_pdf(self, data: bytes) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/verify", files={"file": ("licence.pdf", data, "application/pdf")}
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def build_domain(settings: Settings, clock: Clock | None = None) -> Domain:
    services = build_services(settings, clock=clock)
    initialise(services, with_demo=True)
    credentials = json.loads((Path(settings.data_dir) / "demo-credentials.json").read_text())
    client = TestClient(create_app(services=services))
    return Domain(settings, services, client, credentials)
