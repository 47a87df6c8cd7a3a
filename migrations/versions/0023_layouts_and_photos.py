"""page templates and holder photos

Revision ID: 0023
Revises: 0001
Depends on: 0001

Hand-written. A licence type may carry a page template (``licence_type.layout``, JSON, NULL for
the default page, ``licences.layout``); a licence may carry its holder's photo, kept once in a
table of its own (``licence_photo``) so the licence row and every query over it stay small.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0023"
down_revision = "0001"
branch_labels = None
depends_on = None  # licence_type and licence are created by 0001, which this revision revises


def upgrade() -> None:
    op.add_column("licence_type", sa.Column("layout", sa.JSON(), nullable=True))
    op.create_table(
        "licence_photo",
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("media_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["identifier"], ["licence.identifier"]),
        sa.PrimaryKeyConstraint("identifier"),
    )


def downgrade() -> None:
    op.drop_table("licence_photo")
    op.drop_column("licence_type", "layout")
