"""Verification of a scanned QR code, online: the signed payload, then the repository.

A QR text is a URL ending in ``/V/<code>`` or the bare code. ``<code>`` is either

* a signed payload (COSE_Sign1, see ``licences.payload``): a licence's printed code or a
  citizen's short-lived presentation code. The checks run in order and the first failure decides:
  format -> key known -> signature -> time window (presentations) -> licence in the repository ->
  record digest equals the repository's record -> licence status now;
* or a 120-bit random code that only names a licence: a purpose-stamped copy's, or that of a
  licence issued before signed codes.

The signature is checked before anything the payload says is believed, so a forged payload is
FAILED for its signature, never reported as expired or unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session

from core.clock import Clock, china_today
from licences.links import code_from_text, is_random_code
from licences.models import Licence
from licences.payload import (
    BadSignature,
    PayloadError,
    PayloadType,
    Signed,
    decode,
    verify_signature,
)
from licences.qrkeys import QrKeys, digest_of
from licences.repository import (
    LicenceRecord,
    effective_status,
    full_record,
    licence_by_code,
)
from verify import rules
from verify.record_read import read_without_transaction, record_by_identifier
from verify.report import PRESENTATION_EXPIRED, Indication, Report, SubIndication
from verify.steps import Sections, Steps, Stop, build_report, qr_wording
from verify.summary import licence_summary, seal_summary

CLOCK_SKEW = timedelta(seconds=60)  # a phone's clock may run a little ahead of the server's
KeyLookup = Callable[[bytes], ec.EllipticCurvePublicKey | None]


_KINDS = {
    PayloadType.LICENCE: ("证照码 / licence", "qr-payload"),
    PayloadType.PRESENTATION: ("出示码 / presentation", "presentation"),
    PayloadType.COPY: ("加注件码 / stamped copy", "qr-copy"),
}


def check_signed(
    code: str, steps: Steps, keys: KeyLookup, now: datetime, decoded: Signed | None = None
) -> Signed:
    """Format, key, signature and time window: the checks online and offline verification share.

    ``decoded``: ``code`` already decoded (:func:`unverified`, for a batch's read); decoding is
    deterministic, so it is the same payload, and nothing of it is believed before the checks
    below."""
    try:
        signed = decoded if decoded is not None else decode(code)
    except PayloadError as exc:
        raise steps.fail(
            "format", str(exc), Indication.FAILED, SubIndication.FORMAT_FAILURE
        ) from None
    claims = signed.claims
    kind, method = _KINDS[claims.type]
    steps.ok("format", f"COSE_Sign1 ES256, {kind}, {len(code)} characters")
    steps.extra["method"] = method
    public_key = keys(signed.kid)
    if public_key is None:
        raise steps.fail(
            "key",
            f"key id {signed.kid.hex()} is not a QR key of this trust domain",
            Indication.INDETERMINATE,
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
        )
    steps.ok("key", f"QR signing key {signed.kid.hex()}")
    try:
        verify_signature(signed, public_key)
    except BadSignature:
        raise steps.fail(
            "signature",
            "ES256 signature does not verify",
            Indication.FAILED,
            SubIndication.SIG_CRYPTO_FAILURE,
        ) from None
    steps.ok("signature", "ES256 signature valid")
    steps.extra["identifier"] = claims.identifier  # believed only now that the signature held
    if claims.type is PayloadType.PRESENTATION:
        assert claims.expires_at is not None
        steps.extra["presentation"] = {
            "presented_at": claims.issued_at.isoformat(),
            "expires_at": claims.expires_at.isoformat(),
        }
        if now > claims.expires_at:
            raise steps.fail(
                "presentation",
                f"expired at {claims.expires_at.isoformat()}",
                Indication.FAILED,
                SubIndication.EXPIRED,
                PRESENTATION_EXPIRED,
            )
        if claims.issued_at > now + CLOCK_SKEW:
            raise steps.fail(
                "presentation",
                f"presented at {claims.issued_at.isoformat()}, later than now",
                Indication.INDETERMINATE,
                SubIndication.NOT_YET_VALID,
            )
        steps.ok("presentation", f"valid until {claims.expires_at.isoformat()}")
    return signed


def unverified(text: str) -> Signed | None:
    """The signed payload a scanned text carries, decoded but *not* verified (None: no signed
    payload): what it claims, for routing and records only, never for a verdict."""
    code = code_from_text(text)
    if code is None or is_random_code(code):
        return None
    try:
        return decode(code)
    except PayloadError:
        return None


def _reads(session: Session | None) -> Session:
    """The session of a check that reads; a check routed to read nothing that would read
    fails instead (``CodeVerifier.checks_without_waiting`` routed it wrongly)."""
    if session is None:
        raise RuntimeError("a QR check without a session reached a read")
    return session


def _copy_record(session: Session, code: str, identifier: str) -> LicenceRecord | None:
    """A copy code names a copy the repository holds under this very code, of this licence; the
    record is the licence as the copy shows it (its purpose, seal and sealing time)."""
    copied = licence_by_code(session, code)
    if copied is None or copied.identifier != identifier:
        return None
    return full_record(session, copied)


class CodeVerifier:
    def __init__(self, clock: Clock, keys: QrKeys | None = None) -> None:
        self._clock = clock
        self._keys = keys

    def verify(
        self,
        session: Session | None,
        text: str,
        channel: str = "qr",
        known: Mapping[str, LicenceRecord] | None = None,
        decoded: Signed | None = None,
        listed_only: bool = False,
    ) -> Report:
        """``known``: licence records already read in this session, by identifier (a batch of
        scans, :meth:`named`); a licence not among them is read here, once its payload's
        signature has held. ``decoded``: :func:`unverified` of ``text``, when the caller has
        it (the payload is then decoded once). ``listed_only``: the QR keys as listed already,
        the store not asked (:meth:`checks_without_waiting`). ``session`` None: no read at
        all, for a check that :meth:`checks_without_waiting` routed (an event loop's, with the
        batch read over a connection of its own, ``verify.loop_desk``)."""
        if session is not None:
            read_without_transaction(session)
        now = self._clock.now()
        steps = Steps(wording=qr_wording)
        code = code_from_text(text)
        try:
            if code is not None and is_random_code(code):
                steps.extra["method"] = "qr-code"
                self._random(_reads(session), code, steps)
            elif code is not None and self._keys is not None:
                self._signed(session, code, steps, now, known or {}, decoded, listed_only)
            else:
                raise steps.fail(
                    "code",
                    "not a verification URL or code of this service",
                    Indication.FAILED,
                    SubIndication.UNKNOWN_CODE,
                )
            stop = None
        except Stop as failed:
            stop = failed
        record = steps.record
        sections = Sections(
            licence=licence_summary(record, china_today(now)) if record else None,
            seal=seal_summary(record, record.licence.issued_at.isoformat()) if record else None,
        )
        return build_report(steps, stop, at=now, channel=channel, sections=sections)

    def _random(self, session: Session, code: str, steps: Steps) -> None:
        licence = licence_by_code(session, code)
        if licence is None:
            raise steps.fail(
                "code",
                "no licence has this verification code",
                Indication.FAILED,
                SubIndication.UNKNOWN_CODE,
            )
        steps.ok("code", f"code names licence {licence.identifier}")
        self._status(licence, steps, full_record(session, licence))

    @property
    def keys_in_process(self) -> bool:
        """Whether looking up a QR key never leaves this process."""
        return self._keys is None or self._keys.in_process

    def checks_without_waiting(
        self, signed: Signed | None, known: Mapping[str, LicenceRecord]
    ) -> bool:
        """Whether the check of ``signed`` needs nothing but ``known`` and the QR keys listed
        already (``listed_only``): nothing more from the database or the key store, so an
        event loop may make it. Its key is looked up, not believed: this only routes."""
        return (
            self.named(signed) in known
            and signed is not None
            and self._keys is not None
            and self._keys.listed_key(signed.kid) is not None
        )

    @staticmethod
    def named(signed: Signed | None) -> str | None:
        """The licence an :func:`unverified` payload names, read *without* checking its
        signature: only to read the records of a batch of scans together, never to believe.
        The check itself believes the identifier once the signature holds, and a record read
        for a forged payload is never looked at."""
        if signed is None or signed.claims.type is PayloadType.COPY:
            return None
        return signed.claims.identifier

    def _signed(
        self,
        session: Session | None,
        code: str,
        steps: Steps,
        now: datetime,
        known: Mapping[str, LicenceRecord],
        decoded: Signed | None,
        listed_only: bool = False,
    ) -> None:
        assert self._keys is not None
        keys = self._keys.listed_key if listed_only else self._keys.public_key
        signed = check_signed(code, steps, keys, now, decoded)
        claims = signed.claims
        if claims.type is PayloadType.COPY:
            record = _copy_record(_reads(session), code, claims.identifier)
            where = f"no stamped copy {claims.copy_id} of {claims.identifier}"
        else:
            identifier = claims.identifier
            if identifier in known:
                record = known[identifier]
            else:
                record = record_by_identifier(_reads(session), identifier)
            where = f"no licence {claims.identifier}"
        if record is None:
            raise steps.fail(
                "repository",
                f"{where} in the repository",
                Indication.FAILED,
                SubIndication.NOT_IN_REPOSITORY,
            )
        licence = record.licence
        if digest_of(record) != claims.record_digest:
            raise steps.fail(
                "repository",
                "record digest differs from the repository's record",
                Indication.FAILED,
                SubIndication.HASH_FAILURE,
            )
        copy = f"stamped copy {record.stamped_copy} of " if record.stamped_copy else ""
        steps.ok("repository", f"matches {copy}licence {licence.identifier}")
        self._status(licence, steps, record)

    def _status(self, licence: Licence, steps: Steps, record: LicenceRecord) -> None:
        # From here the licence is known to be real: the report names it even when it is not
        # valid, so the clerk sees which licence was shown and why it is refused.
        steps.record = record
        status = effective_status(licence, china_today(self._clock.now()))
        steps.apply(rules.licence_status(status, status.label))
