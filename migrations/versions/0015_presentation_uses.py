"""presentation uses: every presentation code minted, and the department that used it

Revision ID: 0015
Revises: 0001
Depends on: 0008 (which creates ``licence_pull``)

Hand-written.

* ``presentation_use``: one row per presentation code minted, keyed by the hex of its nonce:
  the licence, the service item the holder chose (NULL: show only), who minted it, its
  presented-at and expires-at, and the department that redeemed it as a use authorisation code
  (用证授权码) with the time (NULL until then).
* ``licence_pull.grant_id`` becomes nullable and ``licence_pull.use_code`` names the code a pull
  was made with: a pull is made under a grant or with a use authorisation code, and the holder's
  usage log reads both from ``licence_pull``. Existing pulls were all made under grants.
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0015"
down_revision = "0001"
branch_labels = None
depends_on = "0008"  # licence_pull, which it alters; licence and department are 0001's


def upgrade() -> None:
    op.create_table(
        "presentation_use",
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
        sa.Column("service_item", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("minted_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("presented_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_by", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["identifier"], ["licence.identifier"]),
        sa.ForeignKeyConstraint(["used_by"], ["department.code"]),
        sa.PrimaryKeyConstraint("nonce"),
    )
    with op.batch_alter_table("licence_pull", schema=None) as batch_op:
        batch_op.alter_column(
            "grant_id",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=16),
            nullable=True,
        )
        batch_op.add_column(
            sa.Column("use_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.create_foreign_key(
            "fk_licence_pull_use_code", "presentation_use", ["use_code"], ["nonce"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM licence_pull WHERE grant_id IS NULL")
    with op.batch_alter_table("licence_pull", schema=None) as batch_op:
        batch_op.drop_constraint("fk_licence_pull_use_code", type_="foreignkey")
        batch_op.drop_column("use_code")
        batch_op.alter_column(
            "grant_id",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=16),
            nullable=False,
        )
    op.drop_table("presentation_use")
