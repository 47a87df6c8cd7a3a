"""Builds the trust services (OCSP, TSA, trust list, long-term sealing, archive refresh) once,
from collaborators the container already made."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from core.audit import AuditLog
from core.clock import Clock
from licences.archive import ArchiveService
from seals.ltv import LongTermSealing
from trust.authority import TrustDomain
from trust.ocsp import OcspResponder
from trust.profiles import Endpoints
from trust.trustlist import TrustListPublisher
from trust.tsa import TimeStampAuthority


@dataclass(frozen=True)
class TrustServices:
    ocsp: OcspResponder
    tsa: TimeStampAuthority
    trust_list: TrustListPublisher
    long_term: LongTermSealing
    archive: ArchiveService


def build_trust_services(
    *,
    engine: Engine,
    trust: TrustDomain,
    clock: Clock,
    audit: AuditLog,
    endpoints: Endpoints,
    extra_members: Callable[[], dict[str, Any]] | None = None,
) -> TrustServices:
    ocsp = OcspResponder(trust=trust, clock=clock)
    tsa = TimeStampAuthority(trust=trust, clock=clock)
    long_term = LongTermSealing(trust=trust, ocsp=ocsp, tsa=tsa, clock=clock)
    return TrustServices(
        ocsp=ocsp,
        tsa=tsa,
        trust_list=TrustListPublisher(
            trust=trust, clock=clock, endpoints=endpoints, extra_members=extra_members
        ),
        long_term=long_term,
        archive=ArchiveService(
            engine=engine, trust=trust, tsa=tsa, long_term=long_term, audit=audit, clock=clock
        ),
    )
