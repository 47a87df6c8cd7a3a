"""``elicence init``: migrate, create the trust domain, and with --demo, the demo data.

The work is the domain's (``licences.setup.DomainSetup``: the trust domain, then the seed in
one transaction); this module decides what to do, writes the demo credentials file and says
what happened."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from api.container import Services
from api.ops import demo
from core.clock import china_today
from core.errors import Conflict
from licences.models import LicenceType
from licences.setup import DepartmentSeed
from migrations.runner import upgrade
from seals.clients import SUPERVISE

OPERATOR = "operator:init"


@dataclass
class InitResult:
    """What ``elicence init`` tells the operator, one line each."""

    messages: list[str] = field(default_factory=list)


def initialise(services: Services, *, with_demo: bool) -> InitResult:
    upgrade(services.settings.resolved_database_url())
    created = services.setup.initialise(OPERATOR)
    services.tokens.ensure_key()
    services.checkpoints.ensure_key()
    services.qr_keys.ensure()  # signs QR payloads; created once, kept across runs
    services.credential_keys.ensure()  # signs the status list and exported credentials
    result = InitResult()
    result.messages.append(
        "已创建信任域 / trust domain created"
        if created
        else "信任域已存在，未做改动 / trust domain exists, nothing changed"
    )
    if with_demo:
        _demo(services, result)
        if not services.settings.demo_mode and not services.settings.oidc_issuer:
            result.messages.append(
                "持证人登录：以 ELICENCE_DEMO_MODE=1 运行 elicence serve（make run 已设置），在 /me "
                "通过开发用身份认证登录，仅供演示 / holder sign-in: serve with ELICENCE_DEMO_MODE=1 "
                "(make run does) and sign in at /me through the development identity provider"
            )
    return result


def _demo(services: Services, result: InitResult) -> None:
    credentials_path = services.settings.data_dir / "demo-credentials.json"
    exists = services.setup.has_department(demo.MARKET["code"])
    if exists and credentials_path.exists():
        result.messages.append("示范数据已存在，未做改动 / demo data exists, nothing changed")
        return
    if exists:
        raise Conflict(
            f"示范数据已存在但缺少 {credentials_path} / demo data exists but its credentials file is "
            "missing; use a fresh data directory"
        )
    keys = services.setup.seed(
        [
            DepartmentSeed(
                code=spec["code"],
                name=spec["name"],
                division_code=spec["division"],
                level=spec["level"],
                licence_types=tuple(demo.licence_types_of(spec["code"])),
            )
            for spec in demo.DEPARTMENTS
        ]
        + [
            DepartmentSeed(
                code=demo.SUPERVISION_OFFICE["code"],
                name=demo.SUPERVISION_OFFICE["name"],
                division_code=demo.SUPERVISION_OFFICE["division"],
                level=demo.SUPERVISION_OFFICE["level"],
                licence_types=(),
                client_scopes=(SUPERVISE,),
            )
        ],
        [
            LicenceType(holder_id_type="", **entry)
            for entry in demo.licence_types(services.issuance.issues_ofd)
        ],
        actor=OPERATOR,
        client_name="demo",
    )
    today = china_today(services.clock.now())  # validity dates are dates in China
    _write_private(
        credentials_path,
        json.dumps(_credentials(services, keys, today), ensure_ascii=False, indent=2),
    )
    for sample in demo.SAMPLE_LICENCES:
        services.issuance.issue(demo.issue_request(sample, today, OPERATOR))
    result.messages.append(f"已创建示范数据 / demo data created; credentials in {credentials_path}")


def _credentials(services: Services, keys: dict[str, str], today: date) -> dict[str, Any]:
    """What demo-credentials.json holds: each department's API key and a request to try."""
    return {
        "base_url": services.settings.public_base_url.rstrip("/"),
        "departments": [
            {
                "code": spec["code"],
                "name": spec["name"],
                "api_key": keys[spec["code"]],
                "sample_request": demo.sample_request(spec["code"], today),
            }
            for spec in demo.DEPARTMENTS
        ],
        # A supervision office signs in at /supervise/sign-in with its client id and key.
        "supervision_offices": [
            {
                "code": office["code"],
                "name": office["name"],
                "division": office["division"],
                "client_id": keys[f"{office['code']}:client"],
                "api_key": keys[office["code"]],
                "sign_in": services.settings.public_base_url.rstrip("/") + "/supervise/sign-in",
            }
            for office in (demo.SUPERVISION_OFFICE,)
        ],
    }


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
