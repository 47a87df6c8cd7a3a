"""The one path from a PDF the service rendered to a sealed one.

Issuance and the purpose-stamped copy (加注件) seal the same way: the department's seal
through its key store, and, when long-term sealing is on, this domain's timestamp and
revocation data embedded (B-LTA). Keeping it in one place means a change to the seal's profile
reaches every document the service seals.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from core.db import reading
from keys.audit import KeyUseRecorder
from seals.apply import SealRequest, apply_seal
from seals.issuing_seal import SealContext
from seals.ltv import LongTermSealing
from seals.registry import SealRegistry

Box = tuple[float, float, float, float]


def seal_rendered(
    *,
    engine: Engine,
    seals: SealRegistry,
    long_term: LongTermSealing | None,
    context: SealContext,
    pdf: bytes,
    box: Box,
    reason: str,
) -> tuple[bytes, KeyUseRecorder]:
    """The sealed bytes, and the key uses to audit in the transaction that stores them."""
    recorder = KeyUseRecorder()
    signer = seals.signer(context, recorder)
    evidence = None
    if long_term is not None:
        # Timestamps and revocation data come from this domain, in-process (seals.ltv).
        with reading(engine) as session:
            evidence = long_term.evidence(
                session, [context.certificate_der, *context.chain_der], recorder
            )
    sealed = apply_seal(
        SealRequest(
            pdf=pdf,
            box=box,
            image_png=context.seal.image_png,
            reason=reason,
            location=context.department.name,
            name=context.seal.name,
        ),
        signer,
        evidence,
    )
    return sealed, recorder
