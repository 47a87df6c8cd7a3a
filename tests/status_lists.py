"""Status lists as tests need them: the format of ``docs/status-list.md`` written out here (never
read back from the publisher), signed by the domain's own credential key or by a key a test
made, with any member changed."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from api.container import Services
from licences.bitstring import MIN_ENTRIES, EntryStatus, build, encode
from trust.jose import jwk_of, sign_compact

HEADER = {"typ": "vc+jwt", "cty": "vc"}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bits(entries: Iterable[tuple[int, EntryStatus]] = (), length: int = MIN_ENTRIES) -> str:
    """``encodedList`` of a list of ``length`` entries, all valid but ``entries``."""
    return encode(build(entries, length))


def credential(
    base: str, encoded: str, valid_from: datetime, valid_until: datetime, **changes: Any
) -> dict[str, Any]:
    """The BitstringStatusListCredential of the domain at ``base``; ``changes`` replace top-level
    members, ``subject`` replaces members of ``credentialSubject``."""
    subject = {
        "id": f"{base}/pki/status-list#list",
        "type": "BitstringStatusList",
        "statusPurpose": "message",
        "encodedList": encoded,
        "ttl": 60000,
        **changes.pop("subject", {}),
    }
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": f"{base}/pki/status-list",
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": {"id": base, "name": "示范省电子证照信任域"},
        "validFrom": iso(valid_from),
        "validUntil": iso(valid_until),
        "credentialSubject": subject,
        **changes,
    }


def payload(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def signed_by_domain(
    services: Services, body: dict[str, Any], header: dict[str, Any] | None = None
) -> str:
    """Signed by the domain's credential key, the one its trust list publishes."""
    return services.credential_keys.sign(
        HEADER if header is None else header, payload(body), purpose="test", listener=None
    )


def signed_by(
    key: ec.EllipticCurvePrivateKey, body: dict[str, Any], header: dict[str, Any] | None = None
) -> str:
    """Signed by ``key``, under its own thumbprint as ``kid``."""
    kid = jwk_of(key.public_key())["kid"]
    return sign_compact(
        HEADER if header is None else header,
        payload(body),
        kid,
        lambda digest: key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))),
    )
