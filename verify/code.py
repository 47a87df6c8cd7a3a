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

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import DateTime, bindparam, func, literal_column
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import configure_mappers
from sqlmodel import Session, SQLModel

from core.clock import Clock, china_today
from core.roundtrips import driver_errors, psycopg_connection
from licences.links import code_from_text, is_random_code
from licences.models import Holder, Licence, LicencePhoto, LicenceType
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
    holder_as_issued,
    licence_by_code,
)
from seals.models import Department, Seal
from verify import rules
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


def check_signed(code: str, steps: Steps, keys: KeyLookup, now: datetime) -> Signed:
    """Format, key, signature and time window: the checks online and offline verification share."""
    try:
        signed = decode(code)
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


# The licence with its type, holder, issuer and seal, and its photo's digest: one prepared query
# (built once), read as plain rows. Every scanned code runs it, and loading five ORM entities
# (identity map, change tracking, load events) cost three times the query itself; the record it
# gives is read-only.
_MODELS: tuple[type[SQLModel], ...] = (Licence, LicenceType, Holder, Department, Seal)
_TABLES = [model.__table__ for model in _MODELS]  # type: ignore[attr-defined]
_KEYS = [tuple(column.key for column in table.columns) for table in _TABLES]
_NAIVE = [
    tuple(column.key for column in table.columns if isinstance(column.type, DateTime))
    for table in _TABLES
]
_licence, _type, _holder, _department, _seal = _TABLES
_photo = LicencePhoto.__table__  # type: ignore[attr-defined]


_IMAGE = _KEYS[4].index("image_png")  # the seal image's place among the seal's columns
_SEAL_CODE = _KEYS[4].index("code")
# On PostgreSQL the seal image is not read per scan: in its place the row's version, which the
# server changes on every update of the row (``xmin``, the writing transaction; ``tableoid``
# tells two schemas' seal tables apart). The image bytes (~72 KB) are read once per process
# and version (``_seal_image``). No check of a verification uses them; the record carries
# them so it stays the whole record the ORM would load.
_IMAGE_VERSION: Any = literal_column("seal.tableoid::text || ':' || seal.xmin::text")


def _record_query(photo: Any, image: Any = None) -> Any:
    """The record query with ``photo`` (an expression of the photo row) as its last column,
    and ``image`` (default: the seal image's own column) in the seal image's place."""
    return (
        sa_select(
            *(
                (image if image is not None and column is _seal.c.image_png else column).label(
                    f"{table.name}__{column.key}"
                )
                for table in _TABLES
                for column in table.columns
            ),
            photo.label("photo"),
        )
        .select_from(_licence)
        .join(_type, _type.c.code == _licence.c.type_code)
        .join(_holder, _holder.c.id == _licence.c.holder_id)
        .join(_department, _department.c.code == _licence.c.issuer_code)
        .join(_seal, _seal.c.code == _licence.c.seal_code)
        .outerjoin(_photo, _photo.c.identifier == _licence.c.identifier)
        .where(_licence.c.identifier == bindparam("identifier"))
    )


# The photo's digest as stored now (``licences.photos.stored_digest``), in the same round trip:
# PostgreSQL hashes it where it lies (the image itself, up to a few hundred KB, never crosses
# the connection); SQLite, in this process anyway, hands the bytes over to be hashed here.
_RECORD = {
    "postgresql": _record_query(
        func.encode(func.sha256(_photo.c.image), literal_column("'hex'")), _IMAGE_VERSION
    ),
    "sqlite": _record_query(_photo.c.image),
}


def _read_without_transaction(session: Session) -> None:
    """On PostgreSQL, a verification's reads run without a transaction block (autocommit).

    Under READ COMMITTED each statement reads its own snapshot either way, so nothing a
    verification sees changes; what goes is BEGIN and ROLLBACK, two of the three round trips
    of a QR verification's read. And psycopg forgets every prepared statement of a connection
    on ROLLBACK, so the record query, re-sent and planned afresh for every verification, now
    stays prepared. A session already in a transaction is left as it is; SQLite is unchanged
    (the reads are calls inside this process)."""
    if session.in_transaction():
        return
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


@cache
def _mappers_ready() -> None:
    """The models' attributes are readable before any ORM query has run in the process."""
    configure_mappers()


def _detached(
    model: type[SQLModel], keys: tuple[str, ...], naive: tuple[str, ...], values: Any
) -> Any:
    fields = dict(zip(keys, values, strict=True))
    for key in naive:  # SQLite keeps no offset; everything stored is UTC (as ``core.db`` does)
        value = fields[key]
        if isinstance(value, datetime) and value.tzinfo is None:
            fields[key] = value.replace(tzinfo=UTC)
    return model.model_construct(**fields)


