"""federation: recognised trust domains and licence type mappings

Revision ID: 0009
Revises: 0001

Hand-written. ``federation_domain`` keeps each recognised domain's trust-list URL, the pinned
SHA-256 of its signer certificate and the last list accepted (sequence, fetch time,
next_update); ``federation_type_map`` maps a foreign licence type to a local one. New tables
only, so this branch is independent of the others.
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0009"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_domain",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "federation_type_map",
        sa.Column("domain_name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("foreign_type", sqlmodel.sql.sqltypes.AutoString(length=21), nullable=False),
        sa.Column("local_type", sqlmodel.sql.sqltypes.AutoString(length=21), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["domain_name"], ["federation_domain.name"]),
        sa.PrimaryKeyConstraint("domain_name", "foreign_type"),
    )


def downgrade() -> None:
    op.drop_table("federation_type_map")
    op.drop_table("federation_domain")
