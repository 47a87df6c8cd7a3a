"""federation: the root each recognised domain speaks for

Revision ID: 0013
Revises: 0001
Depends on: 0009

Hand-written. ``federation_domain.root_sha256`` records the SHA-256 of the root CA a recognised
domain's pinned trust-list signer chains to; the domain's seals, TSA and CAs must chain to it
and its foreign licences are attributed to it by that root. Nullable: a domain recognised
before this revision has it taken from its stored list and recorded at its next refresh.
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0013"
down_revision = "0001"
branch_labels = None
depends_on = "0009"  # the table it alters


def upgrade() -> None:
    with op.batch_alter_table("federation_domain") as batch:
        batch.add_column(
            sa.Column("root_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("federation_domain") as batch:
        batch.drop_column("root_sha256")
