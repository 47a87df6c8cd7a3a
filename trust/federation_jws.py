"""Documents a domain signs for other domains with its trust-list key, and their check.

A licence-status answer must be trusted by a domain that knows only our pinned trust-list
signer, so it is signed exactly like the trust list (``docs/trust-list.md``: detached JWS,
flattened JSON, canonical JSON payload without ``signature``, ES256 r‖s or RS256), with its own
``typ`` in the protected header: a status answer can never be passed off as a trust list, nor
the other way round, because the verifier checks ``typ``.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509

from trust.trustlist import sign_document, verify_jws

__all__ = ["STATUS_FORMAT", "STATUS_TYPE", "sign_document", "verify_document"]

STATUS_TYPE = "application/vnd.elicence.licence-status+json"
STATUS_FORMAT = "elicence-licence-status/1"


def verify_document(document: Any, signer: x509.Certificate, *, typ: str) -> bool:
    """Whether ``document`` was signed by ``signer`` as a document of type ``typ``: the trust
    list's own check (``trust.trustlist.verify_jws``: ``typ``, ``kid``, no ``crit``, the
    algorithm matching the key, the exact signature length)."""
    return verify_jws(document, signer, typ=typ)
