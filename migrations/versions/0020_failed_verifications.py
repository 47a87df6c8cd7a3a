"""failed verifications: what the repeated-failure alert rules count

Revision ID: 0020
Revises: 0001

Hand-written.

* ``failed_verification``: one row per verification that failed or named no licence of this
  domain, with its keyed source (never the address) and the licence it named; indexed by
  source and by licence, each with the time, so a rule counts a window with one range scan.
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0020"
down_revision = "0001"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "failed_verification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", S(length=32), nullable=True),
        sa.Column("identifier", S(length=96), nullable=True),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_failed_verification_source", "failed_verification", ["source", "at"])
    op.create_index(
        "ix_failed_verification_identifier", "failed_verification", ["identifier", "at"]
    )


def downgrade() -> None:
    op.drop_table("failed_verification")
