"""Attempts made of other runs or tasks: ``run_job_task`` and ``for_each_task``."""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

from lakestack.errors import JobError
from lakestack.jobs.attempts import Attempt, AttemptResult
from lakestack.jobs.resolve import render
from lakestack.jobs.states import RunState, TaskState

if TYPE_CHECKING:
    from lakestack.jobs.orchestrator import RunExecution, TaskNode

__all__ = ["ChildRunAttempt", "ForEachAttempt"]

CLAIM_POLL_SECONDS = 0.5


class ChildRunAttempt(Attempt):
    """Run another job as a child run of this one and wait for it."""

    def __init__(
        self, parent: RunExecution, node: TaskNode, job_id: str, params: dict[str, Any]
    ) -> None:
        env = parent.env
        key, name, spec = env.load_job(job_id)
        if key == parent.job_key:
            raise JobError(f"run_job_task in job '{key}' runs the same job; that would never end")
        declared = {p.name: p.default for p in spec.parameters}
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise JobError(
                f"run_job_task passes job_parameters {', '.join(unknown)} that job '{key}' "
                "does not "
                f"declare (it declares: {', '.join(sorted(declared)) or 'none'})"
            )
        self._parent = parent
        self._spec = spec
        self._key = key
        record = env.state.create_run(
            target=env.target,
            job_key=key,
            job_name=name,
            definition=spec.model_dump(mode="json", exclude_none=True),
            parameters={**declared, **{k: render(v) for k, v in params.items()}},
            trigger_type="RUN_JOB_TASK",
            created_by=env.user,
            parent_run_id=parent.run_id,
            parent_task_key=node.key,
        )
        env.state.update_run(record.run_id, owner_pid=os.getpid(), owner_host=socket.gethostname())
        self.child_run_id = record.run_id
        self._child_id: int = record.run_id
        self._child: RunExecution | None = None
        self._next_claim = 0.0
        self._result: AttemptResult | None = None
        self._killed: tuple[TaskState, str] | None = None

    def sentinels(self) -> list[int]:
        return self._child.sentinels() if self._child else []

    def poll(self) -> AttemptResult | None:
        if self._result is not None:
            return self._result
        now = time.monotonic()
        if self._child is None:
            if self._killed is not None:
                self._end_unclaimed(RunState.CANCELED, self._killed[1])
                return self._result
            if now < self._next_claim or not self._claim():
                return None
        assert self._child is not None
        self._child.tick(now)
        if not self._child.finished:
            return None
        state = self._child.result or RunState.FAILED
        if self._killed is not None:
            self._result = AttemptResult(self._killed[0], error=self._killed[1])
        elif state is RunState.WAITING_FOR_APPROVAL:
            from lakestack.jobs.context import WAITING_KEY
            from lakestack.jobs.orchestrator import waiting_details

            waiting = [
                n for n in self._child.nodes.values() if n.state is TaskState.WAITING_FOR_APPROVAL
            ]
            self._result = AttemptResult(
                TaskState.WAITING_FOR_APPROVAL,
                details={
                    "child_run_id": self.child_run_id,
                    WAITING_KEY: waiting_details(waiting[0].record) if waiting else {},
                },
            )
        elif state is RunState.SUCCESS:
            self._result = AttemptResult(
                TaskState.SUCCESS, details={"child_run_id": self.child_run_id}
            )
        else:
            message = f": {self._child.message}" if self._child.message else ""
            self._result = AttemptResult(
                TaskState.TIMEDOUT if state is RunState.TIMEDOUT else TaskState.FAILED,
                error=f"run {self.child_run_id} of job {self._key} {state.value}{message}",
                details={"child_run_id": self.child_run_id},
            )
        return self._result

    def kill(self, state: TaskState, reason: str) -> None:
        self._killed = (state, reason)
        if self._child is not None and not self._child.finished:
            self._child.stop(TaskState.CANCELED, RunState.CANCELED, reason)
            self._child.tick(time.monotonic())

    def _claim(self) -> bool:
        from lakestack.jobs.orchestrator import RunExecution

        env = self._parent.env
        self._next_claim = time.monotonic() + CLAIM_POLL_SECONDS
        claimed = env.state.claim_run(
            self._child_id,
            max_concurrent_runs=self._spec.max_concurrent_runs,
            pid=os.getpid(),
            host=socket.gethostname(),
        )
        if not claimed:
            if not (self._spec.queue and self._spec.queue.enabled):
                self._end_unclaimed(
                    RunState.SKIPPED,
                    f"job {self._key} already has max_concurrent_runs="
                    f"{self._spec.max_concurrent_runs} active runs",
                )
            return False
        record = env.state.get_run(self._child_id)
        assert record is not None
        self._child = RunExecution(env, record, self._spec)
        self._parent.children.append(self._child)
        self._child.begin()
        return True

    def _end_unclaimed(self, state: RunState, message: str) -> None:
        from lakestack.jobs.orchestrator import now_ms

        env = self._parent.env
        env.state.finish_run_if_active(
            self._child_id, state=state.value, message=message, end_time=now_ms()
        )
        task_state = TaskState.CANCELED if state is RunState.CANCELED else TaskState.FAILED
        self._result = AttemptResult(
            task_state, error=f"run {self.child_run_id} of job {self._key} {state.value}: {message}"
        )


