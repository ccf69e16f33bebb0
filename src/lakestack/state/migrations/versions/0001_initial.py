"""The initial state schema: deployments, jobs, job locks, runs, task runs, values, audit log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = ["downgrade", "upgrade"]

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("bundle_name", sa.String(255), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("git_commit", sa.String(64)),
        sa.Column("git_branch", sa.String(255)),
        sa.Column("deployed_by", sa.String(255), nullable=False),
        sa.Column("deployed_at", sa.BigInteger, nullable=False),
        sa.Column("job_keys", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_deployments_target_id", "deployments", ["target", "id"])
    op.create_table(
        "jobs",
        sa.Column("target", sa.String(255), primary_key=True),
        sa.Column("job_key", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column(
            "deployment_id",
            sa.Integer,
            sa.ForeignKey("deployments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_jobs_deployment_id", "jobs", ["deployment_id"])
    op.create_table(
        "job_locks",
        sa.Column("target", sa.String(255), primary_key=True),
        sa.Column("job_key", sa.String(255), primary_key=True),
        sa.Column("locked_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("job_key", sa.String(255), nullable=False),
        sa.Column("job_name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("state_message", sa.Text, nullable=False),
        sa.Column("trigger_type", sa.String(32), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("start_time", sa.BigInteger),
        sa.Column("end_time", sa.BigInteger),
        sa.Column("parent_run_id", sa.Integer, sa.ForeignKey("runs.run_id")),
        sa.Column("parent_task_key", sa.String(255)),
        sa.Column("deployment_id", sa.Integer),
        sa.Column("owner_pid", sa.Integer),
        sa.Column("owner_host", sa.String(255)),
        sa.Column("heartbeat_at", sa.BigInteger),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("repair_count", sa.Integer, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_runs_job_state", "runs", ["target", "job_key", "state"])
    op.create_index("ix_runs_state", "runs", ["state"])
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])
    op.create_table(
        "task_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.Integer,
            sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("task_key", sa.String(255), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("iteration", sa.Integer),
        sa.Column("repair_index", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(32)),
        sa.Column("start_time", sa.BigInteger),
        sa.Column("end_time", sa.BigInteger),
        sa.Column("exit_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("log_dir", sa.Text),
        sa.Column("pid", sa.Integer),
        sa.Column("pid_start_time", sa.Float),
        sa.Column("child_run_id", sa.Integer),
        sa.Column("details", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_runs_run_id", "task_runs", ["run_id", "id"])
    op.create_table(
        "task_values",
        sa.Column(
            "run_id",
            sa.Integer,
            sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("task_key", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255)),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(255), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_log_action_id", "audit_log", ["action", "id"])


def downgrade() -> None:
    """Drop every table."""
    for table in ("audit_log", "task_values", "task_runs", "runs", "job_locks", "jobs"):
        op.drop_table(table)
    op.drop_table("deployments")
