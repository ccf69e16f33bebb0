"""Run and task states, with the Databricks names."""

from __future__ import annotations

from enum import Enum

__all__ = ["FINAL_TASK_STATES", "RunState", "TaskState"]


class RunState(str, Enum):
    """The state of a job run."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    WAITING_FOR_APPROVAL = "WAITING_FOR_APPROVAL"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"

    @property
    def is_final(self) -> bool:
        """Whether the run has ended."""
        return self in (
            RunState.SUCCESS,
            RunState.FAILED,
            RunState.TIMEDOUT,
            RunState.CANCELED,
            RunState.SKIPPED,
        )


class TaskState(str, Enum):
    """The state of a task (its latest attempt) in a run."""

    PENDING = "PENDING"
    BLOCKED = "BLOCKED"
    RUNNING = "RUNNING"
    WAITING_FOR_RETRY = "WAITING_FOR_RETRY"
    WAITING_FOR_APPROVAL = "WAITING_FOR_APPROVAL"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEDOUT = "TIMEDOUT"
    CANCELED = "CANCELED"
    EXCLUDED = "EXCLUDED"
    SKIPPED = "SKIPPED"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    UPSTREAM_CANCELED = "UPSTREAM_CANCELED"

    @property
    def is_final(self) -> bool:
        """Whether the task has ended."""
        return self in FINAL_TASK_STATES

    @property
    def is_failure(self) -> bool:
        """Whether the task counts as failed for run_if and for the run's result."""
        return self in (TaskState.FAILED, TaskState.TIMEDOUT, TaskState.UPSTREAM_FAILED)

    @property
    def is_canceled(self) -> bool:
        """Whether the task was canceled or did not run because an upstream was."""
        return self in (TaskState.CANCELED, TaskState.UPSTREAM_CANCELED)


FINAL_TASK_STATES = frozenset(
    {
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.TIMEDOUT,
        TaskState.CANCELED,
        TaskState.EXCLUDED,
        TaskState.SKIPPED,
        TaskState.UPSTREAM_FAILED,
        TaskState.UPSTREAM_CANCELED,
    }
)
