"""A customer's archived tickets in the order they ended: continuity's latest ticket and a
history page are one index range scan.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_archived_tickets_customer_ended", "archived_tickets",
                    ["customer_id", "ended_at", "ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_archived_tickets_customer_ended", "archived_tickets")
