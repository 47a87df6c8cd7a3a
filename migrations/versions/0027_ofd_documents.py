"""OFD licences: a type's document formats and the sealed OFD of a licence

Revision ID: 0027
Revises: 0001
Depends on: 0001

Hand-written.

* ``licence_type.document_formats``: ``pdf`` (every existing type, and the default), ``ofd`` or
  ``both`` — which sealed documents the type's licences are issued as.
* ``licence_ofd``: one row per licence issued as OFD, written in the same transaction as the
  licence: the package's bytes, their SHA-256 (indexed: an uploaded OFD is found by it) and the
  serial of the SM2 seal certificate that sealed it.
"""

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0027"
down_revision = "0001"
branch_labels = None
depends_on = None  # licence_type and licence are created by 0001, which this revision revises

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.add_column(
        "licence_type",
        sa.Column("document_formats", sa.String(length=8), nullable=False, server_default="pdf"),
    )
    op.create_table(
        "licence_ofd",
        sa.Column("identifier", S(length=96), nullable=False),
        sa.Column("ofd", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", S(length=64), nullable=False),
        sa.Column("sm2_certificate_serial", S(length=40), nullable=False),
        sa.ForeignKeyConstraint(["identifier"], ["licence.identifier"]),
        sa.PrimaryKeyConstraint("identifier"),
    )
    op.create_index("ix_licence_ofd_sha256", "licence_ofd", ["sha256"])


def downgrade() -> None:
    op.drop_table("licence_ofd")
    with op.batch_alter_table("licence_type") as batch:
        batch.drop_column("document_formats")
