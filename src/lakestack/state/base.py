"""The workspace state interfaces.

Readers (``runs list``, ``runs get``, a future UI) depend on ``StateReader``; the orchestrator and
``bundle deploy`` get the read-write ``StateStore``. ``SqlStateStore`` implements both over
SQLAlchemy (SQLite by default, PostgreSQL for teams); every process opens its own store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

from lakestack.state.models import (
    AuditRecord,
    DeploymentRecord,
    JobRecord,
    RunRecord,
    TaskRunRecord,
)

__all__ = ["ACTIVE_RUN_STATES", "StateReader", "StateStore"]

ACTIVE_RUN_STATES = ("QUEUED", "PENDING", "RUNNING", "WAITING_FOR_APPROVAL")
"""Run states that are not final: a run in one of these has (or waits for) an owner."""


class StateReader(ABC):
    """Read-only access to the workspace state."""

    @abstractmethod
    def last_deployment(self, target: str) -> DeploymentRecord | None:
        """The most recent deployment of ``target``."""

    @abstractmethod
    def list_deployments(
        self, target: str | None = None, *, limit: int = 50
    ) -> list[DeploymentRecord]:
        """Deployments, newest first."""

    @abstractmethod
    def get_job(self, target: str, job_key: str) -> JobRecord | None:
        """The deployed job, or None."""

    @abstractmethod
    def list_jobs(self, target: str) -> list[JobRecord]:
        """The jobs deployed to ``target``, by key."""

    @abstractmethod
    def get_run(self, run_id: int) -> RunRecord | None:
        """One run, or None."""

    @abstractmethod
    def list_runs(
        self,
        *,
        target: str | None = None,
        job_key: str | None = None,
        states: Iterable[str] | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        """Runs, newest first."""

    @abstractmethod
    def list_task_runs(self, run_id: int) -> list[TaskRunRecord]:
        """Every attempt of every task of the run, oldest first."""

    @abstractmethod
    def get_task_values(self, run_id: int) -> dict[str, dict[str, Any]]:
        """Task values of the run: ``{task_key: {key: value}}``."""

    @abstractmethod
    def list_audit(self, *, action: str | None = None, limit: int = 100) -> list[AuditRecord]:
        """Audit log entries, newest first."""


class StateStore(StateReader):
    """Read-write access to the workspace state."""

    @abstractmethod
    def record_deployment(
        self,
        *,
        target: str,
        bundle_name: str,
        content_hash: str,
        git_commit: str | None,
        git_branch: str | None,
        user: str,
        jobs: Mapping[str, tuple[str, dict[str, Any]]],
    ) -> DeploymentRecord:
        """Record a deployment and make ``jobs`` ({key: (name, definition)}) the target's jobs.

        Jobs of the target that are not in ``jobs`` are removed. One transaction; audited.
        """

    @abstractmethod
    def destroy_target(self, target: str, *, user: str) -> list[str]:
        """Remove the target's jobs and deployments (runs are kept); return the job keys."""

    @abstractmethod
    def create_run(
        self,
        *,
        target: str,
        job_key: str,
        job_name: str,
        definition: dict[str, Any],
        parameters: Mapping[str, str],
        trigger_type: str,
        created_by: str,
        parent_run_id: int | None = None,
        parent_task_key: str | None = None,
        deployment_id: int | None = None,
        state: str = "QUEUED",
    ) -> RunRecord:
        """Create a run in state ``state``."""

    @abstractmethod
    def claim_run(self, run_id: int, *, max_concurrent_runs: int, pid: int, host: str) -> bool:
        """Move a QUEUED run to RUNNING if fewer than ``max_concurrent_runs`` runs of its job
        are RUNNING (child runs of run_job_task count too); record the owner. Atomic across
        processes. Return whether the run was claimed."""

    @abstractmethod
    def update_run(self, run_id: int, **fields: Any) -> RunRecord:
        """Set fields of a run (state, state_message, start_time, end_time, owner_pid,
        owner_host, heartbeat_at, cancel_requested, repair_count)."""

    @abstractmethod
    def update_run_if(self, run_id: int, states: Iterable[str], **fields: Any) -> bool:
        """Atomically set fields of a run that is in one of ``states``; False if it was not
        (two processes resuming one paused run: one wins)."""

    @abstractmethod
    def finish_run_if_active(self, run_id: int, *, state: str, message: str, end_time: int) -> bool:
        """Atomically end a run that is still active; return False if it had already ended."""

    @abstractmethod
    def create_task_run(
        self,
        *,
        run_id: int,
        task_key: str,
        attempt: int,
        state: str,
        iteration: int | None = None,
        repair_index: int = 0,
        log_dir: str | None = None,
        start_time: int | None = None,
    ) -> TaskRunRecord:
        """Record a new task attempt."""

    @abstractmethod
    def update_task_run(self, task_run_id: int, **fields: Any) -> TaskRunRecord:
        """Set fields of a task attempt (state, outcome, start_time, end_time, exit_code, error,
        log_dir, pid, pid_start_time, child_run_id, details)."""

    @abstractmethod
    def set_task_values(self, run_id: int, task_key: str, values: Mapping[str, Any]) -> None:
        """Upsert task values (JSON-serialisable) of a task."""

    @abstractmethod
    def clear_task_values(self, run_id: int, task_keys: Iterable[str]) -> None:
        """Forget the values of these tasks (before a repair re-runs them)."""

    @abstractmethod
    def claim_trigger(self, target: str, key: str) -> bool:
        """Record that the trigger ``key`` fired; False if some process recorded it first.

        The first caller wins across processes, so a model version starts one deployment run
        and a cron tick one run, however many schedulers and registrations race.
        """

    @abstractmethod
    def release_trigger(self, target: str, key: str) -> None:
        """Forget that ``key`` fired (its run could not start), so that it can fire again."""

    @abstractmethod
    def set_trigger_run(self, target: str, key: str, run_id: int) -> None:
        """Note the run a claimed trigger started."""

    @abstractmethod
    def audit(
        self,
        *,
        actor: str,
        action: str,
        object_type: str,
        object_id: str,
        target: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an audit log entry."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
