"""outbox and alerts: events written with the changes they report, and the supervisors' alerts

Revision ID: 0018
Revises: 0001

Hand-written.

* ``outbox_event``: one row per event (a licence's status change, an alert, an expiry or a
  reminder), inserted in the transaction of the change; ``id`` orders delivery, ``event_id`` is
  what receivers deduplicate on, ``dedupe`` keeps an event a scan emits to one row.
* ``alert``: one row per open alert of a rule for a subject, counted up while open, closed by a
  supervisor's acknowledgement with a comment.
"""

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0018"
down_revision = "0001"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", S(length=32), nullable=False),
        sa.Column("kind", S(length=48), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("licence", S(length=96), nullable=True),
        sa.Column("department_code", S(length=18), nullable=True),
        sa.Column("type_code", S(length=21), nullable=True),
        sa.Column("audit_seq", sa.Integer(), nullable=True),
        sa.Column("dedupe", S(length=160), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
        sa.UniqueConstraint("dedupe"),
    )
    op.create_index("ix_outbox_event_kind", "outbox_event", ["kind"])
    op.create_index("ix_outbox_event_department_code", "outbox_event", ["department_code"])
    op.create_index("ix_outbox_event_licence", "outbox_event", ["licence", "id"])
    op.create_table(
        "alert",
        sa.Column("id", S(length=20), nullable=False),
        sa.Column("rule", S(length=48), nullable=False),
        sa.Column("severity", S(length=16), nullable=False),
        sa.Column("department_code", S(length=18), nullable=True),
        sa.Column("subject", S(length=128), nullable=False),
        sa.Column("summary", S(length=512), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", S(length=128), nullable=True),
        sa.Column("comment", S(length=1024), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_rule", "alert", ["rule"])
    op.create_index("ix_alert_department_code", "alert", ["department_code"])
    op.create_index("ix_alert_open_subject", "alert", ["rule", "subject", "acknowledged_at"])


def downgrade() -> None:
    op.drop_table("alert")
    op.drop_table("outbox_event")
