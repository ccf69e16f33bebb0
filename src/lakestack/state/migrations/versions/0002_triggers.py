"""Triggers that fire once: deployment runs of model versions, cron ticks, arrived files.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = ["downgrade", "upgrade"]

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the triggers table."""
    op.create_table(
        "triggers",
        sa.Column("target", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("fired_at", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.Integer),
    )


def downgrade() -> None:
    """Drop the triggers table."""
    op.drop_table("triggers")
