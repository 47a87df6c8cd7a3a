"""trust services: published trust lists, superseded licence digests, archive state

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24

- trust_list: every signed trust list published at /pki/trust-list, by increasing sequence.
- licence_superseded_digest: SHA-256 values a licence's PDF had before `elicence archive
  refresh` appended a document timestamp; an earlier download still verifies.
- licence_archive: per licence, the expiry of the certificate of its newest timestamp, so the
  refresh finds what is due without reading every PDF.

Service certificates (OCSP responders, TSA, trust-list signer) live in the existing
`certificate` table with new role values; `elicence init` issues them for older data dirs.
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trust_list",
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sequence"),
    )
    op.create_table(
        "licence_superseded_digest",
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.ForeignKeyConstraint(["identifier"], ["licence.identifier"]),
        sa.PrimaryKeyConstraint("sha256"),
    )
    with op.batch_alter_table("licence_superseded_digest", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_licence_superseded_digest_identifier"), ["identifier"], unique=False
        )
    op.create_table(
        "licence_archive",
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "timestamp_certificate", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True
        ),
        sa.Column("timestamp_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refresh_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["identifier"], ["licence.identifier"]),
        sa.PrimaryKeyConstraint("identifier"),
    )
    with op.batch_alter_table("licence_archive", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_licence_archive_timestamp_expires_at"),
            ["timestamp_expires_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("licence_archive", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_licence_archive_timestamp_expires_at"))
    op.drop_table("licence_archive")
    with op.batch_alter_table("licence_superseded_digest", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_licence_superseded_digest_identifier"))
    op.drop_table("licence_superseded_digest")
    op.drop_table("trust_list")