class ForEachAttempt(Attempt):
    """Run the nested task once per input, ``concurrency`` at a time."""

    def __init__(self, parent: RunExecution, node: TaskNode, inputs: list[Any]) -> None:
        from lakestack.jobs.orchestrator import TaskNode

        assert node.spec.for_each_task is not None
        loop = node.spec.for_each_task
        nested = loop.task.model_copy(update={"task_key": node.key, "depends_on": []})
        self._concurrency = loop.concurrency
        # a repaired loop continues each iteration's attempt numbering: logs are never overwritten
        next_attempt: dict[int, int] = {}
        for row in parent.env.state.list_task_runs(parent.run_id):
            if row.task_key == node.key and row.iteration is not None:
                next_attempt[row.iteration] = max(
                    next_attempt.get(row.iteration, 0), row.attempt + 1
                )
        self._nodes = [
            TaskNode(
                parent,
                nested,
                iteration=i,
                input_value=item,
                attempt_no=next_attempt.get(i, 0),
            )
            for i, item in enumerate(inputs)
        ]
        self._result: AttemptResult | None = None
        self._killed: tuple[TaskState, str] | None = None

    def sentinels(self) -> list[int]:
        return [fd for node in self._nodes for fd in node.sentinels()]

    def poll(self) -> AttemptResult | None:
        if self._result is not None:
            return self._result
        now = time.monotonic()
        for node in self._nodes:
            node.tick(now)
        active = sum(not n.state.is_final and n.state is not TaskState.PENDING for n in self._nodes)
        for node in self._nodes:
            if active >= self._concurrency or self._killed is not None:
                break
            if node.state is TaskState.PENDING:
                if not node.start(now):
                    break
                active += 1
        if not all(node.state.is_final for node in self._nodes):
            return None
        self._result = self._summarise()
        return self._result

    def kill(self, state: TaskState, reason: str) -> None:
        self._killed = (state, reason)
        for node in self._nodes:
            node.kill(state, reason)
        self.poll()

    def _summarise(self) -> AttemptResult:
        total = len(self._nodes)
        failed = [n for n in self._nodes if n.state is not TaskState.SUCCESS]
        details = {"iterations": total, "succeeded": total - len(failed)}
        if self._killed is not None:
            return AttemptResult(self._killed[0], error=self._killed[1], details=details)
        if not failed:
            return AttemptResult(TaskState.SUCCESS, details=details)
        first = failed[0]
        return AttemptResult(
            TaskState.FAILED,
            error=f"{len(failed)} of {total} iterations did not succeed; "
            f"iteration {first.iteration}: {first.state.value} {first.error or ''}".rstrip(),
            details=details,
        )
