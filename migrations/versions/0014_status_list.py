"""status list: each licence's entry, and every list published

Revision ID: 0014
Revises: 0001
Depends on: 0012

Hand-written. ``licence.status_index`` is the licence's entry in the domain's signed status
list (W3C Bitstring Status List, ``licences.bitstring``), carried by its QR payload; unique,
and NULL for licences issued before this revision (their printed codes carry no index and stay
INDETERMINATE offline). ``status_list`` keeps every list signed, by sequence.
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0014"
down_revision = "0001"
branch_labels = None
depends_on = "0012"  # the licence table as 0012 left it


def upgrade() -> None:
    with op.batch_alter_table("licence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_index", sa.Integer(), nullable=True))
        batch_op.create_index("ux_licence_status_index", ["status_index"], unique=True)
    op.create_table(
        "status_list",
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sequence"),
    )


def downgrade() -> None:
    op.drop_table("status_list")
    with op.batch_alter_table("licence", schema=None) as batch_op:
        batch_op.drop_index("ux_licence_status_index")
        batch_op.drop_column("status_index")
