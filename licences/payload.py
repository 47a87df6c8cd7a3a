"""The compact signed payload carried by QR codes: COSE_Sign1 (RFC 9052) with ES256, in base32.

Why COSE and not a JWT: the QR code is printed at 33 mm and must scan from a 150 dpi copy, so
every byte counts. CBOR with small integer keys and a raw 64-byte r||s signature keeps a printed
licence's payload near 200 bytes; base32 (RFC 4648, upper case, no padding) keeps the whole URL
in QR alphanumeric mode, 5.5 bits a character.

Three payload types share one layout (integer keys, see :class:`Key`):

* a **licence** payload, printed on the licence before it is sealed. It cannot carry the SHA-256
  of the sealed PDF (that exists only after sealing, and the QR is part of what is sealed), so it
  carries the SHA-256 of the canonical licence *record* (:func:`record_digest`), truncated to
  16 bytes. Online verification recomputes that digest from the repository, which also detects
  a record edited in the database after issuance.
* a **presentation** payload, minted for a citizen to show on a phone for a few minutes; it
  carries ``presented_at`` and ``expires_at`` so a screenshot cannot be replayed later.
* a **copy** payload, printed on a purpose-stamped copy (加注件): its licence's claims (digest,
  validity, status index: a copy's status is its licence's) and the copy's id.

A licence or copy payload carries the licence's ``status_index`` in the domain's signed status
list (``licences.bitstring``), which is what lets a verifier without a network say PASSED.

The signing key never leaves the key store: the SHA-256 of the COSE ``Sig_structure`` is signed
with ``KeyStore.sign_digest`` and the DER ECDSA signature converted to r||s.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum
from functools import lru_cache
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from core.errors import ElicenceError
from licences.identifiers import MAX_IDENTIFIER, LicenceIdentifier

ALG_ES256 = -7  # COSE algorithm identifier (RFC 9053)
HEADER_ALG, HEADER_KID = 1, 4
COSE_SIGN1_TAG = 18
KID_BYTES = 8
DIGEST_BYTES = 16
MAX_TEXT = 1024  # characters of base32 accepted before any decoding is attempted
EPOCH = date(1970, 1, 1)
MAX_STATUS_INDEX = 1 << 32  # far past any list a domain publishes; bounds the CBOR integer


class PayloadError(ValueError):
    """The text is not a well-formed payload of this service (before any signature check)."""


class BadSignature(Exception):
    """The payload is well formed but its signature does not verify under the named key."""


class PayloadType(IntEnum):
    LICENCE = 1
    PRESENTATION = 2
    COPY = 3  # a purpose-stamped copy (加注件): the licence's claims and the copy's id


class Key(IntEnum):
    """CBOR map keys of the payload; small integers encode in one byte."""

    TYPE = 0
    IDENTIFIER = 1  # the full GB/T 36904 identifier; issuer code and version are its arcs
    RECORD_DIGEST = 3  # keys 2 and 4 (version, issuer) are reserved, never sent
    VALID_UNTIL = 5  # days since 1970-01-01; absent when the licence has no end date
    ISSUED_AT = 6  # seconds since the epoch: issuance, or the moment of presentation
    EXPIRES_AT = 7  # presentation only
    NONCE = 8  # presentation only
    STATUS_INDEX = 9  # the licence's entry in the domain's status list (licences.status_index)
    COPY_ID = 10  # copy only: the stamped copy's id (16 hex digits)


@dataclass(frozen=True)
class Claims:
    """What a payload says. The issuer code and version are arcs of the GB/T 36904 identifier,
    so they are read from it rather than repeated in the QR code (22 bytes saved)."""

    type: PayloadType
    identifier: str
    record_digest: bytes
    valid_until: date | None
    issued_at: datetime
    expires_at: datetime | None = None
    nonce: bytes | None = None
    # The licence's entry in the signed status list: what lets an offline verifier say PASSED.
    # Absent from codes printed before status lists existed (they stay INDETERMINATE offline).
    status_index: int | None = None
    copy_id: str | None = None  # a stamped copy's id; its status is its licence's

    @property
    def issuer_code(self) -> str:
        return LicenceIdentifier.parse(self.identifier).issuer_code

    @property
    def version(self) -> int:
        return int(LicenceIdentifier.parse(self.identifier).version)

    def to_map(self) -> dict[int, Any]:
        data: dict[int, Any] = {
            Key.TYPE: int(self.type),
            Key.IDENTIFIER: self.identifier,
            Key.RECORD_DIGEST: self.record_digest,
            Key.ISSUED_AT: int(self.issued_at.timestamp()),
        }
        if self.valid_until is not None:
            data[Key.VALID_UNTIL] = (self.valid_until - EPOCH).days
        if self.expires_at is not None:
            data[Key.EXPIRES_AT] = int(self.expires_at.timestamp())
        if self.nonce is not None:
            data[Key.NONCE] = self.nonce
        if self.status_index is not None:
            data[Key.STATUS_INDEX] = self.status_index
        if self.copy_id is not None:
            data[Key.COPY_ID] = self.copy_id
        return {int(k): v for k, v in data.items()}


@dataclass(frozen=True)
class Signed:
    """A decoded COSE_Sign1 whose signature has not been checked yet."""

    kid: bytes
    claims: Claims
    to_be_signed: bytes
    signature: bytes  # raw r||s


def record_digest(
    *,
    identifier: str,
    type_code: str,
    issuer_code: str,
    holder_id_type: str,
    holder_id: str,
    fields: Mapping[str, Any],
    valid_from: date,
    valid_until: date | None,
    photo_sha256: str | None = None,
) -> bytes:
    """SHA-256 (first 16 bytes) of the canonical licence record: what the QR vouches for.

    Only data fixed for the life of a licence version goes in (a change makes a new version); the
    holder's name is left out because it is kept once per holder and may be corrected. The
    holder's photo (``licences.photos``) joins as its SHA-256 only when the licence has one, so
    every licence without a photo keeps the digest its printed code already carries.
    """
    photo = [{"photo": photo_sha256}] if photo_sha256 is not None else []
    canonical = json.dumps(
        [
            "elicence-record-1",
            identifier,
            type_code,
            issuer_code,
            holder_id_type,
            holder_id,
            dict(fields),
            valid_from.isoformat(),
            valid_until.isoformat() if valid_until else None,
            *photo,
        ],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).digest()[:DIGEST_BYTES]


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The first 8 bytes of the SHA-256 of the SubjectPublicKeyInfo: short, and stable."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()[:KID_BYTES]


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def sign(claims: Claims, kid: bytes, sign_digest: Callable[[bytes], bytes]) -> str:
    """Encode and sign ``claims``; ``sign_digest`` signs a SHA-256 digest, returning DER ECDSA."""
    protected = cbor2.dumps({HEADER_ALG: ALG_ES256, HEADER_KID: kid})
    payload = cbor2.dumps(claims.to_map())
    digest = hashlib.sha256(_sig_structure(protected, payload)).digest()
    r, s = decode_dss_signature(sign_digest(digest))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    message = cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, raw]))
    return base64.b32encode(message).decode("ascii").rstrip("=")


def verify_signature(signed: Signed, public_key: ec.EllipticCurvePublicKey) -> None:
    r = int.from_bytes(signed.signature[:32], "big")
    s = int.from_bytes(signed.signature[32:], "big")
    try:
        public_key.verify(
            encode_dss_signature(r, s), signed.to_be_signed, ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        raise BadSignature("signature does not verify") from None


def _loads(data: bytes) -> Any:
    """One CBOR item that must use every byte: trailing garbage is a malformed payload."""
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except Exception as exc:  # cbor2 raises several types on hostile input
        raise PayloadError(f"not CBOR: {type(exc).__name__}") from None
    if stream.tell() != len(data):
        raise PayloadError("trailing bytes after the CBOR item")
    return item


def _get(data: Mapping[Any, Any], key: Key, kind: type | tuple[type, ...]) -> Any:
    value = data.get(int(key))
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PayloadError(f"claim {key.name.lower()} missing or of the wrong type")
    return value


def _time(seconds: int) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadError("time out of range") from None


_BASE32 = re.compile("[A-Z2-7]+")
_COPY_ID = re.compile("[0-9a-f]{16}")
# RFC 4648 base32 digit values spelled as Python's base-32 digits (0-9, A-V), so ``int`` does
# the decoding in C: every scanned code is decoded, and ``base64.b32decode`` is pure Python.
_AS_BASE32HEX = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHIJKLMNOPQRSTUV")


def _from_base32(text: str) -> bytes:
    """Unpadded upper-case base32, with exactly one spelling per byte string: a length no byte
    count gives, or unused low bits set in the last character, is refused (what encoding the
    bytes again and comparing would refuse)."""
    if _BASE32.fullmatch(text) is None:
        raise PayloadError("not base32")
    size, spare = divmod(5 * len(text), 8)
    if spare >= 5:  # a last character that carries no bit of any byte
        raise PayloadError("not base32")
    value = int(text.translate(_AS_BASE32HEX), 32)
    if value & ((1 << spare) - 1):
        # Unused low bits in the last character: another spelling of the same bytes.
        raise PayloadError("not canonical base32")
    return (value >> spare).to_bytes(size, "big")


def _is_identifier(text: str) -> bool:
    """Whether ``text`` is a well-formed licence identifier (remembered: the same licences are
    scanned again and again, and the answer for a string never changes). Checked before the
    signature, so the cache only ever holds strings of an identifier's length."""
    return len(text) <= MAX_IDENTIFIER and _identifier_checked(text)


