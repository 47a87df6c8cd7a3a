"""RFC 3161 time-stamping authority.

A seal's signing time is only the sealer's word; a timestamp token from this TSA proves the
seal existed at ``genTime``. That proof is what lets a licence sealed before its seal was
revoked, or before its certificate expired, still verify later (ETSI EN 319 102-1 "proof of
existence"). The same :class:`TimeStampUnit` answers HTTP requests at ``/pki/tsa`` and the
in-process requests of sealing, so both make identical tokens.

Tokens are CMS SignedData over a TSTInfo, signed through the key store, with an ESS
signing-certificate-v2 attribute (RFC 5816) naming the TSA certificate. Requests the TSA cannot
honour get a ``rejection`` with the RFC 3161 failure bit, never a token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from sqlmodel import Session

from core.clock import Clock
from keys.store import HashAlgorithm, KeyAlgorithm, KeyRef, KeyStore, KeyUseListener
from trust.authority import TrustDomain
from trust.profiles import Role
from trust.services import TSA_NAME
from trust.tsa_der import GRANTED as _GRANTED
from trust.tsa_der import TokenParts as _TokenParts
from trust.tsa_der import tlv as _tlv

# Placeholder policy under the ITU-T "example" arc (2.999); a production domain replaces it
# with an OID from its own registered arc and publishes the policy text.
TSA_POLICY = "2.999.3161.1"
ACCURACY = timedelta(seconds=1)
DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
MAX_REQUEST = 16 * 1024


class TimeStampRejected(Exception):
    """A request the TSA refuses; ``failure`` is the RFC 3161 PKIFailureInfo bit name."""

    def __init__(self, failure: str, text: str) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text


def new_serial(now: datetime) -> int:
    """Unique without coordination: milliseconds since the epoch, then 64 random bits, so
    serials also sort by issue time when read by a person."""
    return (int(now.timestamp() * 1000) << 64) | secrets.randbits(64)


@dataclass(frozen=True)
class TimeStampUnit:
    """One TSA certificate and its key: what signs tokens now."""

    keystore: KeyStore
    clock: Clock
    key_ref: KeyRef
    certificate: asn1_x509.Certificate
    policy: str = TSA_POLICY
    _placeholders: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    _template: dict[str, _TokenParts] = field(default_factory=dict, compare=False, repr=False)

    # -- entry points ----------------------------------------------------------------------

    def respond(
        self, request: tsp.TimeStampReq, listener: KeyUseListener | None = None
    ) -> TimeStampResp:
        try:
            imprint, nonce, want_certs = self._check(request)
        except TimeStampRejected as rejected:
            return rejection(rejected.failure, rejected.text)
        token = self._token(imprint, nonce, want_certs, listener, dry_run=False)
        return TimeStampResp.load(_tlv(0x30, _GRANTED + token.dump()))  # type: ignore[no-any-return]

    def respond_der(self, request_der: bytes, listener: KeyUseListener | None = None) -> bytes:
        if len(request_der) > MAX_REQUEST:
            return bytes(rejection("bad_request", "request too large").dump())
        try:
            request = tsp.TimeStampReq.load(request_der, strict=True)
            request.native  # noqa: B018 - force a full parse, so bad DER is refused here
        except (ValueError, TypeError, OverflowError):
            return bytes(rejection("bad_request", "request is not a DER TimeStampReq").dump())
        return bytes(self.respond(request, listener).dump())

    def placeholder_token(self, md_algorithm: str) -> cms.ContentInfo:
        """A token of full size whose signature is zeros: pyHanko sizes the signature
        placeholder and learns the TSA certificate from it, and no key is used for that.
        Made once per hash algorithm: only its size and certificates matter."""
        cached = self._placeholders.get(md_algorithm)
        if cached is not None:
            return cms.ContentInfo.load(cached)
        imprint = tsp.MessageImprint(
            {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": md_algorithm}),
                "hashed_message": bytes(DIGEST_SIZES.get(md_algorithm, 64)),
            }
        )
        token = self._token(imprint, 2**63 - 1, True, None, dry_run=True)
        self._placeholders[md_algorithm] = token.dump()
        return token

    # -- request checks --------------------------------------------------------------------

    def _check(self, request: tsp.TimeStampReq) -> tuple[tsp.MessageImprint, int | None, bool]:
        try:
            version = request["version"].native
            imprint = request["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            digest = imprint["hashed_message"].native
            policy = request["req_policy"].native
            nonce = request["nonce"].native
            want_certs = bool(request["cert_req"].native)
            extensions = request["extensions"].native
        except (ValueError, TypeError, KeyError):
            raise TimeStampRejected("bad_request", "malformed TimeStampReq") from None
        if version != "v1":
            raise TimeStampRejected("bad_request", f"unsupported version {version}")
        if algorithm not in DIGEST_SIZES:
            raise TimeStampRejected(
                "bad_alg", f"hash algorithm {algorithm} not accepted; use SHA-256/384/512"
            )
        if imprint["hash_algorithm"]["parameters"].native is not None:
            raise TimeStampRejected("bad_alg", "hash algorithm parameters must be absent or NULL")
        if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZES[algorithm]:
            raise TimeStampRejected("bad_data_format", f"{algorithm} digest has the wrong length")
        if policy is not None and policy != self.policy:
            raise TimeStampRejected("unaccepted_policy", f"this TSA only uses policy {self.policy}")
        if extensions:
            raise TimeStampRejected("unaccepted_extensions", "no request extensions are supported")
        # RFC 3161 § 2.4.2: the token's imprint is the request's, byte for byte.
        return tsp.MessageImprint.load(imprint.dump()), nonce, want_certs

    # -- token -----------------------------------------------------------------------------

    def _token(
        self,
        imprint: tsp.MessageImprint,
        nonce: int | None,
        want_certs: bool,
        listener: KeyUseListener | None,
        *,
        dry_run: bool,
    ) -> cms.ContentInfo:
        """The token, assembled from DER: everything but the TSTInfo's serial, time, imprint
        and nonce, the signing time, the digest and the signature is the same for every token
        of this unit and encoded once (``_parts``). asn1crypto re-encoded the built structure
        at every level it was nested in, which cost ~8 ms a token, twice per seal; the bytes
        are the same as asn1crypto's (tests/test_tsa_token.py builds both)."""
        parts = self._parts()
        now = self.clock.now().replace(microsecond=0).astimezone(UTC)
        tst_info = parts.tst_info(imprint.dump(), new_serial(now), now, nonce)
        attrs_der = parts.signed_attributes(now, hashlib.sha256(tst_info).digest())
        signature = self._signature(attrs_der, listener, ec=parts.ec, dry_run=dry_run)
        return cms.ContentInfo.load(parts.content_info(tst_info, attrs_der, signature, want_certs))

    def _parts(self) -> _TokenParts:
        parts = self._template.get("parts")
        if parts is None:
            ec = self.keystore.algorithm(self.key_ref) is KeyAlgorithm.EC_P256
            parts = self._template["parts"] = _TokenParts.of(self.certificate, self.policy, ec)
        return parts

    def _signature(
        self, attrs_der: bytes, listener: KeyUseListener | None, *, ec: bool, dry_run: bool
    ) -> bytes:
        """The TSA key's signature over the signed attributes; a dry run (for sizing) signs
        nothing and returns zeros of a signature's length."""
        if dry_run:
            return bytes(72 if ec else 384)
        signature = self.keystore.sign_digest(
            self.key_ref, hashlib.sha256(attrs_der).digest(), HashAlgorithm.SHA256
        )
        if listener is not None:
            listener.key_used(self.key_ref, "tsa")
        return signature


class TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 TimeStampResp. asn1crypto's own class makes the token mandatory, but every
    refusal omits it, so this one declares it optional."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def rejection(failure: str, text: str) -> TimeStampResp:
    status = tsp.PKIStatusInfo(
        {"status": "rejection", "status_string": [text], "fail_info": tsp.PKIFailureInfo({failure})}
    )
    return TimeStampResp({"status": status})


class TimeStampAuthority:
    """Finds the TSA certificate in use now; the unit it returns signs the tokens."""

    def __init__(self, *, trust: TrustDomain, clock: Clock, policy: str = TSA_POLICY) -> None:
        self._trust = trust
        self._clock = clock
        self._policy = policy
        self._units: dict[str, TimeStampUnit] = {}

    @property
    def policy(self) -> str:
        return self._policy

    def unit(self, session: Session) -> TimeStampUnit:
        certificate, record = self._trust.service_certificate(session, Role.TSA, TSA_NAME)
        unit = self._units.get(record.serial)
        if unit is None:
            unit = self._units[record.serial] = TimeStampUnit(
                keystore=self._trust.keystore,
                clock=self._clock,
                key_ref=KeyRef.parse(record.key_ref),
                certificate=asn1_x509.Certificate.load(
                    certificate.public_bytes(serialization.Encoding.DER)
                ),
                policy=self._policy,
            )
        return unit
