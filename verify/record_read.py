"""The licence record a scanned code is checked against, read as one prepared query: for one
licence, or for every licence a batch of scans names (``verify.desk``) in one round trip.

The licence with its type, holder, issuer and seal, and its photo's digest come back as plain
rows. Every scanned code runs this, and loading five ORM entities (identity map, change
tracking, load events) cost three times the query itself; the record it gives is read-only.
The statements go to the driver itself (psycopg, sqlite3), with the column conversions
SQLAlchemy would apply: through SQLAlchemy, building a result for a row read by position cost
more than the database's own work (PostgreSQL: some sixty column objects a scan, 0.2 ms).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import DateTime, bindparam, func, literal_column
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import configure_mappers
from sqlmodel import Session, SQLModel

from core.roundtrips import driver_errors, kept_cursor, psycopg_connection
from licences.models import Holder, Licence, LicencePhoto, LicenceType
from licences.repository import LicenceRecord, full_record, holder_as_issued
from seals.models import Department, Seal

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


def _record_query(photo: Any, image: Any, where: Any) -> Any:
    """The record query with ``photo`` (an expression of the photo row) as its last column,
    ``image`` (None: the seal image's own column) in the seal image's place, and ``where``
    choosing the licences."""
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
        .where(where)
    )


# The photo's digest as stored now (``licences.photos.stored_digest``), in the same round trip:
# PostgreSQL hashes it where it lies (the image itself, up to a few hundred KB, never crosses
# the connection); SQLite, in this process anyway, hands the bytes over to be hashed here.
_PHOTO = {
    "postgresql": (
        func.encode(func.sha256(_photo.c.image), literal_column("'hex'")),
        _IMAGE_VERSION,
    ),
    "sqlite": (_photo.c.image, None),
}
MAX_BATCH = 64  # identifiers in one statement


_STATEMENTS: dict[tuple[str, str, int], tuple[str, tuple[str, ...], tuple[Any, ...]]] = {}


def _statement(dialect: Dialect, count: int) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
    """Built once per database kind, driver and count (not per engine: tests make thousands)."""
    key = (dialect.name, dialect.driver, count)
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = _build_statement(dialect, count)
    return found


def _build_statement(dialect: Dialect, count: int) -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
    """The SQL of the query for ``count`` identifiers (bound as ``i0``, ``i1``, …), the
    parameters' order for a positional driver, and each column's conversion (None: as read)."""
    photo, image = _PHOTO[dialect.name]
    keys = [f"i{n}" for n in range(count)]
    column = _licence.c.identifier
    where = column == bindparam(keys[0]) if count == 1 else column.in_([bindparam(k) for k in keys])
    query = _record_query(photo, image, where)
    compiled = query.compile(dialect=dialect)
    order = tuple(compiled.positiontup or ()) if dialect.paramstyle == "qmark" else ()
    converters = tuple(
        None
        if dialect.name == "postgresql"  # psycopg's own loaders give the Python values
        else selected.type._cached_result_processor(dialect, None)
        for selected in query.selected_columns
    )
    return str(compiled), order, converters


def batch_query(dialect: Dialect, identifiers: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The record query of ``identifiers`` (at most :data:`MAX_BATCH`, distinct) and its
    parameters, for a caller that sends it on a psycopg connection of its own (an event
    loop's, ``verify.loop_desk``) in binary form, as :func:`_fetch_rows` does."""
    sql, _, _ = _statement(dialect, len(identifiers))
    return sql, {f"i{n}": identifier for n, identifier in enumerate(identifiers)}


def _fetch_rows(connection: Connection, identifiers: Sequence[str]) -> list[Sequence[Any]]:
    """The record rows of ``identifiers`` (at most :data:`MAX_BATCH`), in no order."""
    sql, order, converters = _statement(connection.dialect, len(identifiers))
    bound = {f"i{n}": identifier for n, identifier in enumerate(identifiers)}
    raw = psycopg_connection(connection)
    with driver_errors(connection):
        if raw is not None:
            found: list[Sequence[Any]] = (
                kept_cursor(raw, binary=True).execute(sql, bound).fetchall()
            )
            return found
        cursor = connection.connection.driver_connection.execute(  # type: ignore[union-attr]
            sql, [bound[name] for name in order]
        )
        rows = cursor.fetchall()
    return [_converted(row, converters) for row in rows]


def _converted(
    row: Sequence[Any], converters: tuple[Callable[[Any], Any] | None, ...]
) -> list[Any]:
    return [value if c is None else c(value) for value, c in zip(row, converters, strict=True)]


def read_without_transaction(session: Session) -> None:
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


# (database URL, seal code, row version) -> the seal image. Bounded by the seals a process
# sees (a domain has tens); a replaced image is a new version, so an entry is never stale.
_SEAL_IMAGES: dict[tuple[Any, str, str], bytes] = {}
_SEAL_IMAGES_MAX = 256
_IMAGE_SQL = (
    "SELECT seal.tableoid::text || ':' || seal.xmin::text, seal.image_png FROM seal"
    " WHERE seal.code = %(code)s"
)


def _cached_image(database: Any, code: str, version: str) -> bytes | None:
    """The seal image of ``code`` at row version ``version`` in ``database`` (its engine's URL:
    two schemas' seals may share a code), if this process has read it."""
    return _SEAL_IMAGES.get((database, code, version))


def _seal_image(connection: Connection, code: str, version: str) -> bytes:
    """The seal image of ``code`` at row version ``version``, read from the database the first
    time this process meets that version."""
    key = (connection.engine.url, code, version)
    image = _cached_image(*key)
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


_SEAL_AT = sum(len(keys) for keys in _KEYS[:4])  # where the seal's columns start in a row


def _with_seal_image(connection: Connection, row: Sequence[Any]) -> Sequence[Any]:
    version = row[_SEAL_AT + _IMAGE]
    if not isinstance(version, str):
        return row  # the image itself (SQLite)
    seal_code = row[_SEAL_AT + _SEAL_CODE]
    values = list(row)
    values[_SEAL_AT + _IMAGE] = _seal_image(connection, seal_code, version)
    return values


def records_from_rows(
    database: Any, rows: Sequence[Sequence[Any]]
) -> dict[str, LicenceRecord] | None:
    """The records of :func:`batch_query`'s rows from ``database`` (its engine's URL), by
    identifier. None: a row names a seal image version this process has not read yet, which
    takes a read of its own (:func:`records_by_identifier` makes it)."""
    _mappers_ready()
    found: dict[str, LicenceRecord] = {}
    for row in rows:
        values = list(row)
        at = _SEAL_AT + _IMAGE
        image = _cached_image(database, values[_SEAL_AT + _SEAL_CODE], values[at])
        if image is None:
            return None
        values[at] = image
        record = _record_of(values)
        found[record.licence.identifier] = record
    return found


def record_by_identifier(session: Session, identifier: str) -> LicenceRecord | None:
    """The record of one licence, or None when the repository has no such licence."""
    found = records_by_identifier(session, [identifier])
    if identifier in found:
        return found[identifier]
    # A licence whose related rows are missing is reported as before, by ``full_record``.
    licence = session.get(Licence, identifier)
    return None if licence is None else full_record(session, licence)


def records_by_identifier(session: Session, identifiers: Sequence[str]) -> dict[str, LicenceRecord]:
    """The records of those of ``identifiers`` the repository holds whole, read in one
    statement per :data:`MAX_BATCH` of them. An identifier it does not hold costs nothing more
    here: a batch's names are read before any signature is checked, and a forged payload must
    not buy a query of its own."""
    _mappers_ready()
    connection = session.connection()
    wanted = list(dict.fromkeys(identifiers))
    found: dict[str, LicenceRecord] = {}
    for start in range(0, len(wanted), MAX_BATCH):
        for row in _fetch_rows(connection, wanted[start : start + MAX_BATCH]):
            record = _record_of(_with_seal_image(connection, row))
            found[record.licence.identifier] = record
    return found


def _record_of(row: Sequence[Any]) -> LicenceRecord:
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