def _copy_record(session: Session, code: str, identifier: str) -> LicenceRecord | None:
    """A copy code names a copy the repository holds under this very code, of this licence; the
    record is the licence as the copy shows it (its purpose, seal and sealing time)."""
    copied = licence_by_code(session, code)
    if copied is None or copied.identifier != identifier:
        return None
    return full_record(session, copied)


@cache
def _record_sql(dialect: Dialect) -> str:
    return str(_RECORD["postgresql"].compile(dialect=dialect))


def _fetch_record(connection: Connection, identifier: str) -> Sequence[Any] | None:
    """The record's row. On PostgreSQL straight from psycopg: through SQLAlchemy the result's
    description alone built some sixty column objects a scan (0.2 ms), for a row read by
    position anyway."""
    raw = psycopg_connection(connection)
    if raw is None:
        return connection.execute(_RECORD["sqlite"], {"identifier": identifier}).first()
    with driver_errors(connection):
        found: Sequence[Any] | None = raw.execute(
            _record_sql(connection.dialect), {"identifier": identifier}, binary=True
        ).fetchone()
    return found


# (database URL, seal code, row version) -> the seal image. Bounded by the seals a process
# sees (a domain has tens); a replaced image is a new version, so an entry is never stale.
_SEAL_IMAGES: dict[tuple[Any, str, str], bytes] = {}
_SEAL_IMAGES_MAX = 256
_IMAGE_SQL = (
    "SELECT seal.tableoid::text || ':' || seal.xmin::text, seal.image_png FROM seal"
    " WHERE seal.code = %(code)s"
)


def _seal_image(connection: Connection, code: str, version: str) -> bytes:
    """The seal image of ``code`` at row version ``version``, read from the database the first
    time this process meets that version."""
    key = (connection.engine.url, code, version)
    image = _SEAL_IMAGES.get(key)
    if image is not None:
        return image
    raw = psycopg_connection(connection)
    assert raw is not None  # versions are only read on PostgreSQL
    with driver_errors(connection):
        found = raw.execute(_IMAGE_SQL, {"code": code}, binary=True).fetchone()
    assert found is not None, "a licence's seal is never deleted (foreign key)"
    now_version, image = found[0], bytes(found[1])
    if len(_SEAL_IMAGES) >= _SEAL_IMAGES_MAX:
        _SEAL_IMAGES.clear()
    _SEAL_IMAGES[(key[0], code, now_version)] = image
    # Updated between the two reads: this image is the newer one; the record is still the
    # one its other columns describe, and no check reads the image.
    return image


def _with_seal_image(connection: Connection, row: Sequence[Any]) -> Sequence[Any]:
    at = sum(len(keys) for keys in _KEYS[:4])
    version = row[at + _IMAGE]
    if not isinstance(version, str):
        return row  # the image itself (SQLite)
    seal_code = row[at + _SEAL_CODE]
    values = list(row)
    values[at + _IMAGE] = _seal_image(connection, seal_code, version)
    return values


def _record_by_identifier(session: Session, identifier: str) -> LicenceRecord | None:
    _mappers_ready()
    connection = session.connection()
    row = _fetch_record(connection, identifier)
    if row is not None:
        row = _with_seal_image(connection, row)
    if row is None:
        licence = session.get(Licence, identifier)
        # A licence whose related rows are missing is reported as before, by ``full_record``.
        return None if licence is None else full_record(session, licence)
    parts, at = [], 0
    for model, keys, naive in zip(_MODELS, _KEYS, _NAIVE, strict=True):
        parts.append(_detached(model, keys, naive, row[at : at + len(keys)]))
        at += len(keys)
    parts[2] = holder_as_issued(parts[0], parts[2])  # the name the licence was issued under
    record = LicenceRecord(*parts)
    photo = row[at]
    if isinstance(photo, bytes | memoryview):
        photo = hashlib.sha256(photo).hexdigest()
    return replace(record, photo_sha256=photo)


class CodeVerifier:
    def __init__(self, clock: Clock, keys: QrKeys | None = None) -> None:
        self._clock = clock
        self._keys = keys

    def verify(self, session: Session, text: str, channel: str = "qr") -> Report:
        _read_without_transaction(session)
        now = self._clock.now()
        steps = Steps(wording=qr_wording)
        code = code_from_text(text)
        try:
            if code is not None and is_random_code(code):
                steps.extra["method"] = "qr-code"
                self._random(session, code, steps)
            elif code is not None and self._keys is not None:
                self._signed(session, code, steps, now)
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

    def _signed(self, session: Session, code: str, steps: Steps, now: datetime) -> None:
        assert self._keys is not None
        signed = check_signed(code, steps, self._keys.public_key, now)
        claims = signed.claims
        if claims.type is PayloadType.COPY:
            record = _copy_record(session, code, claims.identifier)
            where = f"no stamped copy {claims.copy_id} of {claims.identifier}"
        else:
            record = _record_by_identifier(session, claims.identifier)
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
