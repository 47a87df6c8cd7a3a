"""A trust domain of its own for the SM2 tests (``tests/test_sm2_*.py``): the ECDSA and SM2 CAs
``TrustDomain.initialise`` makes, and a department's seal certificate to give an SM2 twin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from core.audit import AuditLog
from core.clock import Clock
from keys.soft import SoftKeyStore
from trust.authority import DomainIdentity, TrustDomain
from trust.profiles import Endpoints

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def trust_domain(store: SoftKeyStore, clock: Clock) -> TrustDomain:
    return TrustDomain(
        keystore=store,
        clock=clock,
        audit=AuditLog(clock),
        endpoints=Endpoints("https://licences.example.test"),
        identity=DomainIdentity("测试信任域 Test Domain", "测试组织"),
    )


def issue_seal(
    trust: TrustDomain, session: Session, store: SoftKeyStore, seal_code: str, lifetime: timedelta
) -> Any:
    """The ECDSA certificate of a new seal ``seal_code`` of one department."""
    return trust.issue_seal_certificate(
        session,
        actor="operator:init",
        department_name="某市市场监督管理局",
        department_code="11110000000000000X",
        seal_name="电子证照专用章",
        seal_code=seal_code,
        key_ref=store.create(f"seal-{seal_code}"),
        lifetime=lifetime,
    )
