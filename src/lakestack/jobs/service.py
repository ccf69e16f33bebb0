"""Run, execute, repair and cancel job runs: what the workspace façade calls.

``submit`` records a run; ``execute`` claims it (respecting ``max_concurrent_runs`` and
``queue``) and drives it to the end in this process; ``repair`` re-runs what did not succeed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakestack.bundle.specs.jobs import JobSpec
from lakestack.console import Console
from lakestack.errors import JobError, RunError
from lakestack.jobs.executor import LocalExecutor, wait_any
from lakestack.jobs.notify import Notifier, NotifyConfig
from lakestack.jobs.orchestrator import RunEnv, RunExecution, now_ms
from lakestack.jobs.reconcile import reconcile_runs
from lakestack.jobs.states import RunState, TaskState
from lakestack.state.base import ACTIVE_RUN_STATES, StateStore
from lakestack.state.models import RunRecord, TaskRunRecord
from lakestack.utils.refs import check_ref, find_refs

if TYPE_CHECKING:
    from lakestack.jobs.deployments import Deployments

__all__ = ["JobService", "RunOptions", "merge_parameters"]

TICK_SECONDS = 0.05
QUEUE_POLL_SECONDS = 0.5


@dataclass
class RunOptions:
    """How this process runs jobs of one target."""

    target: str
    bundle_root: Path
    workspace_root: Path
    user: str
    max_parallel: int
    preload: list[str]
    notify: NotifyConfig
    task_env: dict[str, str] = field(default_factory=dict)


def merge_parameters(job_key: str, spec: JobSpec, given: Mapping[str, str]) -> dict[str, str]:
    """Job parameter defaults overridden by ``given``; an undeclared name is an error."""
    declared = {p.name: p.default for p in spec.parameters}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        from lakestack.errors import did_you_mean

        hint = did_you_mean(unknown[0], declared)
        suggestion = f"; did you mean '{hint}'?" if hint else ""
        raise JobError(
            f"job '{job_key}' has no parameter '{unknown[0]}' (parameters: "
            f"{', '.join(sorted(declared)) or 'none'}){suggestion}"
        )
    merged = {**declared, **given}
    for name, value in given.items():
        for ref in find_refs(value):
            problem = check_ref(ref.path, task_keys=(), upstream=(), parameters=())
            if problem is not None or ref.path.startswith(("task.", "input")):
                raise JobError(
                    f"job '{job_key}', parameter '{name}': {ref.raw} cannot be used in a job "
                    "parameter; use {{job.*}}, {{bundle.target}} or {{workspace.*}}"
                )
    return merged


class JobService:
    """Job runs of one target, driven by this process."""

    def __init__(
        self,
        state: StateStore,
        console: Console,
        options: RunOptions,
        load_job: Callable[[str], tuple[str, str, JobSpec]],
    ) -> None:
        self.state = state
        self.console = console
        self.options = options
        self.load_job = load_job
        self._executor: LocalExecutor | None = None
        self.deployments: Deployments | None = None
        """When set, deployment runs show their state on their model version."""
        self.after_task: Callable[[], None] | None = None
        """Called after each successful task of a run this service drives."""

    def warm_up(self) -> None:
        """Start the warm worker now, so that its imports overlap with other work."""
        self._local_executor().warm_up()

    def _local_executor(self) -> LocalExecutor:
        if self._executor is None:
            self._executor = LocalExecutor(self.options.preload)
        return self._executor

    def submit(
        self,
        job_key: str,
        parameters: Mapping[str, str],
        *,
        trigger_type: str = "ONE_TIME",
        deployment_id: int | None = None,
    ) -> RunRecord:
        """Record a new QUEUED run of a deployed job."""
        key, name, spec = self.load_job(job_key)
        params = merge_parameters(key, spec, parameters)
        reconcile_runs(self.state)
        run = self.state.create_run(
            target=self.options.target,
            job_key=key,
            job_name=name,
            definition=spec.model_dump(mode="json", exclude_none=True),
            parameters=params,
            trigger_type=trigger_type,
            created_by=self.options.user,
            deployment_id=deployment_id,
        )
        self.state.audit(
            actor=self.options.user,
            action="run.submit",
            object_type="run",
            object_id=str(run.run_id),
            target=self.options.target,
            details={"job": key, "parameters": params, "trigger": trigger_type},
        )
        return run

    def start_background(self, run: RunRecord, argv: list[str]) -> None:
        """Drive ``run`` in a detached process (``bundle run --no-wait``).

        The process gets its own session, so it outlives this one; its output goes to
        ``runs/<run_id>/orchestrator.log``.
        """
        log = self.options.workspace_root / "runs" / str(run.run_id) / "orchestrator.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "LAKESTACK_BUNDLE_ROOT": str(self.options.bundle_root)}
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "lakestack", *argv],
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,
        )
        # reap it when it ends, so that a long-lived caller collects no zombies
        threading.Thread(target=_reap, args=(pid,), daemon=True).start()
        self.state.update_run(
            run.run_id, owner_pid=pid, owner_host=socket.gethostname(), heartbeat_at=now_ms()
        )

    def execute(self, run_id: int) -> RunRecord:
        """Claim a QUEUED run and drive it to its end in this process."""
        run = self._get(run_id)
        if run.state != RunState.QUEUED.value:
            raise RunError(f"run {run_id} is {run.state}, not QUEUED; nothing to execute")
        spec = JobSpec.model_validate(run.definition)
        self.state.update_run(
            run_id, owner_pid=os.getpid(), owner_host=socket.gethostname(), heartbeat_at=now_ms()
        )
        kept, values, pending = self._repair_inputs(run)
        executor = self._local_executor()
        executor.warm_up()
        notifier = Notifier(
            self.state,
            self.options.notify,
            target=self.options.target,
            user=self.options.user,
            console=self.console,
        )
        env = RunEnv(
            state=self.state,
            executor=executor,
            console=self.console,
            notifier=notifier,
            target=self.options.target,
            bundle_root=self.options.bundle_root,
            workspace_root=self.options.workspace_root,
            user=self.options.user,
            max_parallel=self.options.max_parallel,
            load_job=self.load_job,
            environ={**os.environ, **self.options.task_env},
            after_task=self.after_task,
        )
        try:
            if not self._wait_for_claim(run, spec):
                ended = self._get(run_id)
                # a skipped or canceled run is a failure to the people who asked to be told
                notifier.run_event("on_failure", ended, spec)
                return ended
            claimed = self._get(run_id)
            self._record_deployment(claimed)
            execution = RunExecution(
                env, claimed, spec, keep=kept, kept_values=values, pending=pending
            )
            execution.begin()
            self._drive(execution)
        finally:
            notifier.close()
        ended = self._get(run_id)
        self._record_deployment(ended)
        return ended

    def _record_deployment(self, run: RunRecord) -> None:
        if self.deployments is not None:
            self.deployments.record(run)

    def repair(self, run_id: int, *, tasks: Iterable[str] = ()) -> RunRecord:
        """Queue a finished run again to re-run what did not succeed (and ``tasks``)."""
        reconcile_runs(self.state, run_ids=[run_id])
        run = self._get(run_id)
        if run.state in ACTIVE_RUN_STATES and run.state != RunState.WAITING_FOR_APPROVAL.value:
            raise RunError(
                f"run {run_id} is {run.state}; wait for it to end or cancel it first "
                f"(lakestack runs cancel {run_id})"
            )
        if run.parent_run_id is not None:
            raise RunError(
                f"run {run_id} is a child run of run {run.parent_run_id}; repair the parent "
                f"(lakestack runs repair {run.parent_run_id})"
            )
        spec = JobSpec.model_validate(run.definition)
        keys = [t.task_key for t in spec.tasks]
        explicit = list(tasks)
        for key in explicit:
            if key not in keys:
                raise RunError(f"run {run_id} has no task '{key}' (tasks: {', '.join(keys)})")
        rerun = self._rerun_set(run, spec, explicit)
        if not rerun:
            raise RunError(
                f"run {run_id} succeeded; nothing to repair (name tasks to re-run with --task)"
            )
        # one process wins a run (an approval and a scheduler resuming it at once)
        if not self.state.update_run_if(
            run_id,
            [run.state],
            state=RunState.QUEUED.value,
            state_message="",
            end_time=None,
            cancel_requested=False,
            repair_count=run.repair_count + 1,
            owner_pid=os.getpid(),
            owner_host=socket.gethostname(),
            heartbeat_at=now_ms(),
        ):
            raise RunError(
                f"run {run_id} changed while it was being repaired (another process resumed or "
                f"repaired it); see it with: lakestack runs get {run_id}"
            )
        self.state.clear_task_values(run_id, rerun)
        self._close_paused_children(run_id)
        next_attempt: dict[str, int] = {}
        for rec in self.state.list_task_runs(run_id):
            if rec.iteration is None:
                next_attempt[rec.task_key] = max(next_attempt.get(rec.task_key, 0), rec.attempt + 1)
        for key in keys:
            if key in rerun:
                self.state.create_task_run(
                    run_id=run_id,
                    task_key=key,
                    attempt=next_attempt.get(key, 0),
                    state=TaskState.PENDING.value,
                    repair_index=run.repair_count + 1,
                )
        self.state.audit(
            actor=self.options.user,
            action="run.repair",
            object_type="run",
            object_id=str(run_id),
            target=run.target,
            details={"tasks": sorted(rerun), "repair": run.repair_count + 1},
        )
        return self._get(run_id)

    def cancel(self, run_id: int) -> RunRecord:
        """Ask the orchestrator of an active run to cancel it (or cancel a queued run now)."""
        reconcile_runs(self.state, run_ids=[run_id])
        run = self._get(run_id)
        if run.state not in ACTIVE_RUN_STATES:
            raise RunError(f"run {run_id} already ended ({run.state}); nothing to cancel")
        if run.state == RunState.WAITING_FOR_APPROVAL.value:  # nobody drives it: end it here
            self._end_paused(run_id, RunState.CANCELED, f"canceled by {self.options.user}")
        else:
            self.state.update_run(run_id, cancel_requested=True)
        self.state.audit(
            actor=self.options.user,
            action="run.cancel",
            object_type="run",
            object_id=str(run_id),
            target=run.target,
        )
        return self._get(run_id)

    def paused(self) -> list[tuple[RunRecord, dict[str, Any]]]:
        """Runs paused for approval (outermost run, oldest first) and what each waits for."""
        from lakestack.jobs.orchestrator import waiting_details

        found: dict[tuple[int, str], tuple[RunRecord, dict[str, Any]]] = {}
        paused = self.state.list_runs(states=(RunState.WAITING_FOR_APPROVAL.value,), limit=10_000)
        for run in paused:
            for task in _latest_task_runs(self.state.list_task_runs(run.run_id)).values():
                if task.state == TaskState.WAITING_FOR_APPROVAL.value:
                    details = waiting_details(task)
                    root = self._root(run)
                    key = (root.run_id, repr(sorted(details.items())))
                    found.setdefault(key, (root, details))
        return [found[k] for k in sorted(found)]

    def waiting_runs(self, model_name: str, model_version: int | str) -> list[RunRecord]:
        """The paused runs (outermost, oldest first) that wait for approval of this version."""
        runs: dict[int, RunRecord] = {}
        for run, details in self.paused():
            same_model = str(details.get("model_name", "")).lower() == model_name.lower()
            if same_model and str(details.get("model_version")) == str(model_version):
                runs[run.run_id] = run
        return [runs[k] for k in sorted(runs)]

    def end_paused(self, run_id: int, state: RunState, message: str) -> RunRecord:
        """End a run paused for approval (a rejection): its waiting tasks end with ``state``."""
        run = self._get(run_id)
        if run.state != RunState.WAITING_FOR_APPROVAL.value:
            raise RunError(f"run {run_id} is {run.state}, not WAITING_FOR_APPROVAL")
        self._end_paused(run_id, state, message)
        return self._get(run_id)

    # internals -----------------------------------------------------------------------------

    def _root(self, run: RunRecord) -> RunRecord:
        while run.parent_run_id is not None:
            parent = self.state.get_run(run.parent_run_id)
            if parent is None:
                break
            run = parent
        return run

    def _end_paused(self, run_id: int, state: RunState, message: str) -> None:
        now = now_ms()
        if not self.state.finish_run_if_active(
            run_id, state=state.value, message=message, end_time=now
        ):
            return
        task_state = TaskState.FAILED if state is RunState.FAILED else TaskState.CANCELED
        for task in self.state.list_task_runs(run_id):
            if task.state == TaskState.WAITING_FOR_APPROVAL.value:
                self.state.update_task_run(
                    task.id, state=task_state.value, end_time=now, error=message
                )
            elif task.state == TaskState.PENDING.value:
                self.state.update_task_run(
                    task.id, state=TaskState.CANCELED.value, end_time=now, error=message
                )
            if task.child_run_id is not None:
                child = self.state.get_run(task.child_run_id)
                if child is not None and child.state == RunState.WAITING_FOR_APPROVAL.value:
                    self._end_paused(child.run_id, state, message)
        self._record_deployment(self._get(run_id))
        self.state.audit(
            actor=self.options.user,
            action="run.end_paused",
            object_type="run",
            object_id=str(run_id),
            target=self.options.target,
            details={"state": state.value, "message": message},
        )

    def _close_paused_children(self, run_id: int) -> None:
        """Child runs left paused by a run_job_task that a repair runs again are superseded."""
        for task in self.state.list_task_runs(run_id):
            if task.child_run_id is None:
                continue
            child = self.state.get_run(task.child_run_id)
            if child is not None and child.state == RunState.WAITING_FOR_APPROVAL.value:
                self._end_paused(
                    child.run_id, RunState.CANCELED, f"superseded by the repair of run {run_id}"
                )

    def _get(self, run_id: int) -> RunRecord:
        run = self.state.get_run(run_id)
        if run is None:
            raise RunError(f"run {run_id} does not exist; list runs with: lakestack runs list")
        return run

    def _wait_for_claim(self, run: RunRecord, spec: JobSpec) -> bool:
        announced = False
        while True:
            claimed = self.state.claim_run(
                run.run_id,
                max_concurrent_runs=spec.max_concurrent_runs,
                pid=os.getpid(),
                host=socket.gethostname(),
            )
            if claimed:
                return True
            limit = (
                f"job {run.job_key} already has "
                f"max_concurrent_runs={spec.max_concurrent_runs} active runs"
            )
            current = self._get(run.run_id)
            if not (spec.queue and spec.queue.enabled) or current.cancel_requested:
                state = RunState.CANCELED if current.cancel_requested else RunState.SKIPPED
                message = (
                    "canceled while queued" if current.cancel_requested else f"skipped: {limit}"
                )
                self.state.finish_run_if_active(
                    run.run_id, state=state.value, message=message, end_time=now_ms()
                )
                self.console.run_finished(run.run_id, state.value, message)
                return False
            if not announced:
                self.console.info(f"Run {run.run_id} queued: {limit}")
                announced = True
            reconcile_runs(self.state)
            self.state.update_run(run.run_id, heartbeat_at=now_ms())
            time.sleep(QUEUE_POLL_SECONDS)

    def _drive(self, execution: RunExecution) -> None:
        interrupted: list[int] = []

        def on_signal(signum: int, _frame: Any) -> None:
            interrupted.append(signum)

        previous = {}
        if _is_main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            while not execution.finished:
                if interrupted and not execution.stopping:
                    name = signal.Signals(interrupted[0]).name
                    execution.stop(TaskState.CANCELED, RunState.CANCELED, f"canceled by {name}")
                execution.tick(time.monotonic())
                if not execution.finished:
                    wait_any(execution.sentinels(), TICK_SECONDS)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _rerun_set(self, run: RunRecord, spec: JobSpec, explicit: list[str]) -> set[str]:
        latest = _latest_task_runs(self.state.list_task_runs(run.run_id))
        from lakestack.utils.dag import DAG

        dag: DAG[str] = DAG({t.task_key: [d.task_key for d in t.depends_on] for t in spec.tasks})
        seeds = {
            key
            for key in dag.nodes
            if key not in latest
            or latest[key].state not in (TaskState.SUCCESS.value, TaskState.EXCLUDED.value)
        }
        seeds.update(explicit)
        rerun = set(seeds)
        for key in seeds:
            rerun |= dag.descendants(key)
        return rerun

    def _repair_inputs(
        self, run: RunRecord
    ) -> tuple[dict[str, TaskRunRecord], dict[str, dict[str, Any]], dict[str, TaskRunRecord]]:
        """For a repair: the task runs kept, their values, and the PENDING rows to re-run."""
        if run.repair_count == 0:
            return {}, {}, {}
        latest = _latest_task_runs(self.state.list_task_runs(run.run_id))
        pending = {
            key: rec
            for key, rec in latest.items()
            if rec.state == TaskState.PENDING.value and rec.repair_index == run.repair_count
        }
        kept = {key: rec for key, rec in latest.items() if key not in pending}
        values = self.state.get_task_values(run.run_id)
        return kept, {k: v for k, v in values.items() if k in kept}, pending


def _latest_task_runs(records: list[TaskRunRecord]) -> dict[str, TaskRunRecord]:
    latest: dict[str, TaskRunRecord] = {}
    for rec in records:
        if rec.iteration is None and (
            rec.task_key not in latest or rec.id > latest[rec.task_key].id
        ):
            latest[rec.task_key] = rec
    return latest


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _is_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
