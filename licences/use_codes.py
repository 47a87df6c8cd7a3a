"""Use authorisation codes (用证授权码): a holder's presentation code, scanned by a department.

A signed-in holder may make a presentation code for one service item of their licence
(``licences.presentation``). When a department's counter system (a client with scope
``licences:pull``) redeems it within its lifetime, the holder has consented to that department
seeing the licence for that item: it gets what a pull under a grant for the item would give
(``licences.pulls``: the item's fields, the holder masked), a ``licence_pull`` row records the use
— the holder's usage log shows it — and no other department can use the code after it.

``UseCodeDesk.redeem`` runs the checks in the order a clerk would fix them; each refusal is a
:class:`CodeRefused` whose ``refusal`` member names it:

==================  ====  ==============================================================
``format``          422   not a code of this service (text, URL or damaged payload)
``key``             422   signed by a key that is not one of this domain's QR keys
``signature``       422   the signature does not verify (a forged or altered code)
``not_presentation`` 422  a printed licence's or stamped copy's code, not a holder's
``expired``         422   past the code's ``expires_at``
``not_yet_valid``   422   presented later than now (a clock far ahead)
``unknown_code``    422   genuine signature, but this domain never minted that nonce
``show_only``       403   the holder made it to be shown, not to authorise a use
``already_used``    409   another department redeemed it first
``licence_status``  409   the licence is no longer valid (``licence_status`` names it)
``record_changed``  409   the licence record is not the one the code was made for
==================  ====  ==============================================================

The same department redeeming again within the lifetime gets the same answer again (a retry by
its system), audited as a repeat with no second pull row. The first use is claimed by one
conditional ``UPDATE`` (``licences.use_code_records.claim``), the claim, the pull row and the
``licence.authorise`` audit entry in one transaction. A refusal once the signature holds is
audited (``licence.authorise``, outcome ``refused``) in a transaction of its own, as refused
pulls are; text that is not a code of this domain is written into nobody's log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.audit import AuditLog
from core.clock import Clock, china_today
from core.db import as_utc, transaction
from core.errors import ElicenceError, ErrorKind
from licences.grants import check_code
from licences.links import code_from_text, is_random_code
from licences.models import LicenceStatus
from licences.payload import BadSignature, Claims, PayloadError, PayloadType, decode
from licences.payload import verify_signature as check_signature
from licences.pulls import LicencePull, Pulled, masked_holder, minimised
from licences.qrkeys import QrKeys, digest_of
from licences.repository import effective_status, full_record, licence_by_identifier
from licences.use_code_records import PresentationUse, claim

CLOCK_SKEW = timedelta(seconds=60)  # as the verifier allows a phone's clock
ACTION = "licence.authorise"
NOT_PRESENTATION = (
    "这是证照或加注件上的二维码，不是持证人的用证授权码 / this is a printed licence's or copy's "
    "code, not a holder's authorisation code"
)


class CodeRefused(ElicenceError):
    """A code that does not let this department use the licence; ``refusal`` names why."""

    def __init__(self, kind: ErrorKind, refusal: str, message: str, **extra: Any) -> None:
        super().__init__(message, kind=kind, field="code", extra={"refusal": refusal, **extra})
        self.refusal = refusal


def _invalid(refusal: str, message: str) -> CodeRefused:
    return CodeRefused(ErrorKind.INVALID, refusal, message)


@dataclass(frozen=True)
class RedeemRequest:
    text: str  # what the scanner read: the code's URL or the bare code
    department_code: str
    client_id: str
    actor: str
    business_number: str | None = None  # the department's case, if it names one
    request_id: str | None = None


@dataclass(frozen=True)
class Authorised:
    """What the department gets: the pull's shape, and the consent it was given with."""

    pulled: Pulled
    service_item: str
    business_number: str
    presented_at: datetime
    expires_at: datetime
    used_at: datetime
    repeat: bool  # the same department asked again: the same answer, nothing new written


