"""licence.seal_certificate_serial: the certificate each licence was sealed with

A seal's key can now be rotated, which gives the seal a new certificate; the verifier must match
a licence against the certificate that sealed it, not the seal's current one. Licences issued
before this revision were all sealed with their seal's current certificate, so they are filled
in from it.

Revision ID: 0004
Revises: 0001
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("licence", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "seal_certificate_serial",
                sqlmodel.sql.sqltypes.AutoString(length=40),
                nullable=True,
            )
        )
    op.execute(
        "UPDATE licence SET seal_certificate_serial = "
        "(SELECT seal.certificate_serial FROM seal WHERE seal.code = licence.seal_code) "
        "WHERE seal_certificate_serial IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("licence", schema=None) as batch_op:
        batch_op.drop_column("seal_certificate_serial")
