"""Run-time references resolve, or fail with the reference named."""

from __future__ import annotations

import pytest

from lakestack.errors import TaskError
from lakestack.jobs.resolve import RefScope, TaskInfo, resolve_text, resolve_value


def _scope(**overrides: object) -> RefScope:
    values = {
        "job_id": "etl",
        "job_name": "dev-etl",
        "run_id": 42,
        "target": "dev",
        "job_parameters": {"catalog": "main"},
        "tasks": {
            "train": TaskInfo(
                "SUCCESS", 7, 1, None, None, {"version": 3, "uri": "models:/m/3", "ok": True}
            ),
            "check": TaskInfo("SUCCESS", 8, 1, "true"),
        },
        "start_time_ms": 1_700_000_000_000,
        "task_key": "deploy",
    }
    values.update(overrides)
    return RefScope(**values)  # type: ignore[arg-type]


def test_every_kind_of_reference() -> None:
    scope = _scope()
    text = (
        "{{job.id}} {{job.name}} {{job.run_id}} {{job.parameters.catalog}} {{task.name}} "
        "{{tasks.train.values.version}} {{tasks.train.values.uri}} {{tasks.train.values.ok}} "
        "{{tasks.check.result_state}} {{tasks.check.outcome}} {{job.trigger.type}} {{job.start_time.iso_date}}"
    )
    assert resolve_text(text, scope) == (
        "etl dev-etl 42 main deploy 3 models:/m/3 true SUCCESS true ONE_TIME 2023-11-14"
    )


def test_input_inside_for_each() -> None:
    scope = _scope(input={"region": "eu", "n": 2})
    assert resolve_value(["--r", "{{input.region}}", "{{input}}"], scope) == [
        "--r",
        "eu",
        '{"region": "eu", "n": 2}',
    ]
    assert resolve_text("{{ input }}", _scope(input="x")) == "x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{{tasks.train.values.missing}}",
            r"task 'train' did not set the value 'missing' \(it set: ok, uri, version\)",
        ),
        ("{{job.parameters.nope}}", r"no job parameter 'nope' \(known: catalog\)"),
        ("{{tasks.ghost.values.x}}", r"task 'ghost' has not run in this run"),
        ("{{input}}", r"only defined inside for_each_task"),
        ("{{jobs.id}}", r"unknown reference \{\{jobs.id\}\}"),
    ],
)
def test_unresolvable_reference_is_an_error_naming_it(text: str, message: str) -> None:
    with pytest.raises(TaskError, match=message):
        resolve_text(text, _scope())
