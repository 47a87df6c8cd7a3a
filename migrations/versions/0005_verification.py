"""verification log, holder links, room for signed QR codes

Revision ID: 0005
Revises: 0001

Hand-written (issue 8). ``verification_log`` records every verification (time, channel, method,
result) per licence; ``holder_link`` keeps the SHA-256 of the secrets that let a holder mint
presentation codes. ``licence.verify_code`` now holds the signed QR payload (base32 COSE_Sign1,
a few hundred characters) instead of a 24-character random code, so it is widened; SQLite does
not enforce VARCHAR lengths, so only other databases are altered (no SQLite table rebuild, which
keeps this branch independent of the others that rebuild ``licence``).
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verification_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("indication", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("sub_indication", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_verification_log_identifier", "verification_log", ["identifier"], unique=False
    )
    op.create_table(
        "holder_link",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("secret_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["identifier"], ["licence.identifier"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_holder_link_identifier", "holder_link", ["identifier"], unique=False)
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "licence",
            "verify_code",
            existing_type=sa.String(length=32),
            type_=sa.String(length=512),
            existing_nullable=False,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "licence",
            "verify_code",
            existing_type=sa.String(length=512),
            type_=sa.String(length=32),
            existing_nullable=False,
        )
    op.drop_index("ix_holder_link_identifier", table_name="holder_link")
    op.drop_table("holder_link")
    op.drop_index("ix_verification_log_identifier", table_name="verification_log")
    op.drop_table("verification_log")
