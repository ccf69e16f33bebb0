"""The state database schema as SQLAlchemy Core tables.

This is the schema at the head revision. The alembic scripts in ``migrations/versions`` build the
same schema step by step; a test compares the two. A fresh database is created from these tables
directly and stamped with ``HEAD_REVISION``, which keeps the first open fast.

JSON columns are plain text written with ``json.dumps``, so SQLite and PostgreSQL store the same
bytes. Times are epoch milliseconds (``BigInteger``).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "HEAD_REVISION",
    "REVISIONS",
    "alembic_version",
    "audit_log",
    "deployments",
    "job_locks",
    "jobs",
    "metadata",
    "runs",
    "task_runs",
    "task_values",
    "triggers",
]

REVISIONS: tuple[str, ...] = ("0001", "0002")
"""Every alembic revision of this lakestack, oldest first (a test checks the scripts agree)."""

HEAD_REVISION = REVISIONS[-1]

metadata = sa.MetaData()

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(255), nullable=False),
    sa.Column("bundle_name", sa.String(255), nullable=False),
    sa.Column("content_hash", sa.String(128), nullable=False),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("git_branch", sa.String(255)),
    sa.Column("deployed_by", sa.String(255), nullable=False),
    sa.Column("deployed_at", sa.BigInteger, nullable=False),
    sa.Column("job_keys", sa.Text, nullable=False),
    sa.Index("ix_deployments_target_id", "target", "id"),
    sqlite_autoincrement=True,
)

jobs = sa.Table(
    "jobs",
    metadata,
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
    sa.Index("ix_jobs_deployment_id", "deployment_id"),
)

# One row per (target, job_key), written inside claim_run's transaction: the row lock makes
# concurrent claims of one job take turns, on PostgreSQL as on SQLite.
job_locks = sa.Table(
    "job_locks",
    metadata,
    sa.Column("target", sa.String(255), primary_key=True),
    sa.Column("job_key", sa.String(255), primary_key=True),
    sa.Column("locked_at", sa.BigInteger, nullable=False),
)

# deployment_id is history, not a reference: destroying a target keeps its runs.
runs = sa.Table(
    "runs",
    metadata,
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
    sa.Index("ix_runs_job_state", "target", "job_key", "state"),
    sa.Index("ix_runs_state", "state"),
    sa.Index("ix_runs_parent_run_id", "parent_run_id"),
    sqlite_autoincrement=True,
)

task_runs = sa.Table(
    "task_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id", sa.Integer, sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False
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
    sa.Index("ix_task_runs_run_id", "run_id", "id"),
    sqlite_autoincrement=True,
)

task_values = sa.Table(
    "task_values",
    metadata,
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

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(255)),
    sa.Column("object_type", sa.String(64), nullable=False),
    sa.Column("object_id", sa.String(255), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Index("ix_audit_log_action_id", "action", "id"),
    sqlite_autoincrement=True,
)

triggers = sa.Table(
    "triggers",
    metadata,
    sa.Column("target", sa.String(255), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("fired_at", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.Integer),
)
"""Triggers that fired once (a model version's deployment run, a cron tick, an arrived file):
the primary key makes the first process to fire one the only one."""

# The table alembic keeps its revision in, declared here so a fresh database can be stamped
# without loading alembic.
alembic_version = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
