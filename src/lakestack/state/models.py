"""Records of the workspace state: plain frozen dataclasses, independent of the database.

Times are epoch milliseconds (UTC), as in the Databricks Jobs API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AuditRecord",
    "DeploymentRecord",
    "JobRecord",
    "RunRecord",
    "TaskRunRecord",
]


@dataclass(frozen=True)
class DeploymentRecord:
    """One ``bundle deploy`` of a target."""

    id: int
    target: str
    bundle_name: str
    content_hash: str
    git_commit: str | None
    git_branch: str | None
    deployed_by: str
    deployed_at: int
    job_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobRecord:
    """A job as deployed to a target; ``definition`` is the resolved JobSpec as a dict."""

    target: str
    job_key: str
    name: str
    definition: dict[str, Any]
    deployment_id: int
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class RunRecord:
    """One run of a job (also the child run of a ``run_job_task``)."""

    run_id: int
    target: str
    job_key: str
    job_name: str
    state: str
    state_message: str
    trigger_type: str
    parameters: dict[str, str]
    definition: dict[str, Any]
    created_by: str
    created_at: int
    start_time: int | None = None
    end_time: int | None = None
    parent_run_id: int | None = None
    parent_task_key: str | None = None
    deployment_id: int | None = None
    owner_pid: int | None = None
    owner_host: str | None = None
    heartbeat_at: int | None = None
    cancel_requested: bool = False
    repair_count: int = 0


@dataclass(frozen=True)
class TaskRunRecord:
    """One attempt of one task (or of one for-each iteration) in a run."""

    id: int
    run_id: int
    task_key: str
    attempt: int
    state: str
    iteration: int | None = None
    repair_index: int = 0
    outcome: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    exit_code: int | None = None
    error: str | None = None
    log_dir: str | None = None
    pid: int | None = None
    pid_start_time: float | None = None
    child_run_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """Who did what, when, to which object."""

    id: int
    at: int
    actor: str
    action: str
    target: str | None
    object_type: str
    object_id: str
    details: dict[str, Any] = field(default_factory=dict)
