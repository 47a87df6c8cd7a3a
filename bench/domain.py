"""The domain every measurement uses: a demo trust domain, the sample issuance request, the
B-B variant of the product's issuance, and the rendered page the seal step receives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.clock import china_today


def build(data_dir: Path, database_url: str | None = None) -> Any:
    from api.container import build_services
    from api.ops.bootstrap import initialise
    from api.settings import Settings

    settings = Settings(
        data_dir=data_dir,
        key_passphrase="bench",  # type: ignore[arg-type]
        public_base_url="https://licence.example.gov.cn",
        database_url=database_url,
    )
    services = build_services(settings)
    initialise(services, with_demo=True)
    return services


def issue_request(services: Any, n: int = 0) -> Any:
    from api.ops import demo

    return demo.issue_request(demo.SAMPLE_LICENCES[0], china_today(services.clock.now()), "bench")


def bb_issuance(services: Any) -> Any:
    """The product's issuance with ``long_term=None``: PAdES B-B (no timestamp, no LTV)."""
    from licences.issuance import IssuanceService

    live = services.issuance
    return IssuanceService(
        engine=live._engine,
        catalogue=live._catalogue,
        seals=live._seals,
        audit=live._audit,
        clock=live._clock,
        fonts=live._fonts,
        public_base_url=live._base_url,
        qr_codes=live._qr_codes,
        long_term=None,
    )


@dataclass
class Captured:
    pdf: bytes
    box: tuple[float, float, float, float]
    image_png: bytes
    reason: str
    location: str
    name: str
    key_label: str
    chain_der: list[bytes]


SealStep = Callable[..., bytes]  # seals.apply.apply_seal: (request, signer, evidence) -> PDF


@contextmanager
def seal_step_replaced(make: Callable[[SealStep], SealStep]) -> Iterator[None]:
    """Inside the block, ``seals.sealing`` (the one path from a rendered page to a sealed one)
    seals through ``make(original)``: a spy or a timer around the real seal step."""
    import seals.sealing

    table = vars(seals.sealing)  # the module's own name, which seal_rendered looks up
    original: SealStep = table["apply_seal"]
    table["apply_seal"] = make(original)
    try:
        yield
    finally:
        table["apply_seal"] = original


def capture_page(services: Any, issuance: Any) -> Captured:
    """Issue once and keep the rendered page handed to the seal step (the same input PDF)."""
    seen: dict[str, Any] = {}

    def spying(original: SealStep) -> SealStep:
        def spy(request: Any, signer: Any, evidence: Any = None) -> bytes:
            seen["request"] = request
            seen["signer"] = signer
            return original(request, signer, evidence)

        return spy

    with seal_step_replaced(spying):
        issuance.issue(issue_request(services))
    request, signer = seen["request"], seen["signer"]
    certs = [signer.signing_cert, *signer.cert_registry]
    chain = [c.dump() for c in certs]
    return Captured(
        request.pdf,
        request.box,
        request.image_png,
        request.reason,
        request.location,
        request.name,
        signer._ref.label if hasattr(signer, "_ref") else "",
        chain,
    )


def seal_ref(services: Any) -> Any:
    from core.db import reading

    department = issue_request(services).department_code
    with reading(services.engine) as session:
        context = services.seals.seal_for_issuance(session, department)
    return services.seals.signer(context, None)._ref
