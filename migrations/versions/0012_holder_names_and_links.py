"""licences keep the holder name they were issued under; holder links expire

Revision ID: 0012
Revises: 0001
Depends on: 0005 (which creates ``holder_link``)

Hand-written.

* ``licence.holder_name``: the holder's name as the licence was issued under it (and as its PDF
  prints it). Filled here from the holder row, which until now every licence read; from now on a
  correction of the registered name never changes what a sealed licence shows. Nullable only so
  that the column is added without rebuilding the licence table on SQLite; every issuance
  writes it.
* ``holder_link.expires_at``: every holder link expires. Links made before this revision expire
  30 days after the upgrade, so a holder keeps a working link long enough to be given a new one.
  The secrets were already stored as SHA-256 only.
"""

from datetime import timedelta

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

from core.clock import SystemClock

revision = "0012"
down_revision = "0001"
branch_labels = None
depends_on = "0005"

EXISTING_LINKS_DAYS = 30


def upgrade() -> None:
    with op.batch_alter_table("licence", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("holder_name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )
    op.execute(
        "UPDATE licence SET holder_name = "
        "(SELECT holder.name FROM holder WHERE holder.id = licence.holder_id) "
        "WHERE holder_name IS NULL"
    )
    with op.batch_alter_table("holder_link", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    links = sa.table("holder_link", sa.column("expires_at", sa.DateTime(timezone=True)))
    op.get_bind().execute(
        links.update().values(expires_at=SystemClock().now() + timedelta(days=EXISTING_LINKS_DAYS))
    )
    with op.batch_alter_table("holder_link", schema=None) as batch_op:
        batch_op.alter_column(
            "expires_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("holder_link", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("licence", schema=None) as batch_op:
        batch_op.drop_column("holder_name")
