"""SM2 PKI: the SM2 root and seal CA, SM2 seal certificates, their CRLs (the national form)

Revision ID: 0028
Revises: 0001

Hand-written.

* ``sm2_certificate``: SM2-with-SM3 certificates (GB/T 20518) of the SM2 CAs, their OCSP
  responders and departments' seals, as DER. A seal's row names the ECDSA seal certificate it
  follows (``follows_serial``, FK ``certificate.serial``): its revocation status is that row's.
* ``sm2_authority``: the SM2 CAs by name, each with its CRL counter and current CRL.
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0028"
down_revision = "0001"
branch_labels = None
depends_on = None  # certificate is created by 0001, which this revision revises

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "sm2_certificate",
        sa.Column("serial", S(length=40), nullable=False),
        sa.Column("role", S(length=32), nullable=False),
        sa.Column("name", S(length=128), nullable=False),
        sa.Column("issuer_serial", S(length=40), nullable=True),
        sa.Column("subject", S(length=512), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("key_ref", S(length=256), nullable=False),
        sa.Column("follows_serial", S(length=40), nullable=True),
        sa.ForeignKeyConstraint(["follows_serial"], ["certificate.serial"]),
        sa.PrimaryKeyConstraint("serial"),
    )
    with op.batch_alter_table("sm2_certificate", schema=None) as batch_op:
        for column in ("role", "name", "issuer_serial", "follows_serial"):
            batch_op.create_index(batch_op.f(f"ix_sm2_certificate_{column}"), [column])
    op.create_table(
        "sm2_authority",
        sa.Column("name", S(length=32), nullable=False),
        sa.Column("certificate_serial", S(length=40), nullable=False),
        sa.Column("crl_number", sa.Integer(), nullable=False),
        sa.Column("crl_der", sa.LargeBinary(), nullable=True),
        sa.Column("crl_next_update", sa.DateTime(timezone=True), nullable=True),
        sa.Column("crl_entries_sha256", S(length=64), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("sm2_authority")
    op.drop_table("sm2_certificate")
