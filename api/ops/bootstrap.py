"""``elicence init``: migrate, create the trust domain, and with --demo, the demo data."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import select

from api.container import Services
from api.ops import demo
from core.clock import china_today
from core.db import reading, transaction
from core.errors import Conflict
from licences.issuance import IssueRequest
from licences.models import Licence, LicenceType
from migrations.runner import upgrade
from seals.clients import create_client
from seals.models import Department, SealType

OPERATOR = "operator:init"


@dataclass
class InitResult:
    created_domain: bool
    created_demo: bool
    messages: list[str] = field(default_factory=list)
    demo_licence: str | None = None


def initialise(services: Services, *, with_demo: bool) -> InitResult:
    upgrade(services.settings.resolved_database_url())
    with transaction(services.engine) as session:
        created = services.trust.initialise(session, OPERATOR)
    services.tokens.ensure_key()
    services.checkpoints.ensure_key()
    services.qr_keys.ensure()  # signs QR payloads; created once, kept across runs
    result = InitResult(created_domain=created, created_demo=False)
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
    with reading(services.engine) as session:
        exists = session.get(Department, demo.MARKET["code"]) is not None
    if exists and credentials_path.exists():
        result.messages.append("示范数据已存在，未做改动 / demo data exists, nothing changed")
        result.demo_licence = _first_demo_licence(services)
        return
    if exists:
        raise Conflict(
            f"示范数据已存在但缺少 {credentials_path} / demo data exists but its credentials file is "
            "missing; use a fresh data directory"
        )
    keys: dict[str, str] = {}
    with transaction(services.engine) as session:
        for spec in demo.DEPARTMENTS:
            services.seals.add_department(
                session,
                actor=OPERATOR,
                code=spec["code"],
                name=spec["name"],
                division_code=spec["division"],
                level=spec["level"],
            )
        session.flush()
        for spec in demo.DEPARTMENTS:
            services.seals.create_seal(
                session,
                actor=OPERATOR,
                department_code=spec["code"],
                seal_type=SealType.LICENCE,
                licence_types=demo.licence_types_of(spec["code"]),
            )
            _, key = create_client(
                session,
                services.audit,
                services.clock,
                department_code=spec["code"],
                name="demo",
                actor=OPERATOR,
            )
            keys[spec["code"]] = key
        for entry in demo.LICENCE_TYPES:
            services.catalogue.add(
                session, actor=OPERATOR, entry=LicenceType(holder_id_type="", **entry)
            )
    today = china_today(services.clock.now())  # validity dates are dates in China
    credentials = {
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
    }
    _write_private(credentials_path, json.dumps(credentials, ensure_ascii=False, indent=2))
    for sample in demo.SAMPLE_LICENCES:
        services.issuance.issue(
            IssueRequest(
                department_code=sample["department"],
                licence_type=sample["licence_type"],
                holder_id_type=sample["holder"]["id_type"],
                holder_id=sample["holder"]["id"],
                holder_name=sample["holder"]["name"],
                fields=sample["fields"],
                valid_from=today,
                actor=OPERATOR,
            )
        )
    result.created_demo = True
    result.demo_licence = _first_demo_licence(services)
    result.messages.append(f"已创建示范数据 / demo data created; credentials in {credentials_path}")


def _first_demo_licence(services: Services) -> str | None:
    with reading(services.engine) as session:
        licence = session.exec(
            select(Licence).where(Licence.issuer_code == demo.MARKET["code"])
        ).first()
        return licence.identifier if licence else None


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
