"""Whether a task runs, given its dependencies: ``depends_on`` with ``outcome`` and ``run_if``.

The rules are Databricks': a dependency on a condition task with an ``outcome`` that did not
happen counts as excluded; a task whose dependencies are all excluded is excluded; canceled
upstream tasks cancel the task; otherwise ``run_if`` decides, over the dependencies that were not
excluded. An unmet ALL_SUCCESS, AT_LEAST_ONE_SUCCESS or NONE_FAILED gives UPSTREAM_FAILED; an
unmet AT_LEAST_ONE_FAILED or ALL_FAILED gives EXCLUDED (a failure handler that had nothing to
handle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lakestack.bundle.specs.jobs import DependencySpec, RunIf
from lakestack.jobs.states import TaskState

__all__ = ["Decision", "UpstreamResult", "decide"]


@dataclass(frozen=True)
class UpstreamResult:
    """What a dependency ended with."""

    state: TaskState
    outcome: str | None = None


@dataclass(frozen=True)
class Decision:
    """``run`` is True when the task should start; otherwise ``state`` is its final state."""

    run: bool
    state: TaskState | None = None
    reason: str = ""


def decide(
    depends_on: Sequence[DependencySpec],
    run_if: RunIf,
    upstream: Mapping[str, UpstreamResult],
) -> Decision | None:
    """Decide a task whose dependencies are all final; None while some are not."""
    if any(not upstream[dep.task_key].state.is_final for dep in depends_on):
        return None
    if not depends_on:
        return Decision(run=True)

    canceled = [d.task_key for d in depends_on if upstream[d.task_key].state.is_canceled]
    if canceled:
        return Decision(False, TaskState.UPSTREAM_CANCELED, f"upstream canceled: {canceled[0]}")

    considered: list[TaskState] = []
    for dep in depends_on:
        result = upstream[dep.task_key]
        if result.state in (TaskState.EXCLUDED, TaskState.SKIPPED):
            continue
        if dep.outcome is not None and (
            result.state is not TaskState.SUCCESS or result.outcome != dep.outcome
        ):
            continue
        considered.append(result.state)
    if not considered:
        return Decision(False, TaskState.EXCLUDED, "all dependencies were excluded")

    succeeded = sum(state is TaskState.SUCCESS for state in considered)
    failed = sum(state.is_failure for state in considered)
    if run_if is RunIf.ALL_SUCCESS:
        met = succeeded == len(considered)
    elif run_if is RunIf.AT_LEAST_ONE_SUCCESS:
        met = succeeded > 0
    elif run_if is RunIf.NONE_FAILED:
        met = failed == 0 and succeeded > 0
    elif run_if is RunIf.ALL_DONE:
        met = True
    elif run_if is RunIf.AT_LEAST_ONE_FAILED:
        met = failed > 0
    else:  # ALL_FAILED
        met = failed == len(considered)
    if met:
        return Decision(run=True)
    if run_if in (RunIf.AT_LEAST_ONE_FAILED, RunIf.ALL_FAILED):
        return Decision(False, TaskState.EXCLUDED, f"run_if {run_if.value} not met")
    return Decision(False, TaskState.UPSTREAM_FAILED, f"run_if {run_if.value} not met")
