"""anchored audit checkpoints: continuous numbers and TSA tokens

Revision ID: 0011
Revises: 0001
Depends on: 0006 (which creates ``audit_checkpoint``)

Hand-written. Each checkpoint gets a ``number`` (1, 2, 3 … in entry order, unique), so a deleted
checkpoint leaves a gap that ``elicence audit verify`` reports, and a ``timestamp_token`` (the
DER RFC 3161 token of the domain's TSA over the numbered checkpoint). Checkpoints already made
are numbered here in entry order and keep no token: they were signed over the first message
form, which the verifier still accepts for a checkpoint without a token.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0001"
branch_labels = None
depends_on = "0006"


def upgrade() -> None:
    with op.batch_alter_table("audit_checkpoint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("timestamp_token", sa.LargeBinary(), nullable=True))
    connection = op.get_bind()
    seqs = [row[0] for row in connection.execute(sa.text("SELECT seq FROM audit_checkpoint ORDER BY seq"))]
    for number, seq in enumerate(seqs, start=1):
        connection.execute(
            sa.text("UPDATE audit_checkpoint SET number = :number WHERE seq = :seq"),
            {"number": number, "seq": seq},
        )
    with op.batch_alter_table("audit_checkpoint", schema=None) as batch_op:
        batch_op.alter_column("number", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint("uq_audit_checkpoint_number", ["number"])


def downgrade() -> None:
    with op.batch_alter_table("audit_checkpoint", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_checkpoint_number", type_="unique")
        batch_op.drop_column("timestamp_token")
        batch_op.drop_column("number")
