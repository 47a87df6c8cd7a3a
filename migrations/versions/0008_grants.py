"""grants and pulls: a holder lets a department use a licence for one service item

Hand-written. ``licence_type.service_item_fields`` declares, per service item (事项编码), the
fields of the type it needs (existing types declare none: ``{}``); ``licence_grant`` keeps the
holder's grants (licence, department, service item, business number, last day, withdrawal);
``licence_pull`` records every pull a department made under a grant, which the holder reads as
their usage log. The column is added without rebuilding ``licence_type`` on SQLite, so this
branch stays independent of the others.

Revision ID: 0008
Revises: 0001
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "licence_type",
        sa.Column("service_item_fields", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )
    op.create_table(
        "licence_grant",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("department_code", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
        sa.Column("service_item", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("business_number", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["identifier"], ["licence.identifier"]),
        sa.ForeignKeyConstraint(["holder_id"], ["holder.id"]),
        sa.ForeignKeyConstraint(["department_code"], ["department.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_licence_grant_holder_id", "licence_grant", ["holder_id"], unique=False)
    op.create_index(
        "ix_licence_grant_licence_department",
        "licence_grant",
        ["identifier", "department_code"],
        unique=False,
    )
    op.create_table(
        "licence_pull",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("grant_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("department_code", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("service_item", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("business_number", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("what", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.ForeignKeyConstraint(["identifier"], ["licence.identifier"]),
        sa.ForeignKeyConstraint(["holder_id"], ["holder.id"]),
        sa.ForeignKeyConstraint(["grant_id"], ["licence_grant.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_licence_pull_holder_at", "licence_pull", ["holder_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_licence_pull_holder_at", table_name="licence_pull")
    op.drop_table("licence_pull")
    op.drop_index("ix_licence_grant_licence_department", table_name="licence_grant")
    op.drop_index("ix_licence_grant_holder_id", table_name="licence_grant")
    op.drop_table("licence_grant")
    with op.batch_alter_table("licence_type", schema=None) as batch_op:
        batch_op.drop_column("service_item_fields")
