"""The run loop: decide which tasks start, start them, watch them, record everything.

A ``RunExecution`` owns one run: a ``TaskNode`` per task that handles retries and timeouts over
attempts of any kind. The loop is single-threaded; it wakes when a task process ends (its
sentinel) or every few tens of milliseconds, and polls the state store for cancel requests.
Child runs (``run_job_task``) are driven by the same loop, so one process orchestrates a run
and all its children.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakestack.bundle.specs.jobs import JobSpec, TaskSpec
from lakestack.console import Console
from lakestack.errors import JobError, LakestackError, TaskError
from lakestack.jobs.attempts import Attempt, AttemptResult, DoneAttempt, ProcessAttempt
from lakestack.jobs.child import TaskPayload
from lakestack.jobs.condition import evaluate_condition
from lakestack.jobs.context import WAITING_KEY, TaskContext
from lakestack.jobs.deps import UpstreamResult, decide
from lakestack.jobs.executor import Executor
from lakestack.jobs.notify import Notifier
from lakestack.jobs.resolve import NO_INPUT, RefScope, TaskInfo, render, resolve_text, resolve_value
from lakestack.jobs.states import RunState, TaskState
from lakestack.state.base import StateStore
from lakestack.state.models import RunRecord, TaskRunRecord
from lakestack.utils.refs import find_refs

__all__ = ["RunEnv", "RunExecution", "approval_message", "now_ms", "waiting_details"]

PROCESS_KINDS = (
    "notebook_task",
    "spark_python_task",
    "python_file_task",
    "python_wheel_task",
    "sql_task",
)
CANCEL_POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 5.0


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    return int(time.time() * 1000)


@dataclass
class RunEnv:
    """What every run of one orchestrator process shares."""

    state: StateStore
    executor: Executor
    console: Console
    notifier: Notifier
    target: str
    bundle_root: Path
    workspace_root: Path
    user: str
    max_parallel: int
    load_job: Callable[[str], tuple[str, str, JobSpec]]
    """Resolve a job id (key) of the target to (key, name, spec); raise JobError if unknown."""
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    running: int = 0
    after_task: Callable[[], None] | None = None
    """Called after each task that succeeded (the workspace starts the deployment runs of
    model versions the task registered)."""


_ERROR_CODES = {
    TaskState.FAILED: "TaskError",
    TaskState.TIMEDOUT: "TimedOut",
    TaskState.CANCELED: "Canceled",
}
"""``{{tasks.<key>.error_code}}`` when the attempt itself gave none (a Python task gives the
class name of its exception)."""


class TaskNode:
    """One task (or one for-each iteration) of a run: its attempts, retries and timeout."""

    def __init__(
        self,
        run: RunExecution,
        spec: TaskSpec,
        *,
        iteration: int | None = None,
        input_value: Any = NO_INPUT,
        record: TaskRunRecord | None = None,
        attempt_no: int = 0,
    ) -> None:
        self.run = run
        self.spec = spec
        self.key = spec.task_key
        self.iteration = iteration
        self.input_value = input_value
        self.state = TaskState.PENDING
        self.record = record
        self.attempt_no = attempt_no
        self.retries_used = 0
        self.attempt: Attempt | None = None
        self.deadline: float | None = None
        self.retry_at: float | None = None
        self.outcome: str | None = None
        self.error: str | None = None
        self.values: dict[str, Any] = {}
        self.first_started: float | None = None
        self.duration_warned = False

    @property
    def label(self) -> str:
        return self.key if self.iteration is None else f"{self.key}[{self.iteration}]"

    def finish_without_running(self, state: TaskState, reason: str) -> None:
        """End a task that never started (excluded, upstream failed, canceled)."""
        self._set_state(state, error=reason or None, end_time=now_ms())

    def start(self, now: float) -> bool:
        """Start the next attempt; False when no process slot is free."""
        env = self.run.env
        if self.spec.kind in PROCESS_KINDS and env.running >= env.max_parallel:
            return False
        started = now_ms()
        if self.record is None or self.record.state != TaskState.PENDING.value:
            self.record = env.state.create_task_run(
                run_id=self.run.run_id,
                task_key=self.key,
                attempt=self.attempt_no,
                state=TaskState.RUNNING.value,
                iteration=self.iteration,
                repair_index=self.run.repair_index,
                start_time=started,
            )
        log_dir = self.run.attempt_dir(self.key, self.iteration, self.attempt_no)
        # recorded as RUNNING before the process exists, so that a crash in between is visible
        self._set_state(TaskState.RUNNING, start_time=started, log_dir=str(log_dir))
        self.attempt = self.run.start_attempt(self, log_dir)
        if self.attempt.uses_slot:
            env.running += 1
        self.deadline = now + self.spec.timeout_seconds if self.spec.timeout_seconds else None
        if self.attempt.pid is not None or self.attempt.child_run_id is not None:
            assert self.record is not None
            self.record = env.state.update_task_run(
                self.record.id,
                **{
                    k: v
                    for k, v in {
                        "pid": self.attempt.pid,
                        "pid_start_time": self.attempt.pid_start_time,
                        "child_run_id": self.attempt.child_run_id,
                    }.items()
                    if v is not None
                },
            )
        if self.first_started is None:
            self.first_started = now
        if self.attempt_no == 0 or not self._alert_on_last_attempt:
            self.run.notify_task("on_start", self)
        return True

    @property
    def _alert_on_last_attempt(self) -> bool:
        settings = self.spec.notification_settings
        return bool(settings and settings.alert_on_last_attempt)

    def tick(self, now: float) -> None:
        """Advance a running or retry-waiting task."""
        if self.state is TaskState.WAITING_FOR_RETRY:
            if self.retry_at is not None and now >= self.retry_at:
                if self.run.stopping:
                    self.finish_without_running(TaskState.CANCELED, "run canceled")
                else:
                    self.start(now)
            return
        if self.state is not TaskState.RUNNING or self.attempt is None:
            return
        threshold = self.spec.health.duration_threshold if self.spec.health else None
        if (
            threshold is not None
            and not self.duration_warned
            and self.first_started is not None
            and now - self.first_started > threshold
        ):
            self.duration_warned = True
            self.run.notify_task("on_duration_warning_threshold_exceeded", self)
        if self.deadline is not None and now >= self.deadline:
            self.attempt.kill(
                TaskState.TIMEDOUT, f"timed out after timeout_seconds={self.spec.timeout_seconds}"
            )
        result = self.attempt.poll()
        if result is not None:
            self._complete(result, now)

    def kill(self, state: TaskState, reason: str) -> None:
        """Stop the running attempt (cancel, job timeout)."""
        if self.state is TaskState.RUNNING and self.attempt is not None:
            self.attempt.kill(state, reason)
            result = self.attempt.poll()
            if result is not None:
                self._complete(result, time.monotonic(), allow_retry=False)
        elif self.state in (
            TaskState.PENDING,
            TaskState.WAITING_FOR_RETRY,
            TaskState.BLOCKED,
            TaskState.WAITING_FOR_APPROVAL,
        ):
            self.finish_without_running(state, reason)

    def sentinels(self) -> list[int]:
        return self.attempt.sentinels() if self.attempt and self.state is TaskState.RUNNING else []

    def _complete(self, result: AttemptResult, now: float, *, allow_retry: bool = True) -> None:
        env = self.run.env
        if self.attempt is not None and self.attempt.uses_slot:
            env.running -= 1
        self.attempt = None
        self.outcome = result.outcome
        self.error = result.error
        if result.state is TaskState.SUCCESS:
            self.values = dict(result.values)
            if result.values and self.iteration is None:
                env.state.set_task_values(self.run.run_id, self.key, result.values)
        details = dict(result.details)
        if result.state is not TaskState.SUCCESS and result.state in _ERROR_CODES:
            details.setdefault("error_code", _ERROR_CODES[result.state])
        self._set_state(
            result.state,
            end_time=now_ms(),
            exit_code=result.exit_code,
            error=result.error,
            outcome=result.outcome,
            details=details or None,
        )
        if allow_retry and not self.run.stopping and self._should_retry(result.state):
            if not self._alert_on_last_attempt:
                self.run.notify_task("on_failure", self)
            self.retries_used += 1
            self.attempt_no += 1
            self.retry_at = now + self.spec.min_retry_interval_millis / 1000
            self.record = None
            self.state = TaskState.WAITING_FOR_RETRY
            env.console.task_state(
                self.run.run_id, self.label, "WAITING_FOR_RETRY", result.error or ""
            )
            return
        event = "on_success" if result.state is TaskState.SUCCESS else "on_failure"
        if result.state.is_failure or result.state is TaskState.SUCCESS:
            self.run.notify_task(event, self)
        hook = env.after_task
        if result.state is TaskState.SUCCESS and self.spec.kind in PROCESS_KINDS and hook:
            try:
                hook()
            except LakestackError as exc:  # the run goes on; the scheduler will retry
                env.console.warning(f"after task {self.label}: {exc}")

    def _should_retry(self, state: TaskState) -> bool:
        if state is TaskState.FAILED or (
            state is TaskState.TIMEDOUT and self.spec.retry_on_timeout
        ):
            pass
        else:
            return False
        limit = self.spec.max_retries
        return limit == -1 or self.retries_used < limit

    def _set_state(self, state: TaskState, **fields: Any) -> None:
        self.state = state
        env = self.run.env
        changes = {k: v for k, v in fields.items() if v is not None}
        if self.record is None:
            self.record = env.state.create_task_run(
                run_id=self.run.run_id,
                task_key=self.key,
                attempt=self.attempt_no,
                state=state.value,
                iteration=self.iteration,
                repair_index=self.run.repair_index,
            )
        self.record = env.state.update_task_run(self.record.id, state=state.value, **changes)
        env.console.task_state(self.run.run_id, self.label, state.value, self.error or "")


class RunExecution:
    """Drives one run from RUNNING to a final state."""

    def __init__(
        self,
        env: RunEnv,
        run: RunRecord,
        job: JobSpec,
        *,
        keep: Mapping[str, TaskRunRecord] | None = None,
        kept_values: Mapping[str, dict[str, Any]] | None = None,
        pending: Mapping[str, TaskRunRecord] | None = None,
    ) -> None:
        self.env = env
        self.run_id = run.run_id
        self.record = run
        self.job = job
        self.job_key = run.job_key
        self.repair_index = run.repair_count
        self.parameters = dict(run.parameters)
        self.stopping = False
        self.finished = False
        self.result: RunState | None = None
        self.message = ""
        self._stop_state = TaskState.CANCELED
        self._stop_run_state = RunState.CANCELED
        self._deadline: float | None = None
        self._next_cancel_poll = 0.0
        self._next_heartbeat = 0.0
        self._began = time.monotonic()
        self._duration_warned = False
        self.children: list[RunExecution] = []
        self.nodes: dict[str, TaskNode] = {}
        self.kept: dict[str, TaskRunRecord] = dict(keep or {})
        for task in job.tasks:
            if task.task_key in self.kept:
                continue
            row = (pending or {}).get(task.task_key)
            self.nodes[task.task_key] = TaskNode(
                self, task, record=row, attempt_no=row.attempt if row else 0
            )
        self._kept_values = {k: dict(v) for k, v in (kept_values or {}).items()}

    # lifecycle ---------------------------------------------------------------------------

    def begin(self) -> None:
        """Record the pending tasks and announce the run (after the run was claimed)."""
        self._resolve_parameters()
        self.env.console.run_started(
            self.run_id, self.job_key, [t.task_key for t in self.job.tasks]
        )
        for key, kept in self.kept.items():
            self.env.console.task_state(self.run_id, key, kept.state, "kept from the earlier run")
        for node in self.nodes.values():
            if node.record is not None:
                continue
            node.record = self.env.state.create_task_run(
                run_id=self.run_id,
                task_key=node.key,
                attempt=node.attempt_no,
                state=TaskState.PENDING.value,
                repair_index=self.repair_index,
            )
        if self.job.timeout_seconds:
            self._deadline = time.monotonic() + self.job.timeout_seconds
        self.env.notifier.run_event("on_start", self.record, self.job)

    def _resolve_parameters(self) -> None:
        """Resolve ``{{job.start_time.iso_date}}`` and the like in parameter values, once.

        The resolved values are recorded on the run, so a repair sees the same values.
        """
        if not any(find_refs(value) for value in self.parameters.values()):
            return
        scope = RefScope(
            job_id=self.job_key,
            job_name=self.record.job_name,
            run_id=self.run_id,
            target=self.env.target,
            job_parameters={},
            tasks={},
            trigger_type=self.record.trigger_type,
            start_time_ms=self.record.start_time or self.record.created_at,
            repair_count=self.repair_index,
        )
        try:
            resolved = {k: resolve_text(v, scope) for k, v in self.parameters.items()}
        except TaskError as exc:
            raise JobError(f"job '{self.job_key}': parameters: {exc}") from None
        self.parameters = resolved
        self.record = self.env.state.update_run(self.run_id, parameters=resolved)

    def tick(self, now: float) -> None:
        """Advance every task; end the run when all tasks are final."""
        if self.finished:
            return
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + HEARTBEAT_SECONDS
            self.env.state.update_run(self.run_id, heartbeat_at=now_ms())
        if not self.stopping and now >= self._next_cancel_poll:
            self._next_cancel_poll = now + CANCEL_POLL_SECONDS
            current = self.env.state.get_run(self.run_id)
            if current is not None and current.cancel_requested:
                self.stop(TaskState.CANCELED, RunState.CANCELED, "canceled by request")
        threshold = self.job.health.duration_threshold if self.job.health else None
        if threshold is not None and not self._duration_warned and now - self._began > threshold:
            self._duration_warned = True
            self.env.notifier.run_event(
                "on_duration_warning_threshold_exceeded", self.record, self.job
            )
        if not self.stopping and self._deadline is not None and now >= self._deadline:
            self.stop(
                TaskState.TIMEDOUT,
                RunState.TIMEDOUT,
                f"job timed out after timeout_seconds={self.job.timeout_seconds}",
            )
        for node in list(self.nodes.values()):
            node.tick(now)
        for node in self.nodes.values():
            if node.state is not TaskState.PENDING:
                continue
            decision = decide(node.spec.depends_on, node.spec.run_if, self._upstream())
            if decision is None:
                continue
            if self.stopping:
                state = (
                    TaskState.UPSTREAM_CANCELED
                    if decision.state is TaskState.UPSTREAM_CANCELED
                    else TaskState.CANCELED
                )
                node.finish_without_running(state, self.message)
            elif decision.run:
                if not node.start(now):
                    break  # no free slot: the rest waits too, in order
            else:
                assert decision.state is not None
                node.finish_without_running(decision.state, decision.reason)
        if all(node.state.is_final for node in self.nodes.values()):
            self._finish()
        elif not self.stopping and self._only_approvals_left():
            self._pause()

    def stop(self, task_state: TaskState, run_state: RunState, message: str) -> None:
        """Cancel (or time out) the run: kill running tasks, start no new ones."""
        if self.stopping or self.finished:
            return
        self.stopping = True
        self._stop_state, self._stop_run_state, self.message = task_state, run_state, message
        for node in self.nodes.values():
            # what was running ends with the stop's state; what never started is canceled
            node.kill(
                task_state if node.state is TaskState.RUNNING else TaskState.CANCELED, message
            )

    def sentinels(self) -> list[int]:
        """File descriptors of running task processes (this run and its children)."""
        # a child run's processes come through the run_job_task attempt that drives it
        return [fd for node in self.nodes.values() for fd in node.sentinels()]

    def _only_approvals_left(self) -> bool:
        """Whether the run can go no further until someone approves: nothing runs or retries,
        a task waits for approval, and every pending task depends on one that waits."""
        states = {node.state for node in self.nodes.values()}
        busy = {TaskState.RUNNING, TaskState.WAITING_FOR_RETRY, TaskState.BLOCKED}
        return TaskState.WAITING_FOR_APPROVAL in states and not states & busy

    def _pause(self) -> None:
        """Leave the run in WAITING_FOR_APPROVAL; no process stays alive for it.

        Approving repairs the run: the waiting task runs again, finds the approval, and the run
        goes on from there.
        """
        waiting = [n for n in self.nodes.values() if n.state is TaskState.WAITING_FOR_APPROVAL]
        details = waiting_details(waiting[0].record)
        self.message = approval_message(waiting[0].label, details)
        self.result = RunState.WAITING_FOR_APPROVAL
        self.finished = True
        self.env.state.update_run(
            self.run_id, state=RunState.WAITING_FOR_APPROVAL.value, state_message=self.message
        )
        self.record = self.env.state.get_run(self.run_id) or self.record
        self.env.console.run_finished(
            self.run_id, RunState.WAITING_FOR_APPROVAL.value, self.message
        )

    def _finish(self) -> None:
        states = {key: node.state for key, node in self.nodes.items()}
        states.update({key: TaskState(rec.state) for key, rec in self.kept.items()})
        failed = [key for key, state in states.items() if state.is_failure]
        if self.stopping:
            result = self._stop_run_state
        elif failed:
            result = RunState.FAILED
            first = failed[0]
            node = self.nodes.get(first)
            detail = f": {node.error}" if node and node.error else ""
            self.message = f"task {first} {states[first].value}{detail}"
        elif any(state.is_canceled for state in states.values()):
            result = RunState.CANCELED
        else:
            result = RunState.SUCCESS
        self.result = result
        self.finished = True
        self.env.state.finish_run_if_active(
            self.run_id, state=result.value, message=self.message, end_time=now_ms()
        )
        self.record = self.env.state.get_run(self.run_id) or self.record
        self.env.console.run_finished(self.run_id, result.value, self.message)
        event = "on_success" if result is RunState.SUCCESS else "on_failure"
        self.env.notifier.run_event(event, self.record, self.job)

    # helpers used by nodes ---------------------------------------------------------------

    def _upstream(self) -> dict[str, UpstreamResult]:
        results = {
            key: UpstreamResult(TaskState(rec.state), rec.outcome) for key, rec in self.kept.items()
        }
        for key, node in self.nodes.items():
            results[key] = UpstreamResult(node.state, node.outcome)
        return results

    def scope(self, node: TaskNode) -> RefScope:
        """What references in ``node`` can see."""
        tasks: dict[str, TaskInfo] = {}
        for key, rec in self.kept.items():
            tasks[key] = TaskInfo(
                rec.state,
                rec.id,
                rec.attempt + 1,
                rec.outcome,
                (rec.details or {}).get("error_code"),
                self._kept_values.get(key, {}),
            )
        for key, other in self.nodes.items():
            if other.state.is_final:
                rid = other.record.id if other.record else None
                code = (other.record.details or {}).get("error_code") if other.record else None
                tasks[key] = TaskInfo(
                    other.state.value, rid, other.attempt_no + 1, other.outcome, code, other.values
                )
        return RefScope(
            job_id=self.job_key,
            job_name=self.record.job_name,
            run_id=self.run_id,
            target=self.env.target,
            job_parameters=self.parameters,
            tasks=tasks,
            trigger_type=self.record.trigger_type,
            start_time_ms=self.record.start_time or self.record.created_at,
            repair_count=self.repair_index,
            task_key=node.key,
            task_run_id=node.record.id if node.record else None,
            execution_count=node.attempt_no + 1,
            notebook_path=node.spec.notebook_task.notebook_path
            if node.spec.notebook_task
            else None,
            input=node.input_value,
        )

    def attempt_dir(self, task_key: str, iteration: int | None, attempt: int) -> Path:
        """The folder of one attempt's logs and outputs."""
        base = self.env.workspace_root / "runs" / str(self.run_id) / task_key
        if iteration is not None:
            base = base / f"iteration_{iteration}"
        path = base / f"attempt_{attempt}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start_attempt(self, node: TaskNode, log_dir: Path) -> Attempt:
        """Start one attempt of ``node``; reference errors fail the attempt."""
        from lakestack.jobs.composite import ChildRunAttempt, ForEachAttempt

        spec = node.spec
        scope = self.scope(node)
        try:
            if spec.condition_task is not None:
                cond = spec.condition_task
                left, right = resolve_text(cond.left, scope), resolve_text(cond.right, scope)
                outcome = evaluate_condition(cond.op, left, right)
                return DoneAttempt(
                    AttemptResult(
                        TaskState.SUCCESS,
                        outcome="true" if outcome else "false",
                        details={"left": left, "op": cond.op.value, "right": right},
                    )
                )
            if spec.run_job_task is not None:
                params = resolve_value(dict(spec.run_job_task.job_parameters), scope)
                job_id = resolve_text(spec.run_job_task.job_id, scope)
                return ChildRunAttempt(self, node, job_id, params)
            if spec.for_each_task is not None:
                inputs = _parse_inputs(resolve_value(spec.for_each_task.inputs, scope))
                return ForEachAttempt(self, node, inputs)
            payload = self._payload(spec, scope, log_dir)
        except LakestackError as exc:
            return DoneAttempt(AttemptResult(TaskState.FAILED, error=str(exc)))
        return ProcessAttempt(self.env.executor.start(payload), log_dir)

    def _payload(self, spec: TaskSpec, scope: RefScope, log_dir: Path) -> TaskPayload:
        env = self.env
        context = TaskContext(
            run_id=self.run_id,
            job_id=self.job_key,
            job_name=self.record.job_name,
            task_key=spec.task_key,
            attempt=scope.execution_count - 1,
            target=env.target,
            bundle_root=str(env.bundle_root),
            workspace_root=str(env.workspace_root),
            output_dir=str(log_dir),
            parameters=dict(self.parameters),
            job_parameters=dict(self.parameters),
            task_values={k: dict(v.values) for k, v in scope.tasks.items() if v.values},
            iteration=None if scope.input is NO_INPUT else _iteration_of(log_dir),
        )
        payload = TaskPayload(
            kind="python_file",
            output_dir=str(log_dir),
            log_path=str(log_dir / "output.log"),
            cwd=str(env.bundle_root),
            env={**env.environ, "LAKESTACK_TASK_CONTEXT": str(log_dir / "context.json")},
            workspace_root=str(env.workspace_root),
            timeout_seconds=spec.timeout_seconds or None,
        )
        file_task = spec.spark_python_task or spec.python_file_task
        if file_task is not None:
            payload.python_file = file_task.python_file
            payload.argv = [resolve_text(p, scope) for p in file_task.parameters]
        elif spec.python_wheel_task is not None:
            wheel = spec.python_wheel_task
            payload.kind = "python_wheel"
            payload.package_name, payload.entry_point = wheel.package_name, wheel.entry_point
            named = resolve_value(dict(wheel.named_parameters), scope)
            payload.argv = [resolve_text(p, scope) for p in wheel.parameters] + [
                f"--{k}={v}" for k, v in named.items()
            ]
            context.parameters.update(named)
        elif spec.notebook_task is not None:
            payload.kind = "notebook"
            payload.notebook_path = spec.notebook_task.notebook_path
            payload.notebook_output = str(log_dir / "notebook.ipynb")
            widgets = resolve_value(dict(spec.notebook_task.base_parameters), scope)
            widgets.update(self.parameters)  # job parameters win, as on Databricks
            payload.parameters = context.parameters = widgets
        elif spec.sql_task is not None:
            payload.kind = "sql"
            sql = spec.sql_task
            if sql.query_text is not None:
                payload.sql_text = sql.query_text
            else:
                assert sql.file is not None  # the spec requires one of them
                payload.sql_text = Path(sql.file.path).read_text(encoding="utf-8")
            params = resolve_value(dict(sql.parameters), scope)
            payload.parameters = {**self.parameters, **params}
        context.write(log_dir / "context.json")
        return payload

    def notify_task(self, event: str, node: TaskNode) -> None:
        """Send a task-level notification, if the task configures one."""
        if node.iteration is None:
            self.env.notifier.task_event(event, self.record, self.job, node.spec, node.error)


