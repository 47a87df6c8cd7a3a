"""legacy conversion: the original number of a converted licence

Revision ID: 0025
Revises: 0001
Depends on: 0001

Hand-written.

* ``legacy_licence``: one row per licence converted from a department's earlier system, keyed
  by (department, type, original number) so a conversion run again finds it; the licence it
  became (unique), the original issue date and status, the digest of the record as sent (a
  changed record is a conflict) and when it was converted. ``original_number`` is indexed for
  the departments' search by the number holders still quote.
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0025"
down_revision = "0001"
branch_labels = None
depends_on = None  # licence is created by 0001, which this revision revises

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "legacy_licence",
        sa.Column("department_code", S(length=18), nullable=False),
        sa.Column("type_code", S(length=21), nullable=False),
        sa.Column("original_number", S(length=64), nullable=False),
        sa.Column("identifier", S(length=96), nullable=False),
        sa.Column("original_issue_date", sa.Date(), nullable=False),
        sa.Column("original_status", S(length=16), nullable=False),
        sa.Column("content_sha256", S(length=64), nullable=False),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["identifier"], ["licence.identifier"]),
        sa.PrimaryKeyConstraint("department_code", "type_code", "original_number"),
        sa.UniqueConstraint("identifier"),
    )
    op.create_index("ix_legacy_licence_original_number", "legacy_licence", ["original_number"])


def downgrade() -> None:
    op.drop_table("legacy_licence")
