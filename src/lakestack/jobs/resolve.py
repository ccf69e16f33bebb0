"""Resolve run-time references (``{{job.parameters.x}}``, ``{{tasks.t.values.k}}``...).

A reference that cannot be resolved is an error naming it, never an empty string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from lakestack.errors import TaskError
from lakestack.utils.refs import substitute_refs

__all__ = ["NO_INPUT", "RefScope", "TaskInfo", "render", "resolve_text", "resolve_value"]

NO_INPUT: Any = object()


@dataclass(frozen=True)
class TaskInfo:
    """What a task exposes to references: its state, outcome and values."""

    result_state: str
    run_id: int | None = None
    execution_count: int = 0
    outcome: str | None = None
    error_code: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RefScope:
    """Everything a reference in one task can see."""

    job_id: str
    job_name: str
    run_id: int
    target: str
    job_parameters: Mapping[str, str]
    tasks: Mapping[str, TaskInfo]
    trigger_type: str = "ONE_TIME"
    start_time_ms: int = 0
    repair_count: int = 0
    task_key: str | None = None
    task_run_id: int | None = None
    execution_count: int = 0
    notebook_path: str | None = None
    input: Any = NO_INPUT


def render(value: Any) -> str:
    """A value as it appears in a string parameter: strings as-is, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _time_parts(ms: int, prefix: str) -> dict[str, str]:
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return {
        f"{prefix}.iso_datetime": moment.isoformat(),
        f"{prefix}.iso_date": moment.date().isoformat(),
        f"{prefix}.timestamp_ms": str(ms),
        f"{prefix}.year": str(moment.year),
        f"{prefix}.month": str(moment.month),
        f"{prefix}.day": str(moment.day),
        f"{prefix}.hour": str(moment.hour),
        f"{prefix}.minute": str(moment.minute),
        f"{prefix}.second": str(moment.second),
    }


def _lookup(path: str, scope: RefScope) -> str:
    fixed: dict[str, str | None] = {
        "job.id": scope.job_id,
        "job.name": scope.job_name,
        "job.run_id": str(scope.run_id),
        "job.repair_count": str(scope.repair_count),
        "job.trigger.type": scope.trigger_type,
        "bundle.target": scope.target,
        "task.name": scope.task_key,
        "task.run_id": None if scope.task_run_id is None else str(scope.task_run_id),
        "task.execution_count": str(scope.execution_count),
        "task.notebook_path": scope.notebook_path,
        "workspace.id": "local",
        "workspace.url": "local",
    }
    fixed.update(_time_parts(scope.start_time_ms, "job.start_time"))
    fixed.update(_time_parts(scope.start_time_ms, "job.trigger.time"))
    if path in fixed:
        value = fixed[path]
        if value is None:
            raise TaskError(f"reference {{{{{path}}}}} has no value in this task")
        return value

    parts = path.split(".")
    if parts[0] == "input":
        if scope.input is NO_INPUT:
            raise TaskError("reference {{input}} is only defined inside for_each_task.task")
        value = scope.input
        for name in parts[1:]:
            if not isinstance(value, Mapping) or name not in value:
                raise TaskError(
                    f"reference {{{{{path}}}}}: the input {render(scope.input)} has no '{name}'"
                )
            value = value[name]
        return render(value)
    if parts[:2] == ["job", "parameters"] and len(parts) == 3:
        if parts[2] not in scope.job_parameters:
            known = ", ".join(sorted(scope.job_parameters)) or "none"
            raise TaskError(
                f"reference {{{{{path}}}}}: no job parameter '{parts[2]}' (known: {known})"
            )
        return scope.job_parameters[parts[2]]
    if parts[0] == "tasks" and len(parts) >= 3:
        info = scope.tasks.get(parts[1])
        if info is None:
            raise TaskError(f"reference {{{{{path}}}}}: task '{parts[1]}' has not run in this run")
        if parts[2] == "values" and len(parts) >= 4:
            key = ".".join(parts[3:])
            if key not in info.values:
                set_keys = ", ".join(sorted(info.values)) or "none"
                raise TaskError(
                    f"reference {{{{{path}}}}}: task '{parts[1]}' did not set the value '{key}' "
                    f"(it set: {set_keys}); call dbutils.jobs.taskValues.set('{key}', ...) in it"
                )
            return render(info.values[key])
        field_value = {
            "result_state": info.result_state,
            "run_id": None if info.run_id is None else str(info.run_id),
            "execution_count": str(info.execution_count),
            "outcome": info.outcome,
            "error_code": info.error_code or "",
        }.get(parts[2])
        if field_value is None:
            raise TaskError(f"reference {{{{{path}}}}} has no value")
        return field_value
    raise TaskError(f"unknown reference {{{{{path}}}}}")


def resolve_text(text: str, scope: RefScope) -> str:
    """Replace every reference in ``text``."""
    return substitute_refs(text, lambda path: _lookup(path, scope))


def resolve_value(value: Any, scope: RefScope) -> Any:
    """Resolve references in every string inside ``value`` (dicts and lists included)."""
    if isinstance(value, str):
        return resolve_text(value, scope)
    if isinstance(value, list):
        return [resolve_value(item, scope) for item in value]
    if isinstance(value, dict):
        return {key: resolve_value(item, scope) for key, item in value.items()}
    return value
