"""A licence repository in memory for the QR verification tests: one department, one seal, one
licence type and the licences a test adds, with codes made by the product's own payload builder
(``licences.payload`` through ``licences.qrkeys.QrKeys``) under an in-memory QR key."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import Engine
from sqlmodel import Session

from keys.store import HashAlgorithm
from licences.identifiers import LicenceIdentifier
from licences.models import Holder, Licence, LicenceType
from licences.payload import Claims, PayloadType, key_id, record_digest, sign
from licences.qrkeys import QrKeys
from seals.models import Department, Seal
from tests.security.support import NOW, MemoryKeyStore, memory_engine

ISSUER = "1135010000360001XN"
ISSUER_NAME = "福州市市场监督管理局"
TYPE_CODE = ISSUER + "001"
TYPE_NAME = "食品经营许可证"
SEAL_CODE = "35010000000001"
SEAL_NAME = "福州市市场监督管理局电子证照专用章"
SEAL_SERIAL = "5A3F0001"
HOLDER_ID = "350102199001011234"
HOLDER_NAME = "张小明"
ID_TYPE = "111"
FIELDS = {"经营场所": "福州市鼓楼区五一北路1号", "经营项目": "热食类食品制售"}
VALID_FROM = date(2024, 5, 20)
VALID_UNTIL = date(2029, 5, 19)
ISSUED_AT = datetime(2024, 5, 20, 1, 30, tzinfo=UTC)  # 09:30 in Beijing


def identifier(serial: str, version: str = "001") -> str:
    return str(LicenceIdentifier(TYPE_CODE, ISSUER, serial, version))


@dataclass
class Repository:
    engine: Engine
    store: MemoryKeyStore
    keys: QrKeys

    @property
    def kid(self) -> bytes:
        return self.keys.published()[0].kid

    def add(
        self,
        serial: str = "A1",
        *,
        status: str = "valid",
        valid_until: date | None = VALID_UNTIL,
        holder_name: str | None = None,
        verify_code: str | None = None,
        seal_certificate_serial: str | None = None,
        seal_code: str = SEAL_CODE,
    ) -> str:
        """Stores a licence; returns its identifier."""
        ident = identifier(serial)
        with Session(self.engine) as session:
            session.add(
                Licence(
                    identifier=ident, type_code=TYPE_CODE, issuer_code=ISSUER, serial=serial,
                    version=1, holder_id=1, fields=dict(FIELDS), valid_from=VALID_FROM,
                    valid_until=valid_until, status=status, issued_at=ISSUED_AT,
                    verify_code=verify_code or "X" + serial, sha256="ab" * 32,
                    seal_code=seal_code, seal_certificate_serial=seal_certificate_serial,
                    holder_name=holder_name,
                )
            )
            session.commit()
        return ident

    def claims(self, ident: str, **changes: Any) -> Claims:
        """What a genuine licence code of ``ident`` says (digest of the stored record)."""
        valid_until = changes.pop("valid_until", VALID_UNTIL)
        claims = Claims(
            type=PayloadType.LICENCE,
            identifier=ident,
            record_digest=record_digest(
                identifier=ident, type_code=TYPE_CODE, issuer_code=ISSUER,
                holder_id_type=ID_TYPE, holder_id=HOLDER_ID, fields=FIELDS,
                valid_from=VALID_FROM, valid_until=valid_until,
            ),
            valid_until=valid_until,
            issued_at=ISSUED_AT,
        )
        return replace(claims, **changes)

    def presentation(self, ident: str, presented_at: datetime = NOW,
                     ttl: timedelta = timedelta(minutes=5)) -> Claims:
        return self.claims(
            ident, type=PayloadType.PRESENTATION, issued_at=presented_at,
            expires_at=presented_at + ttl, nonce=b"\x01\x02\x03\x04\x05\x06\x07\x08",
        )

    def code(self, claims: Claims) -> str:
        return self.keys.sign(claims, purpose="qr-licence", listener=None)


def forged(claims: Claims, kid: bytes | None = None) -> tuple[str, bytes]:
    """``claims`` signed by a key of no trust domain, naming ``kid`` (its own when None)."""
    store = MemoryKeyStore()
    ref = store.create("forger")
    public = store.public_key(ref)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    own = key_id(public)
    code = sign(claims, kid or own, lambda d: store.sign_digest(ref, d, HashAlgorithm.SHA256))
    return code, own


def repository(*, holder_name: str = HOLDER_NAME, category: str = "natural_person") -> Repository:
    import verify.log  # noqa: F401  (its table)

    engine = memory_engine()
    store = MemoryKeyStore()
    keys = QrKeys(store)
    keys.ensure()
    with Session(engine) as session:
        session.add(Department(code=ISSUER, name=ISSUER_NAME, division_code="350100",
                               level="municipal"))
        session.add(Seal(code=SEAL_CODE, department_code=ISSUER, seal_type="02", name=SEAL_NAME,
                         certificate_serial=SEAL_SERIAL, key_ref="memory:seal:1",
                         valid_from=datetime(2024, 1, 1, tzinfo=UTC),
                         valid_until=datetime(2030, 1, 1, tzinfo=UTC), image_png=b"png"))
        session.add(LicenceType(code=TYPE_CODE, name=TYPE_NAME, authority_code=ISSUER,
                                authority_name=ISSUER_NAME, authority_level="municipal",
                                holder_category=category, holder_id_type=ID_TYPE,
                                field_schema={}, issuer_codes=[ISSUER]))
        session.add(Holder(id=1, id_type=ID_TYPE, id_number=HOLDER_ID, name=holder_name))
        session.commit()
    return Repository(engine, store, keys)
