"""Runs survive the orchestrator dying.

Every active run records the pid and host of the process that drives it, and a heartbeat. A
command that looks at runs first reconciles: a run whose owner is gone (the pid no longer exists
on this host, or was reused by a newer process; or, on another host, no heartbeat for a minute)
is marked FAILED with the reason, its leftover task processes are killed, and its unfinished
tasks are closed, so no run stays RUNNING forever and ``runs repair`` can complete it.
"""

from __future__ import annotations

import socket
import time

from lakestack.jobs.executor import kill_process_tree
from lakestack.jobs.states import TaskState
from lakestack.state.base import ACTIVE_RUN_STATES, StateStore
from lakestack.state.models import RunRecord

__all__ = ["STALE_AFTER_MS", "owner_alive", "reconcile_runs"]

STALE_AFTER_MS = 60_000


def owner_alive(run: RunRecord, *, now_ms: int | None = None) -> bool:
    """Whether the process that owns ``run`` is still there."""
    import psutil

    now = now_ms if now_ms is not None else int(time.time() * 1000)
    if run.owner_pid is None:
        return now - run.created_at < STALE_AFTER_MS
    if run.owner_host and run.owner_host != socket.gethostname():
        last = run.heartbeat_at or run.start_time or run.created_at
        return now - last < STALE_AFTER_MS
    try:
        proc = psutil.Process(run.owner_pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # a pid reused by a process started after the owner last showed up is not the owner
        # (the owner of a repaired or resumed run may be much younger than the run)
        since = max(run.created_at, run.heartbeat_at or 0)
        return proc.create_time() * 1000 <= since + 1000
    except psutil.Error:
        return False


def reconcile_runs(state: StateStore, *, run_ids: list[int] | None = None) -> list[int]:
    """Fail the active runs whose orchestrator died; return their ids."""
    if run_ids is None:
        candidates = state.list_runs(states=ACTIVE_RUN_STATES, limit=10_000)
    else:
        candidates = [r for r in (state.get_run(i) for i in run_ids) if r is not None]
        candidates = [r for r in candidates if r.state in ACTIVE_RUN_STATES]
    failed: list[int] = []
    for run in candidates:
        if run.state == "WAITING_FOR_APPROVAL" or owner_alive(run):  # paused: no owner by design
            continue
        now = int(time.time() * 1000)
        owner = f"pid {run.owner_pid} on {run.owner_host}" if run.owner_pid else "unknown"
        reason = (
            f"the orchestrator ({owner}) stopped while the run was {run.state}; "
            f"finish it with: lakestack runs repair {run.run_id}"
        )
        if not state.finish_run_if_active(run.run_id, state="FAILED", message=reason, end_time=now):
            continue
        failed.append(run.run_id)
        for task in state.list_task_runs(run.run_id):
            if TaskState(task.state).is_final:
                continue
            if task.pid:
                kill_process_tree(task.pid, task.pid_start_time)
            ended = (
                TaskState.FAILED if task.state == TaskState.RUNNING.value else TaskState.CANCELED
            )
            state.update_task_run(
                task.id, state=ended.value, end_time=now, error="the orchestrator stopped"
            )
        state.audit(
            actor="lakestack",
            action="run.orphaned",
            object_type="run",
            object_id=str(run.run_id),
            target=run.target,
            details={"reason": reason},
        )
    return failed
