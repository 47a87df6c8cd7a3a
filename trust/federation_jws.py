"""Documents a domain signs for other domains with its trust-list key, and their check.

A licence-status answer must be trusted by a domain that knows only our pinned trust-list
signer, so it is signed exactly like the trust list (``docs/trust-list.md``: detached JWS,
flattened JSON, canonical JSON payload without ``signature``, ES256 r‖s or RS256), with its own
``typ`` in the protected header: a status answer can never be passed off as a trust list, nor
the other way round, because the verifier checks ``typ``.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from trust.trustlist import b64url_decode, fingerprint, sign_document, signing_input

__all__ = ["STATUS_FORMAT", "STATUS_TYPE", "sign_document", "verify_document"]

STATUS_TYPE = "application/vnd.elicence.licence-status+json"
STATUS_FORMAT = "elicence-licence-status/1"


def verify_document(document: Any, signer: x509.Certificate, *, typ: str) -> bool:
    """Whether ``document`` was signed by ``signer`` as a document of type ``typ``."""
    try:
        signature = document["signature"]
        header = json.loads(b64url_decode(signature["protected"]))
        raw = b64url_decode(signature["signature"])
        data = signing_input(document, signature["protected"])
    except (TypeError, KeyError, ValueError, AttributeError):
        return False
    if not isinstance(header, dict) or header.get("typ") != typ:
        return False
    if header.get("kid") != fingerprint(signer):
        return False
    public = signer.public_key()
    try:
        if header.get("alg") == "ES256" and isinstance(public, ec.EllipticCurvePublicKey):
            if len(raw) != 64:
                return False
            der = utils.encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            public.verify(der, data, ec.ECDSA(hashes.SHA256()))
        elif header.get("alg") == "RS256" and isinstance(public, rsa.RSAPublicKey):
            public.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except Exception:  # InvalidSignature and friends: not genuine
        return False
    return True
