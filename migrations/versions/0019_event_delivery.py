"""event delivery: departments' subscriptions, one delivery per subscription and event, the cursor

Revision ID: 0019
Revises: 0001

Hand-written.

* ``event_subscription``: a department's HTTPS endpoint and topics; deleted or disabled (410
  Gone) rows stay, so their deliveries keep their history.
* ``event_delivery``: one row per (subscription, outbox event), made by the worker as it reads
  the outbox; the signed token is kept so a retry sends the same bytes; ``claimed_until`` is the
  lease of the worker sending it. Indexed for due deliveries and for the order per licence.
* ``event_delivery_cursor``: how far fan-out has read the outbox (one row, ``fanout``).
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0019"
down_revision = "0001"
branch_labels = None
depends_on = ("0018",)  # outbox_event

S = sqlmodel.sql.sqltypes.AutoString
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "event_subscription",
        sa.Column("id", S(length=20), nullable=False),
        sa.Column("department_code", S(length=18), nullable=False),
        sa.Column("client_id", S(length=16), nullable=False),
        sa.Column("url", S(length=2048), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("starts_after", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("deleted_at", TZ, nullable=True),
        sa.Column("disabled_at", TZ, nullable=True),
        sa.Column("disabled_reason", S(length=128), nullable=True),
        sa.ForeignKeyConstraint(["department_code"], ["department.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_event_subscription_department_code", "event_subscription", ["department_code"]
    )
    op.create_table(
        "event_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", S(length=20), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("event_id", S(length=32), nullable=False),
        sa.Column("kind", S(length=48), nullable=False),
        sa.Column("licence", S(length=96), nullable=True),
        sa.Column("state", S(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("claimed_until", TZ, nullable=True),
        sa.Column("claimed_by", S(length=32), nullable=True),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", S(length=256), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(["subscription_id"], ["event_subscription.id"]),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox_event.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "outbox_id", name="uq_event_delivery_event"),
    )
    op.create_index("ix_event_delivery_due", "event_delivery", ["state", "next_attempt_at"])
    op.create_index(
        "ix_event_delivery_order", "event_delivery", ["subscription_id", "licence", "outbox_id"]
    )
    cursor = op.create_table(
        "event_delivery_cursor",
        sa.Column("name", S(length=16), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(cursor, [{"name": "fanout", "outbox_id": 0}])


def downgrade() -> None:
    op.drop_table("event_delivery_cursor")
    op.drop_table("event_delivery")
    op.drop_table("event_subscription")
