"""The SM2 PKI's own SQL (the seal certificate that follows an ECDSA row, the CRL's join, the
CRL counter under a row lock) on SQLite and on PostgreSQL, without the rest of the service:
a trust domain, one seal certificate, its SM2 twin, a revocation seen by the CRL, OCSP and the
chain builder at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.clock import FixedClock
from core.db import create_db_engine
from core.errors import Conflict
from keys.soft import SoftKeyStore
from migrations.runner import alembic_config
from tests.conftest import fresh_schema
from tests.sm2_domain import T0, issue_seal, trust_domain
from trust.sm2_chain import Sm2ChainFailure, validate_sm2_certificate
from trust.sm2_ocsp import Sm2OcspResponder
from trust.sm2_pki import SM2_SEAL_CA
from trust.sm2_records import Sm2CertificateRecord


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "postgres":
        url = fresh_schema(request.getfixturevalue("postgres_url"), "t_sm2_pki")
    else:
        url = f"sqlite:///{tmp_path / 'sm2.sqlite'}"
    command.upgrade(alembic_config(url), "heads")
    engine = create_db_engine(url)
    yield engine
    engine.dispose()


def _crl_serials(der: bytes) -> set[int]:
    revoked = asn1_crl.CertificateList.load(der)["tbs_cert_list"]["revoked_certificates"]
    return {entry["user_certificate"].native for entry in revoked}


def _crl_number(der: bytes) -> int:
    extensions = asn1_crl.CertificateList.load(der)["tbs_cert_list"]["crl_extensions"]
    return int(
        next(e["extn_value"].native for e in extensions if e["extn_id"].native == "crl_number")
    )


def test_a_revoked_seal_is_revoked_in_the_sm2_crl_ocsp_and_chain(
    engine: Engine, tmp_path: Path
) -> None:
    clock = FixedClock(T0)
    store = SoftKeyStore(tmp_path / "keys", b"pw")
    trust = trust_domain(store, clock)
    with Session(engine) as session:
        trust.initialise(session, "operator:init")
        ecdsa = issue_seal(trust, session, store, "11010002000001", timedelta(days=365))
        material = trust.sm2.seal_material(
            session, actor="test", seal_certificate_serial=ecdsa.serial
        )
        session.commit()
        first_crl = trust.sm2.crl(session, SM2_SEAL_CA)
        session.commit()
        assert int(material.serial, 16) not in _crl_serials(first_crl)
        assert trust.sm2.crl(session, SM2_SEAL_CA) == first_crl  # nothing changed: cached
        clock.advance(timedelta(hours=12, minutes=1))  # within 12 h of its next update
        fresh = trust.sm2.crl(session, SM2_SEAL_CA)
        session.commit()
        assert fresh != first_crl and _crl_number(fresh) == _crl_number(first_crl) + 1
        good = validate_sm2_certificate(session, trust.sm2, material.certificate_der, T0)
        assert good.ok, good.reason

        clock.advance(timedelta(hours=1))
        trust.revocation.revoke(session, actor="test", serial=ecdsa.serial, reason="keyCompromise")
        session.commit()
        crl = trust.sm2.crl(session, SM2_SEAL_CA)
        session.commit()
        assert crl != first_crl
        assert int(material.serial, 16) in _crl_serials(crl)
        assert _crl_number(crl) == _crl_number(fresh) + 1
        answer = Sm2OcspResponder(trust.sm2).status_response(session, material.certificate_der)
        single = asn1_ocsp.OCSPResponse.load(answer).basic_ocsp_response["tbs_response_data"][
            "responses"
        ][0]
        assert single["cert_status"].name == "revoked"
        assert single["cert_status"].chosen["revocation_reason"].native == "key_compromise"
        after = validate_sm2_certificate(
            session, trust.sm2, material.certificate_der, clock.now() + timedelta(seconds=1)
        )
        assert after.failure is Sm2ChainFailure.REVOKED
        before = validate_sm2_certificate(session, trust.sm2, material.certificate_der, T0)
        assert before.ok and before.status is not None and before.status.status == "revoked"


@pytest.mark.postgres
def test_two_first_uses_of_a_seal_at_once_make_one_sm2_certificate(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two workers sealing the same seal's first OFDs at the same moment: the second waits for
    the first's transaction and takes the certificate it made (PostgreSQL's row lock)."""
    url = fresh_schema(postgres_url, "t_sm2_race")
    command.upgrade(alembic_config(url), "heads")
    engine = create_db_engine(url)
    clock = FixedClock(T0)
    store = SoftKeyStore(tmp_path / "keys", b"pw")
    trust = trust_domain(store, clock)
    with Session(engine) as session:
        trust.initialise(session, "operator:init")
        ecdsa = issue_seal(trust, session, store, "11010002000002", timedelta(days=365))
        session.commit()
        serial = ecdsa.serial
    found: list[str] = []

    def second() -> None:
        with Session(engine) as other:
            found.append(
                trust.sm2.seal_material(other, actor="b", seal_certificate_serial=serial).serial
            )
            other.commit()

    with Session(engine) as first:
        mine = trust.sm2.seal_material(first, actor="a", seal_certificate_serial=serial)
        worker = threading.Thread(target=second)
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive()  # waiting on the seal's row
        first.commit()
    worker.join(timeout=30)
    assert found == [mine.serial]
    with Session(engine) as session:
        rows = session.exec(
            select(Sm2CertificateRecord).where(Sm2CertificateRecord.follows_serial == serial)
        ).all()
    assert len(rows) == 1
    engine.dispose()


def test_an_expired_seal_gets_no_sm2_certificate(engine: Engine, tmp_path: Path) -> None:
    """A seal whose ECDSA certificate expired is renewed first; no SM2 certificate with an
    expiry before its start is ever made."""
    clock = FixedClock(T0)
    store = SoftKeyStore(tmp_path / "keys", b"pw")
    trust = trust_domain(store, clock)
    with Session(engine) as session:
        trust.initialise(session, "operator:init")
        ecdsa = issue_seal(trust, session, store, "11010002000003", timedelta(days=2))
        session.commit()
        clock.advance(timedelta(days=3))
        with pytest.raises(Conflict, match="renew the seal"):
            trust.sm2.seal_material(session, actor="t", seal_certificate_serial=ecdsa.serial)
        session.rollback()
        assert not session.exec(
            select(Sm2CertificateRecord).where(Sm2CertificateRecord.follows_serial == ecdsa.serial)
        ).all()
