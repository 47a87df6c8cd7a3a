"""Hostile and genuine inputs for the browser's offline verifier (api/pages/static/offline), made
here by the Python side with keys of the test's own and each with its expected answer.

Everything is written out from the formats (docs/status-list.md, licences.payload's layout) with
cbor2, cryptography and the bitstring encoder, never read back from the publisher, so the
browser reader is held to the formats rather than to what the server happens to emit. Attacks
come first: an altered index, a forged signature, a non-canonical spelling a second decoder might
read differently, a status list that is another's, stale, forged or a GZIP bomb.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from licences.bitstring import MAX_ENTRIES, MIN_ENTRIES, EntryStatus, build, encode
from licences.identifiers import LicenceIdentifier, make_uscc, organisation_code_check
from licences.payload import Claims, PayloadType, key_id, sign
from trust.jose import b64url, jwk_of, sign_compact

BASE = "https://licence.example.gov.cn"
# 00:30 on 7 December in Beijing, still 6 December in UTC: the China date decides expiry.
NOW = datetime(2026, 12, 6, 16, 30, tzinfo=UTC)
TODAY = date(2026, 12, 7)
EPOCH = date(1970, 1, 1)
VALID, REVOKED, SUSPENDED, SUPERSEDED = 10, 7, 8, 9  # entries across a byte boundary


def _identifier() -> str:
    org = "MA2Y3K4L"
    issuer = make_uscc("91350100" + org + organisation_code_check(org))
    return str(LicenceIdentifier(issuer + "001", issuer, "B7Q2X9", "001"))


IDENTIFIER = _identifier()


def _signer(key: ec.EllipticCurvePrivateKey) -> Callable[[bytes], bytes]:
    return lambda digest: key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def _raw(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _cose(
    key: ec.EllipticCurvePrivateKey,
    payload: bytes,
    *,
    protected: bytes | None = None,
    tag: int = 18,
    trailing: bytes = b"",
) -> str:
    """A COSE_Sign1 over bytes spelled by hand, genuinely signed: what only a decoder's own
    strictness can refuse."""
    protected = protected or cbor2.dumps({1: -7, 4: key_id(key.public_key())})
    signature = _raw(key, cbor2.dumps(["Signature1", protected, b"", payload]))
    return _b32(cbor2.dumps(cbor2.CBORTag(tag, [protected, {}, payload, signature])) + trailing)


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    indication: str
    sub: str | None
    trust: str | None = "good"
    status: str | None = "good"
    now: datetime = NOW
    reason: str | None = None  # a fragment of the message shown
    shows: dict[str, Any] | None = None  # the signed claims shown; None: nothing shown
    as_of: bool = False  # whether the answer is "as of" the status list

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "trust": self.trust,
            "status": self.status,
            "now": self.now.isoformat(),
        }


@dataclass
class Vectors:
    trust: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    cases: list[Case] = field(default_factory=list)


class _Keys:
    def __init__(self) -> None:
        self.qr = ec.generate_private_key(ec.SECP256R1())
        self.credential = ec.generate_private_key(ec.SECP256R1())
        self.attacker = ec.generate_private_key(ec.SECP256R1())
        self.kid = key_id(self.qr.public_key())

    def code(self, **changes: Any) -> str:
        claims = Claims(
            type=PayloadType.LICENCE,
            identifier=IDENTIFIER,
            record_digest=bytes(range(16)),
            valid_until=TODAY,
            issued_at=NOW - timedelta(days=30),
            status_index=VALID,
        )
        return sign(replace(claims, **changes), self.kid, _signer(self.qr))

    def trust_list(self, **changes: Any) -> str:
        pem = self.qr.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        jwk = jwk_of(self.credential.public_key())
        document = {
            "format": "elicence-trust-list/1",
            "next_update": (NOW + timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "domain": {"base_url": BASE},
            "qr_keys": [{"kid": self.kid.hex(), "alg": "ES256", "public_key_pem": pem.decode()}],
            "credential_keys": [{"kid": jwk["kid"], "alg": "ES256", "jwk": jwk}],
            "status_list": {"url": f"{BASE}/pki/status-list", "media_type": "application/vc+jwt"},
        }
        document.update(changes)
        return json.dumps({k: v for k, v in document.items() if v is not None})

    def status_list(
        self,
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        header: dict[str, Any] | None = None,
        encoded: str | None = None,
        valid_from: datetime = NOW - timedelta(hours=1),
        lifetime: timedelta = timedelta(hours=48),
        **changes: Any,
    ) -> str:
        entries = [
            (REVOKED, EntryStatus.REVOKED),
            (SUSPENDED, EntryStatus.SUSPENDED),
            (SUPERSEDED, EntryStatus.SUPERSEDED),
        ]
        body = {
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "id": f"{BASE}/pki/status-list",
            "type": ["VerifiableCredential", "BitstringStatusListCredential"],
            "issuer": {"id": BASE, "name": "示范省电子证照信任域"},
            "validFrom": valid_from.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validUntil": (valid_from + lifetime).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "credentialSubject": {
                "id": f"{BASE}/pki/status-list#list",
                "type": "BitstringStatusList",
                "statusPurpose": "message",
                "encodedList": encoded or encode(build(entries, MIN_ENTRIES)),
                "ttl": 60000,
            },
            **changes,
        }
        signer = key or self.credential
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return sign_compact(
            header or {"typ": "vc+jwt", "cty": "vc"},
            payload,
            jwk_of(signer.public_key())["kid"],
            _signer(signer),
        )


def _unb32(code: str) -> bytes:
    return base64.b32decode(code + "=" * (-len(code) % 8))


def _flip_last_signature_byte(code: str) -> str:
    """One byte of the signature changed, re-encoded: the signature ends the message."""
    data = bytearray(_unb32(code))
    data[-1] ^= 0x01
    return _b32(bytes(data))


def _with_index(code: str, index: int) -> str:
    """The payload's status index changed, the signature kept: a holder's altered code."""
    protected, unprotected, payload, signature = cbor2.loads(_unb32(code)).value
    claims = cbor2.loads(payload)
    claims[9] = index
    return _b32(
        cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(claims), signature]))
    )


def _claims_map(code: str) -> dict[int, Any]:
    return dict(cbor2.loads(cbor2.loads(_unb32(code)).value[2]))


def _noncanonical_base32(code: str) -> str:
    """The same bytes spelled with unused low bits set in the last character."""
    spare = 5 * len(code) % 8
    assert 0 < spare < 5, "pick a code whose length leaves spare bits"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return code[:-1] + alphabet[alphabet.index(code[-1]) | 1]


def _trust_lists(keys: _Keys) -> dict[str, str]:
    other = dict(json.loads(keys.trust_list())["qr_keys"][0], kid="00" * 8)
    return {
        "good": keys.trust_list(),
        "stale": keys.trust_list(
            next_update=(NOW - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        ),
        "no_next_update": keys.trust_list(next_update=None),
        "kid_mismatch": keys.trust_list(qr_keys=[other]),
        "no_credential_keys": keys.trust_list(credential_keys=[]),
    }


def _status_lists(keys: _Keys) -> dict[str, str]:
    good = keys.status_list()
    cleared = keys.status_list(encoded=encode(build([], MIN_ENTRIES))).split(".")
    subject = json.loads(base64.urlsafe_b64decode(good.split(".")[1] + "=="))["credentialSubject"]
    kid = jwk_of(keys.credential.public_key())["kid"]
    unsigned = b64url(json.dumps({"alg": "none", "typ": "vc+jwt", "kid": kid}).encode())
    return {
        "good": good,
        # A revoked licence's entry cleared, the genuine signature kept.
        "forged": f"{cleared[0]}.{cleared[1]}.{good.split('.')[2]}",
        "foreign_key": keys.status_list(key=keys.attacker),
        "wrong_typ": keys.status_list(header={"typ": "JWT"}),
        "wrong_id": keys.status_list(id="https://other.example/pki/status-list"),
        "wrong_purpose": keys.status_list(
            credentialSubject={**subject, "statusPurpose": "revocation"}
        ),
        "alg_none": f"{unsigned}.{good.split('.')[1]}.",
        "bomb": keys.status_list(encoded=encode(bytes(MAX_ENTRIES // 4 + 1))),
        "short": keys.status_list(encoded=encode(bytes(MIN_ENTRIES // 4 - 1))),
        "not_gzip": keys.status_list(encoded="u" + b64url(b"not gzip at all")),
        "garbage": "not a status list",
        "stale": keys.status_list(valid_from=NOW - timedelta(hours=49)),
        "future": keys.status_list(valid_from=NOW + timedelta(hours=1)),
    }


def _case(name: str, text: str, answer: str, **options: Any) -> Case:
    """``answer`` is "INDICATION" or "INDICATION/SUB_INDICATION"."""
    indication, _, sub = answer.partition("/")
    return Case(name, text, indication, sub or None, **options)


def _hand_spelled(keys: _Keys) -> list[Case]:
    """Genuinely signed, but spelled in ways cbor2 never writes: a strict reader refuses them,
    so no second reading of the same bytes can disagree with the first."""
    claims = _claims_map(keys.code())
    body = cbor2.dumps({k: v for k, v in claims.items() if k != 9})
    count = len(claims) - 1  # entries of ``body``
    payload = cbor2.dumps(claims)
    other_alg = cbor2.dumps({1: -35, 4: keys.kid})
    spelled = {
        "status index as a non-minimal integer": _cose(
            keys.qr, bytes([0xA0 + count + 1]) + body[1:] + b"\x09\x1a\x00\x00\x00\x0a"
        ),
        "a claim given twice": _cose(
            keys.qr, bytes([0xA0 + count + 2]) + body[1:] + b"\x09\x0a\x09\x07"
        ),
        "an indefinite-length map": _cose(keys.qr, b"\xbf" + payload[1:] + b"\xff"),
        "trailing bytes after the message": _cose(keys.qr, payload, trailing=b"\x00"),
        "another algorithm in the protected header": _cose(keys.qr, payload, protected=other_alg),
        "a COSE_Sign (tag 98), not a COSE_Sign1": _cose(keys.qr, payload, tag=98),
    }
    return [_case(name, text, "FAILED/FORMAT_FAILURE") for name, text in spelled.items()]


BAD_STATUS_LISTS = (
    "forged", "foreign_key", "wrong_typ", "wrong_id", "wrong_purpose", "alg_none", "bomb",
    "short", "not_gzip", "garbage",
)  # fmt: skip


def vectors() -> Vectors:
    keys = _Keys()
    qr = _signer(keys.qr)
    genuine = keys.code()
    revoked = keys.code(status_index=REVOKED)
    shown = {"identifier": IDENTIFIER, "validUntil": TODAY.isoformat()}
    odd = next(
        code
        for code in (keys.code(status_index=i) for i in (VALID, 24, 256, 65536))
        if 0 < 5 * len(code) % 8 < 5
    )
    wrong_check = IDENTIFIER[:-1] + ("A" if IDENTIFIER[-1] != "A" else "B")
    licence = Claims(PayloadType.LICENCE, IDENTIFIER, bytes(16), TODAY, NOW, status_index=VALID)
    attacker = _signer(keys.attacker)
    minutes = timedelta(minutes=1)

    def presented(start: int, end: int) -> str:
        claims = replace(licence, type=PayloadType.PRESENTATION, nonce=b"n" * 8)
        return sign(
            replace(claims, issued_at=NOW + start * minutes, expires_at=NOW + end * minutes),
            keys.kid,
            qr,
        )

    listed = {"shows": shown, "as_of": True}
    cases = [
        # A holder's or forger's attempts: the signature decides, nothing of the payload shows.
        _case("a revoked code's index altered to a valid entry", _with_index(revoked, VALID),
              "FAILED/SIG_CRYPTO_FAILURE", reason="伪造"),
        _case("one signature byte changed", _flip_last_signature_byte(genuine),
              "FAILED/SIG_CRYPTO_FAILURE"),
        _case("signed by another key under the domain's key id", sign(licence, keys.kid, attacker),
              "FAILED/SIG_CRYPTO_FAILURE"),
        _case("signed by a key the trust list does not hold",
              sign(licence, key_id(keys.attacker.public_key()), attacker),
              "INDETERMINATE/NO_SIGNING_CERTIFICATE_FOUND"),
        _case("base32 with unused bits set", _noncanonical_base32(odd), "FAILED/FORMAT_FAILURE"),
        _case("an identifier with a wrong check character", keys.code(identifier=wrong_check),
              "FAILED/FORMAT_FAILURE"),
        _case("a copy id in upper case", keys.code(type=PayloadType.COPY, copy_id="ABCDEF0123456789"),
              "FAILED/FORMAT_FAILURE"),
        *_hand_spelled(keys),
        _case("a URL on another path", f"https://evil.example/x/{genuine}", "FAILED/UNKNOWN_CODE"),
        _case("text far too long", "A" * 2000, "FAILED/UNKNOWN_CODE"),
        _case("a random code of before signed codes", "ABCDEFGHIJKLMNOPQRSTUVWX",
              "INDETERMINATE/TRY_LATER"),
        # Status lists that are not the domain's: never PASSED, a revoked licence included.
        *[_case(f"status list: {name}", revoked, "INDETERMINATE/NO_CHAIN_FOUND", status=name,
                shows=shown) for name in BAD_STATUS_LISTS],
        _case("status list out of date", genuine, "INDETERMINATE/TRY_LATER", status="stale", **listed),
        _case("status list dated in the future", genuine, "INDETERMINATE/TRY_LATER",
              status="future", **listed),
        _case("no status list on the device", genuine, "INDETERMINATE/TRY_LATER", status=None,
              shows=shown),
        _case("a code without a status index", keys.code(status_index=None),
              "INDETERMINATE/TRY_LATER", shows=shown),
        _case("an index past the list", keys.code(status_index=MIN_ENTRIES),
              "INDETERMINATE/TRY_LATER", **listed),
        # Trust lists that cannot anchor anything.
        _case("no trust list on the device", genuine, "INDETERMINATE/NO_CHAIN_FOUND", trust=None),
        _case("trust list out of date", genuine, "INDETERMINATE/TRY_LATER", trust="stale"),
        _case("trust list without next_update", genuine, "INDETERMINATE/TRY_LATER",
              trust="no_next_update"),
        _case("trust list naming a key by another id", genuine, "INDETERMINATE/NO_CHAIN_FOUND",
              trust="kid_mismatch"),
        _case("trust list without credential keys", genuine, "INDETERMINATE/NO_CHAIN_FOUND",
              trust="no_credential_keys", shows=shown),
        # What the status list and the dates say.
        _case("revoked", revoked, "FAILED/REVOKED", reason="吊销", **listed),
        _case("suspended", keys.code(status_index=SUSPENDED), "FAILED/SUSPENDED", reason="暂停",
              **listed),
        _case("superseded", keys.code(status_index=SUPERSEDED), "FAILED/SUPERSEDED",
              reason="变更", **listed),
        _case("expired yesterday in China, still today in UTC",
              keys.code(valid_until=TODAY - timedelta(days=1)), "FAILED/EXPIRED", reason="过期",
              shows={**shown, "validUntil": "2026-12-06"}),
        _case("presentation expired", presented(-10, -5), "FAILED/EXPIRED",
              reason="出示码已过期", shows=shown),
        _case("presentation dated in the future", presented(5, 10),
              "INDETERMINATE/NOT_YET_VALID", shows=shown),
        # Genuine and valid.
        _case("genuine, last day of validity in China", genuine, "PASSED", reason="真实有效",
              **listed),
        _case("genuine, no end date", keys.code(valid_until=None), "PASSED",
              shows={**shown, "validUntil": None}, as_of=True),
        _case("the URL as printed", f"HTTPS://LICENCE.EXAMPLE.GOV.CN/V/{genuine}", "PASSED",
              **listed),
        _case("the URL in lower case", f"{BASE}/v/{genuine.lower()}", "PASSED", **listed),
        _case("genuine stamped copy", keys.code(type=PayloadType.COPY, copy_id="0123456789abcdef"),
              "PASSED", shows={**shown, "copyId": "0123456789abcdef"}, as_of=True),
        _case("genuine presentation, no status list needed", presented(-1, 4), "PASSED",
              status=None, shows=shown),
    ]  # fmt: skip
    return Vectors(_trust_lists(keys), _status_lists(keys), cases)
