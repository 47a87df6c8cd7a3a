"""The RFC 3161 timestamp of an OFD seal: this domain's TSA, over the SM2 signature's bytes.

The SES_Signature carries the token as ``timeStamp``; its message imprint is the SHA-256 of the
signature BIT STRING's content octets (the contract with issuance). The token is a CMS signature
of this domain's ECDSA TSA, so it is checked exactly as the PDF path checks a seal's timestamp
(``verify.signature``): pyHanko's TST validation against this domain's ECDSA roots, now. Its
genTime is the proven sealing time against which the SM2 chain and revocation are decided.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime

from asn1crypto import cms
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

from trust.parsed import certificate
from verify.signature import TimestampFacts, TrustAnchors, timestamp_facts_of


def timestamp_facts(
    token_der: bytes, signature: bytes, anchors: TrustAnchors, moment: datetime
) -> TimestampFacts | str:
    """The token's facts, or why it could not be read (a string)."""
    try:
        info = cms.ContentInfo.load(token_der, strict=True)
        if info["content_type"].native != "signed_data":
            return "the timestamp is not a CMS SignedData"
        signed = info["content"]
    except (ValueError, TypeError, KeyError) as exc:
        return f"the timestamp token is unreadable: {type(exc).__name__}"

    def imprint(algorithm: str) -> bytes:
        return hashlib.new(algorithm, signature).digest()

    context = ValidationContext(
        trust_roots=[certificate(der) for der in anchors.roots],
        other_certs=[certificate(der) for der in anchors.intermediates],
        moment=moment,
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    try:
        status = TimestampSignatureStatus(
            **asyncio.run(validate_tst_signed_data(signed, context, imprint))
        )
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:
        return f"the timestamp token does not validate: {type(exc).__name__}"
    return timestamp_facts_of(status)
