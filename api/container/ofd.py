"""The national form's issuance side: OFD licences sealed with the domain's SM2 seals.

Built only where the key store holds SM2 keys (the soft store; ``trust.sm2_pki``): elsewhere
issuance has no OFD and a type set to issue OFD is refused in words (``licences.ofd_issue``).
"""

from __future__ import annotations

from sqlmodel import Session

from api.container.foundation import Foundation
from licences.ofd_issue import OfdIssuance
from seals.issuing_seal import SealContext
from seals.ofd_sealing import OfdSealer, Sm2SealKeys, store_signer
from trust.sm2_pki import Sm2Pki


class PkiSeals:
    """``licences.ofd_issue.Sm2Seals`` from the domain's SM2 PKI: the seal's SM2 certificate
    follows its current ECDSA one and is issued on its first OFD use."""

    def __init__(self, pki: Sm2Pki) -> None:
        self._pki = pki

    def sm2_seal_keys(self, session: Session, context: SealContext, actor: str) -> Sm2SealKeys:
        material = self._pki.seal_material(
            session, actor=actor, seal_certificate_serial=context.seal.certificate_serial
        )
        return Sm2SealKeys(
            seal_code=context.seal.code,
            seal_name=context.seal.name,
            picture_png=context.seal.image_png,
            key=material.key_ref,
            certificate_der=material.certificate_der,
            maker_key=material.maker_key_ref,
            maker_certificate_der=material.maker_certificate_der,
        )


def build_ofd(f: Foundation) -> OfdIssuance | None:
    pki = f.trust.sm2
    if not pki.available:
        return None
    return OfdIssuance(
        engine=f.engine,
        sealer=OfdSealer(store_signer(f.keystore)),
        sm2=PkiSeals(pki),
        tsa=f.trust_services.tsa,
        regular_font=f.fonts.regular,
        bold_font=f.fonts.bold,
    )