class UseCodeDesk:
    """Redeems use authorisation codes for departments, one transaction each."""

    def __init__(self, *, engine: Engine, audit: AuditLog, clock: Clock, keys: QrKeys) -> None:
        self._engine = engine
        self._audit = audit
        self._clock = clock
        self._keys = keys

    def redeem(self, request: RedeemRequest) -> Authorised:
        """The licence for the code's service item, or :class:`CodeRefused` saying why not."""
        number = (
            check_code(request.business_number, "business_number", "办件编号")
            if request.business_number is not None
            else ""
        )
        now = self._clock.now()
        claims = self._genuine(request.text)
        try:
            nonce = _live(claims, now)
            with transaction(self._engine) as session:
                return self._redeem(session, request, claims, nonce, number, now)
        except CodeRefused as refusal:
            self._refused(request, claims, refusal)
            raise

    def _genuine(self, text: str) -> Claims:
        """The claims of a code signed by this domain's QR key; refusals before the signature
        holds are not audited (nothing in the text can be believed)."""
        code = code_from_text(text)
        if code is None:
            raise _invalid("format", "不是本服务的证照二维码 / not a code of this service")
        if is_random_code(code):
            raise _invalid("not_presentation", NOT_PRESENTATION)
        try:
            signed = decode(code)
        except PayloadError as exc:
            raise _invalid("format", f"二维码内容无法识别 / the code is malformed: {exc}") from None
        public_key = self._keys.public_key(signed.kid)
        if public_key is None:
            raise _invalid(
                "key", "二维码不是本服务签发的 / the code was not signed by this service"
            )
        try:
            check_signature(signed, public_key)
        except BadSignature:
            raise _invalid(
                "signature", "二维码签名无效 / the code's signature does not verify"
            ) from None
        return signed.claims

    def _redeem(
        self,
        session: Session,
        request: RedeemRequest,
        claims: Claims,
        nonce: str,
        number: str,
        now: datetime,
    ) -> Authorised:
        claimed = claim(
            session,
            nonce=nonce,
            identifier=claims.identifier,
            department_code=request.department_code,
            at=now,
        )
        row = session.get(PresentationUse, nonce)
        item = _usable(row, claims, request.department_code)
        licence = licence_by_identifier(session, claims.identifier)
        status = effective_status(licence, china_today(now))
        if status is not LicenceStatus.VALID:
            raise CodeRefused(
                ErrorKind.CONFLICT,
                "licence_status",
                f"证照当前状态为{status.label}，不能使用 / the licence is {status.value}",
                licence_status=status.value,
            )
        record = full_record(session, licence)
        if digest_of(record) != claims.record_digest:
            raise CodeRefused(
                ErrorKind.CONFLICT,
                "record_changed",
                "证照数据与授权码不符 / the licence record is not the one the code was made for",
            )
        needed, fields = minimised(record, item)
        pulled = Pulled(record, None, fields, masked_holder(record), None)
        if claimed:
            session.add(
                LicencePull(
                    at=now,
                    identifier=licence.identifier,
                    holder_id=licence.holder_id,
                    use_code=nonce,
                    department_code=request.department_code,
                    client_id=request.client_id,
                    service_item=item,
                    business_number=number,
                    what="record",
                )
            )
        else:
            number = _first_pull_number(session, nonce, number)
        assert row is not None and row.used_at is not None
        used_at = now if claimed else as_utc(row.used_at)
        detail: dict[str, Any] = {"code": nonce, "service_item": item, "business_number": number}
        detail |= {"fields": needed, "repeat": not claimed}
        self._append(session, request, claims.identifier, "ok", detail)
        return Authorised(
            pulled=pulled,
            service_item=item,
            business_number=number,
            presented_at=claims.issued_at,
            expires_at=as_utc(row.expires_at),
            used_at=used_at,
            repeat=not claimed,
        )

    def _refused(self, request: RedeemRequest, claims: Claims, refusal: CodeRefused) -> None:
        """A refusal of a genuine code, audited in a transaction of its own (the refused one
        was rolled back)."""
        detail: dict[str, Any] = {"code": claims.nonce.hex() if claims.nonce else None}
        detail |= refusal.extra
        with transaction(self._engine) as session:
            self._append(session, request, claims.identifier, "refused", detail)

    def _append(
        self,
        session: Session,
        request: RedeemRequest,
        identifier: str,
        outcome: str,
        extra: dict[str, Any],
    ) -> None:
        self._audit.append(
            session,
            actor=request.actor[:128],
            action=ACTION,
            object_type="licence",
            object_id=identifier,
            outcome=outcome,
            detail={"department": request.department_code, "client": request.client_id, **extra},
            request_id=request.request_id,
        )


def _live(claims: Claims, now: datetime) -> str:
    """The nonce of a presentation code within its lifetime; else refused as a printed code,
    expired, or presented later than now."""
    if claims.type is not PayloadType.PRESENTATION or claims.nonce is None:
        raise _invalid("not_presentation", NOT_PRESENTATION)
    assert claims.expires_at is not None
    if now > claims.expires_at:
        expired = _invalid(
            "expired",
            f"用证授权码已于 {claims.expires_at.isoformat()} 过期，请持证人重新生成 / the code "
            f"expired at {claims.expires_at.isoformat()}; ask the holder for a fresh one",
        )
        expired.extra["expires_at"] = claims.expires_at.isoformat()
        raise expired
    if claims.issued_at > now + CLOCK_SKEW:
        raise _invalid(
            "not_yet_valid", "出示时间晚于当前时间 / the code was presented later than now"
        )
    return claims.nonce.hex()


def _usable(row: PresentationUse | None, claims: Claims, department_code: str) -> str:
    """The service item the code authorises for this department, or why it authorises
    nothing: never minted here, show only, or used by another department."""
    if row is None or row.identifier != claims.identifier:
        raise _invalid(
            "unknown_code",
            "本服务没有签发过此授权码 / this service never issued this code",
        )
    if row.service_item is None:
        raise CodeRefused(
            ErrorKind.FORBIDDEN,
            "show_only",
            "持证人生成的是仅出示码，未授权使用证照数据 / the holder made this code to be shown "
            "only; it authorises no use of the licence's data",
        )
    if row.used_by != department_code:
        raise CodeRefused(
            ErrorKind.CONFLICT,
            "already_used",
            "此授权码已被其他部门使用 / the code was already used by another department",
        )
    return row.service_item


def _first_pull_number(session: Session, nonce: str, asked: str) -> str:
    """The business number the code's pull was recorded with (a repeat answers as the first
    time did)."""
    pull = session.exec(select(LicencePull).where(LicencePull.use_code == nonce)).first()
    return pull.business_number if pull is not None else asked
