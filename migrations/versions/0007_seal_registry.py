"""seal registry: department parent, seal authorisations

Seals become first-class records (GB/T 38540): a department may hold several, and each seal
says which licence types it may seal (``seal_authorisation``). Issuance picks only authorised
seals, so existing data dirs would stop issuing without a back-fill: every licence seal (type 02)
is authorised for the types it already sealed and for the types its department may issue (a
type with an empty issuer list is open to every department), which is exactly what issuance
allowed before this revision.

Revision ID: 0007
Revises: 0001
"""

import json

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("parent_code", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True)
        )
        batch_op.create_foreign_key(
            "fk_department_parent_code", "department", ["parent_code"], ["code"]
        )
    op.create_table(
        "seal_authorisation",
        sa.Column("seal_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("licence_type_code", sqlmodel.sql.sqltypes.AutoString(length=21), nullable=False),
        sa.ForeignKeyConstraint(["seal_code"], ["seal.code"]),
        sa.PrimaryKeyConstraint("seal_code", "licence_type_code"),
    )
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    pairs: set[tuple[str, str]] = set()
    for seal_code, type_code in bind.execute(
        sa.text(
            "SELECT DISTINCT licence.seal_code, licence.type_code FROM licence "
            "JOIN seal ON seal.code = licence.seal_code"
        )
    ):
        pairs.add((seal_code, type_code))
    seals = bind.execute(
        sa.text("SELECT code, department_code FROM seal WHERE seal_type = '02'")
    ).all()
    for type_code, issuer_codes in bind.execute(
        sa.text("SELECT code, issuer_codes FROM licence_type")
    ):
        issuers = json.loads(issuer_codes) if isinstance(issuer_codes, str) else issuer_codes
        for seal_code, department_code in seals:
            if not issuers or department_code in issuers:  # no list: any department issues
                pairs.add((seal_code, type_code))
    if pairs:
        table = sa.table(
            "seal_authorisation", sa.column("seal_code"), sa.column("licence_type_code")
        )
        op.bulk_insert(table, [{"seal_code": s, "licence_type_code": t} for s, t in sorted(pairs)])


def downgrade() -> None:
    op.drop_table("seal_authorisation")
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.drop_constraint("fk_department_parent_code", type_="foreignkey")
        batch_op.drop_column("parent_code")
