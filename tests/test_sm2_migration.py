"""Revision 0028 (the SM2 PKI's tables) and how a domain gets its SM2 hierarchy: at init, at
init run again on a domain from before SM2 existed, and never with a key store that has no SM2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlmodel import Session, SQLModel, select

from core.audit import AuditEntry
from core.clock import FixedClock
from core.db import create_db_engine
from core.errors import InvalidInput
from keys.soft import SoftKeyStore
from migrations.runner import alembic_config
from tests.conftest import fresh_schema
from tests.sm2_domain import T0, trust_domain
from trust.authority import TrustDomain
from trust.sm2_pki import SM2_ROOT, SM2_SEAL_CA
from trust.sm2_records import Sm2AuthorityRecord, Sm2CertificateRecord


def _sm2_diff(url: str) -> list[Any]:
    command.upgrade(alembic_config(url), "heads")
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    return [d for d in diff if "sm2_" in repr(d)]


def test_revision_0028_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert _sm2_diff(url) == []
    engine = create_engine(url)
    with engine.connect() as conn:
        columns = {r[1] for r in conn.execute(text("PRAGMA table_info(sm2_certificate)"))}
    engine.dispose()
    assert "follows_serial" in columns and "der" in columns


@pytest.mark.postgres
def test_revision_0028_matches_the_models_on_postgresql(postgres_url: str) -> None:
    assert _sm2_diff(fresh_schema(postgres_url, "t_sm2_migration")) == []


def _domain(tmp_path: Path, store: Any) -> tuple[TrustDomain, Any]:
    url = f"sqlite:///{tmp_path / 'domain.sqlite'}"
    command.upgrade(alembic_config(url), "heads")
    trust = trust_domain(store, FixedClock(T0))
    return trust, create_db_engine(url)


def test_init_makes_the_sm2_cas_and_an_older_domain_gets_them_when_init_runs_again(
    tmp_path: Path,
) -> None:
    trust, engine = _domain(tmp_path, SoftKeyStore(tmp_path / "keys", b"pw"))
    with Session(engine) as session:
        assert trust.initialise(session, "operator:init") is True
        session.commit()
        assert trust.sm2.is_initialised(session)
        first = {r.name: r.certificate_serial for r in session.exec(select(Sm2AuthorityRecord))}
        assert set(first) == {SM2_ROOT, SM2_SEAL_CA}
        # A domain from before SM2: its SM2 rows gone (as if 0028 had just created the tables).
        for table in ("sm2_authority", "sm2_certificate"):
            session.execute(text(f"DELETE FROM {table}"))
        session.commit()
        assert not trust.sm2.is_initialised(session)
        assert trust.initialise(session, "operator:init") is False  # the ECDSA CAs existed
        session.commit()
        again = {r.name: r.certificate_serial for r in session.exec(select(Sm2AuthorityRecord))}
        assert set(again) == {SM2_ROOT, SM2_SEAL_CA} and again != first
        responders = session.exec(
            select(Sm2CertificateRecord).where(Sm2CertificateRecord.role == "ocsp")
        ).all()
        assert sorted(r.name for r in responders) == [SM2_ROOT, SM2_SEAL_CA]
        actions = [e.action for e in session.exec(select(AuditEntry))]
        assert actions.count("domain.sm2-init") == 2
        # Run once more: nothing new.
        trust.initialise(session, "operator:init")
        session.commit()
        count = len(session.exec(select(Sm2CertificateRecord)).all())
        trust.initialise(session, "operator:init")
        assert len(session.exec(select(Sm2CertificateRecord)).all()) == count


class _NoSm2Store(SoftKeyStore):
    """A custody without SM2 (as OpenBao transit and PKCS#11 are): named otherwise."""

    name = "vault"


def test_a_key_store_without_sm2_gets_no_sm2_hierarchy_and_a_clear_refusal(
    tmp_path: Path,
) -> None:
    trust, engine = _domain(tmp_path, _NoSm2Store(tmp_path / "keys", b"pw"))
    with Session(engine) as session:
        assert trust.initialise(session, "operator:init") is True  # ECDSA as before
        assert not trust.sm2.is_initialised(session)
        with pytest.raises(InvalidInput, match="no SM2 keys"):
            trust.sm2.ensure(session, "operator:init")
