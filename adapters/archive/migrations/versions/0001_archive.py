"""The archive's first schema: archived tickets and their events.

Revision ID: 0001
Revises:
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archived_tickets",
        sa.Column("ticket_id", sa.String(128), primary_key=True),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("ended_at", sa.Float, nullable=False),
        sa.Column("archived_at", sa.Float, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
    )
    op.create_index("ix_archived_tickets_customer_id", "archived_tickets", ["customer_id"])
    op.create_table(
        "archived_events",
        sa.Column("ticket_id", sa.String(128), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("cursor", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archived_events")
    op.drop_index("ix_archived_tickets_customer_id", "archived_tickets")
    op.drop_table("archived_tickets")