@lru_cache(maxsize=4096)
def _identifier_checked(text: str) -> bool:
    try:
        LicenceIdentifier.parse(text)
    except ElicenceError:
        return False
    return True


def decode(text: str) -> Signed:
    """Parse base32 text into a :class:`Signed` payload; raises PayloadError on any defect."""
    text = text.strip().upper()
    if not text or len(text) > MAX_TEXT:
        raise PayloadError("empty or too long")
    item = _loads(_from_base32(text))
    if not isinstance(item, cbor2.CBORTag) or item.tag != COSE_SIGN1_TAG:
        raise PayloadError("not a COSE_Sign1 message")
    parts = item.value
    if not isinstance(parts, list | tuple) or len(parts) != 4:
        raise PayloadError("COSE_Sign1 must have four parts")
    protected, _unprotected, payload, signature = parts
    if not all(isinstance(p, bytes) for p in (protected, payload, signature)):
        raise PayloadError("COSE_Sign1 parts have the wrong types")
    if len(signature) != 64:
        raise PayloadError("ES256 signature must be 64 bytes")
    header = _loads(protected)
    if not isinstance(header, Mapping) or header.get(HEADER_ALG) != ALG_ES256:
        raise PayloadError("algorithm must be ES256")
    kid = header.get(HEADER_KID)
    if not isinstance(kid, bytes) or not 1 <= len(kid) <= 32:
        raise PayloadError("kid missing")
    data = _loads(payload)
    if not isinstance(data, Mapping):
        raise PayloadError("payload must be a map")
    try:
        kind = PayloadType(_get(data, Key.TYPE, int))
    except ValueError:
        raise PayloadError("unknown payload type") from None
    digest = _get(data, Key.RECORD_DIGEST, bytes)
    identifier = _get(data, Key.IDENTIFIER, str)
    if len(digest) != DIGEST_BYTES:
        raise PayloadError("record digest of the wrong size")
    if not _is_identifier(identifier):
        raise PayloadError("not a GB/T 36904 licence identifier")
    valid_days = data.get(int(Key.VALID_UNTIL))
    if valid_days is not None and (not isinstance(valid_days, int) or abs(valid_days) > 10**6):
        raise PayloadError("valid_until out of range")
    status_index = data.get(int(Key.STATUS_INDEX))
    if status_index is not None and (
        not isinstance(status_index, int)
        or isinstance(status_index, bool)
        or not 0 <= status_index < MAX_STATUS_INDEX
    ):
        raise PayloadError("status index out of range")
    claims = Claims(
        type=kind,
        identifier=identifier,
        record_digest=digest,
        valid_until=EPOCH + timedelta(days=valid_days) if valid_days is not None else None,
        issued_at=_time(_get(data, Key.ISSUED_AT, int)),
        status_index=status_index,
    )
    if kind is PayloadType.COPY:
        copy_id = _get(data, Key.COPY_ID, str)
        if _COPY_ID.fullmatch(copy_id) is None:
            raise PayloadError("copy id must be 16 hexadecimal digits")
        claims = replace(claims, copy_id=copy_id)
    if kind is PayloadType.PRESENTATION:
        claims = replace(
            claims,
            expires_at=_time(_get(data, Key.EXPIRES_AT, int)),
            nonce=_get(data, Key.NONCE, bytes),
        )
    return Signed(kid, claims, _sig_structure(protected, payload), signature)