def waiting_details(record: TaskRunRecord | None) -> dict[str, Any]:
    """What a task waiting for approval waits for (``model_name``, ``model_version``...)."""
    details = (record.details or {}) if record is not None else {}
    waiting = details.get(WAITING_KEY)
    return dict(waiting) if isinstance(waiting, dict) else {}


def approval_message(task: str, details: Mapping[str, Any]) -> str:
    """One line saying what waits for whom, and the command that approves it."""
    name, version = details.get("model_name"), details.get("model_version")
    if name and version:
        return (
            f"task {task} waits for approval of model {name} version {version}; approve with: "
            f"lakestack models approve {name} {version}"
        )
    reason = details.get("message") or "a person's approval"
    return f"task {task} waits for {reason}"


def _parse_inputs(value: Any) -> list[Any]:
    from lakestack.errors import TaskError

    if isinstance(value, list):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        raise TaskError(f"for_each_task inputs is not a JSON list: {render(value)[:200]}") from None
    if not isinstance(parsed, list):
        raise TaskError(f"for_each_task inputs must be a JSON list, got {render(parsed)[:200]}")
    return parsed


def _iteration_of(log_dir: Path) -> int | None:
    name = log_dir.parent.name
    return int(name.split("_")[1]) if name.startswith("iteration_") else None
