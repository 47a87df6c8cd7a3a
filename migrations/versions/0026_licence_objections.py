"""objections (错录申诉): a holder flags a field of their licence as wrong

Revision ID: 0026
Revises: 0001

Hand-written.

* ``licence_objection``: one row per objection, with the licence and holder it is about, the
  field, the holder's comment and proposed value, and its answer (the amended version it links
  to, or the reason it was rejected). ``open_key`` (unique, NULL once answered) keeps one open
  objection per licence and field; the department's queue reads
  ``ix_licence_objection_issuer_state`` and the holder's list ``ix_licence_objection_holder``.
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0026"
down_revision = "0001"
branch_labels = None
depends_on = None  # licence and holder are created by 0001, which this revision revises

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "licence_objection",
        sa.Column("id", S(length=20), nullable=False),
        sa.Column("identifier", S(length=96), nullable=False),
        sa.Column("issuer_code", S(length=18), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("field", S(length=64), nullable=False),
        sa.Column("comment", S(length=500), nullable=False),
        sa.Column("proposed", S(length=500), nullable=True),
        sa.Column("state", S(length=16), nullable=False),
        sa.Column("open_key", S(length=100), nullable=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_by", S(length=128), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", S(length=128), nullable=True),
        sa.Column("reject_reason", S(length=500), nullable=True),
        sa.Column("amended_identifier", S(length=96), nullable=True),
        sa.ForeignKeyConstraint(["identifier"], ["licence.identifier"]),
        sa.ForeignKeyConstraint(["holder_id"], ["holder.id"]),
        sa.ForeignKeyConstraint(["amended_identifier"], ["licence.identifier"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_key"),
    )
    op.create_index("ix_licence_objection_identifier", "licence_objection", ["identifier"])
    op.create_index(
        "ix_licence_objection_issuer_state",
        "licence_objection",
        ["issuer_code", "state", "raised_at"],
    )
    op.create_index("ix_licence_objection_holder", "licence_objection", ["holder_id", "raised_at"])


def downgrade() -> None:
    op.drop_table("licence_objection")
