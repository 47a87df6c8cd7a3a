"""expiry scan: an index on a licence's last day

Revision ID: 0022
Revises: 0001
Depends on: 0001

Hand-written. The daily expiry scan (``supervision.expiry``) reads the licences whose
``valid_until`` falls in a window of days — the last ``catch_up_days`` for expiry and overdue
notices, the reminder window ahead — and the alert counts a department's licences expiring
soon; ``ix_licence_valid_until`` makes each of those a range read instead of a scan of the
table.
"""

from alembic import op

revision = "0022"
down_revision = "0001"
branch_labels = None
depends_on = None  # licence is created by 0001, which this revision revises


def upgrade() -> None:
    op.create_index("ix_licence_valid_until", "licence", ["valid_until"])


def downgrade() -> None:
    op.drop_index("ix_licence_valid_until", table_name="licence")
