"""stamped copies: room for a signed QR code

Revision ID: 0016
Revises: 0001
Depends on: 0010

Hand-written. A purpose-stamped copy's QR now carries a signed copy payload
(``licences.payload``, type COPY) with its licence's status index, as a licence's does, so it can
be verified without a network; ``stamped_copy.verify_code`` grows from 32 to 512 characters like
``licence.verify_code``. Copies made before keep their random codes (verified online).
"""

import sqlmodel  # noqa: F401
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0016"
down_revision = "0001"
branch_labels = None
depends_on = "0010"  # the table it alters


def upgrade() -> None:
    with op.batch_alter_table("stamped_copy", schema=None) as batch_op:
        batch_op.alter_column(
            "verify_code",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=32),
            type_=sqlmodel.sql.sqltypes.AutoString(length=512),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("stamped_copy", schema=None) as batch_op:
        batch_op.alter_column(
            "verify_code",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=512),
            type_=sqlmodel.sql.sqltypes.AutoString(length=32),
            existing_nullable=False,
        )
