"""Alembic environment: every table of the service, from every layer's models."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

import core.audit  # noqa: F401
import licences.archive
import licences.digests
import licences.grants
import licences.holder_links
import licences.legacy_records
import licences.models
import licences.objection_records
import licences.presentation
import licences.pulls
import licences.stamped_records
import licences.status_list_records
import licences.use_code_records  # noqa: F401
import seals.clients
import seals.models  # noqa: F401
import supervision.alert_records
import supervision.delivery_records
import supervision.failures
import supervision.outbox
import supervision.subscriptions  # noqa: F401
import trust.crl
import trust.models
import trust.sm2_records
import trust.trustlist  # noqa: F401
import verify.log  # noqa: F401

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
