"""run_if and depends_on.outcome: one scenario per rule, as Databricks documents them."""

from __future__ import annotations

import pytest

from lakestack.bundle.specs.jobs import DependencySpec, RunIf
from lakestack.jobs.deps import UpstreamResult, decide
from lakestack.jobs.states import TaskState

S, F, T = TaskState.SUCCESS, TaskState.FAILED, TaskState.TIMEDOUT
X, C, UF = TaskState.EXCLUDED, TaskState.CANCELED, TaskState.UPSTREAM_FAILED


def _decide(run_if: RunIf, *states: TaskState):
    deps = [DependencySpec(task_key=f"t{i}") for i in range(len(states))]
    upstream = {f"t{i}": UpstreamResult(state) for i, state in enumerate(states)}
    return decide(deps, run_if, upstream)


@pytest.mark.parametrize(
    ("run_if", "states", "expected"),
    [
        (RunIf.ALL_SUCCESS, (S, S), None),
        (RunIf.ALL_SUCCESS, (S, F), UF),
        (RunIf.ALL_SUCCESS, (S, UF), UF),
        (RunIf.AT_LEAST_ONE_SUCCESS, (S, F), None),
        (RunIf.AT_LEAST_ONE_SUCCESS, (F, T), UF),
        (RunIf.NONE_FAILED, (S, S), None),
        (RunIf.NONE_FAILED, (S, X), None),
        (RunIf.NONE_FAILED, (S, F), UF),
        (RunIf.ALL_DONE, (F, T), None),
        (RunIf.ALL_DONE, (S, UF), None),
        (RunIf.AT_LEAST_ONE_FAILED, (S, F), None),
        (RunIf.AT_LEAST_ONE_FAILED, (S, S), X),
        (RunIf.ALL_FAILED, (F, T), None),
        (RunIf.ALL_FAILED, (F, S), X),
    ],
)
def test_run_if(run_if: RunIf, states: tuple[TaskState, ...], expected: TaskState | None) -> None:
    decision = _decide(run_if, *states)
    assert decision is not None
    if expected is None:
        assert decision.run
    else:
        assert not decision.run
        assert decision.state is expected
        assert run_if.value in decision.reason


def test_waits_while_an_upstream_task_is_not_final() -> None:
    assert _decide(RunIf.ALL_DONE, S, TaskState.RUNNING) is None
    assert _decide(RunIf.ALL_SUCCESS, TaskState.WAITING_FOR_RETRY) is None


def test_no_dependencies_runs() -> None:
    decision = decide([], RunIf.ALL_SUCCESS, {})
    assert decision is not None and decision.run


def test_canceled_upstream_cancels_even_failure_handlers() -> None:
    for run_if in RunIf:
        decision = _decide(run_if, S, C)
        assert decision is not None and decision.state is TaskState.UPSTREAM_CANCELED


def test_all_dependencies_excluded_excludes_whatever_run_if_says() -> None:
    for run_if in RunIf:
        decision = _decide(run_if, X, X)
        assert decision is not None and decision.state is X


@pytest.mark.parametrize(
    ("outcome", "wanted", "runs"),
    [("true", "true", True), ("false", "true", False), ("true", "false", False)],
)
def test_condition_branch_selects_by_outcome(outcome: str, wanted: str, runs: bool) -> None:
    deps = [DependencySpec(task_key="check", outcome=wanted)]
    decision = decide(deps, RunIf.ALL_SUCCESS, {"check": UpstreamResult(S, outcome)})
    assert decision is not None
    assert decision.run is runs
    if not runs:
        assert decision.state is X


def test_branch_not_taken_counts_as_excluded_beside_a_success() -> None:
    deps = [DependencySpec(task_key="check", outcome="true"), DependencySpec(task_key="other")]
    upstream = {"check": UpstreamResult(S, "false"), "other": UpstreamResult(S)}
    decision = decide(deps, RunIf.ALL_SUCCESS, upstream)
    assert decision is not None and decision.run
