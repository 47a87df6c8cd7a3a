"""client scopes and audit checkpoints

Revision ID: 0006
Revises: 0001
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None

DEFAULT_SCOPES = '["licences:issue", "licences:manage", "catalogue:write", "licences:pull"]'


def upgrade() -> None:
    with op.batch_alter_table("api_client", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "scopes", sa.JSON(), nullable=False, server_default=sa.text(f"'{DEFAULT_SCOPES}'")
            )
        )
    op.create_table(
        "audit_checkpoint",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_ref", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoint")
    with op.batch_alter_table("api_client", schema=None) as batch_op:
        batch_op.drop_column("scopes")
