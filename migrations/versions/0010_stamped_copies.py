"""purpose-stamped copies (加注件)

Revision ID: 0010
Revises: 0001

Hand-written. ``stamped_copy`` keeps each copy a holder asked for: the licence version it copies,
the purpose (事项名称 and/or 事项编码) and the sentence printed on it, when it was made and by
whom, the seal and certificate that sealed it, its SHA-256 and random verification code (both
unique: the verifier finds a copy by either), and the sealed PDF itself, written in the same
transaction as the row. Nothing here alters an existing table.
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0010"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stamped_copy",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("licence_version", sa.Integer(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("service_item", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("stamp_text", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("verify_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("seal_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column(
            "seal_certificate_serial", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False
        ),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["identifier"], ["licence.identifier"]),
        sa.ForeignKeyConstraint(["seal_code"], ["seal.code"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
        sa.UniqueConstraint("verify_code"),
    )
    with op.batch_alter_table("stamped_copy", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stamped_copy_identifier"), ["identifier"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("stamped_copy", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stamped_copy_identifier"))
    op.drop_table("stamped_copy")
