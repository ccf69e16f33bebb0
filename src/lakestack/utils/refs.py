"""The grammar of run-time references (``{{job.parameters.x}}``, ``{{tasks.t.values.k}}``...).

The bundle layer checks references statically (does the task exist, is it upstream, is the
parameter declared?); the orchestrator resolves them when a task starts. Both use this module so
that they agree on what a reference is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

__all__ = ["Ref", "check_ref", "find_refs", "substitute_refs"]

_REF = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

# references with a fixed shape; tasks.<key>.*, job.parameters.<name> and input.* are handled apart
_FIXED = {
    "job.id",
    "job.name",
    "job.run_id",
    "job.repair_count",
    "job.trigger.type",
    "job.trigger.time.iso_datetime",
    "job.trigger.time.timestamp_ms",
    "job.start_time.iso_datetime",
    "job.start_time.iso_date",
    "job.start_time.timestamp_ms",
    "job.start_time.year",
    "job.start_time.month",
    "job.start_time.day",
    "job.start_time.hour",
    "job.start_time.minute",
    "job.start_time.second",
    "task.name",
    "task.run_id",
    "task.execution_count",
    "task.notebook_path",
    "workspace.id",
    "workspace.url",
    "bundle.target",
    "input",
}
_TASK_FIELDS = {"result_state", "run_id", "execution_count", "error_code", "outcome"}


@dataclass(frozen=True)
class Ref:
    """One ``{{...}}`` occurrence: the text as written and the dotted path inside."""

    raw: str
    path: str


def find_refs(text: str) -> list[Ref]:
    """All references in ``text``, in order."""
    return [Ref(m.group(0), m.group(1)) for m in _REF.finditer(text)]


def substitute_refs(text: str, resolve: Callable[[str], str]) -> str:
    """Replace each reference by ``resolve(path)``."""
    return _REF.sub(lambda m: resolve(m.group(1)), text)


def check_ref(
    path: str,
    *,
    task_keys: Collection[str],
    upstream: Collection[str],
    parameters: Collection[str],
    in_for_each: bool = False,
) -> str | None:
    """Why ``path`` cannot be resolved in this place, or None when it can.

    ``upstream`` holds the task keys the referring task depends on, transitively.
    """
    parts = path.split(".")
    if path in _FIXED and (path != "input" or in_for_each):
        return None
    if parts[0] == "input":
        if in_for_each:
            return None
        return "{{input}} is only defined inside for_each_task.task"
    if parts[:2] == ["job", "parameters"] and len(parts) == 3:
        if parts[2] in parameters:
            return None
        known = ", ".join(sorted(parameters)) or "none"
        return (
            f"job parameter '{parts[2]}' is not declared (declared: {known}); add it to parameters"
        )
    if parts[0] == "tasks" and len(parts) >= 3:
        key = parts[1]
        if key not in task_keys:
            from lakestack.errors import did_you_mean

            hint = did_you_mean(key, task_keys)
            return f"task '{key}' does not exist" + (f"; did you mean '{hint}'?" if hint else "")
        if key not in upstream:
            return f"task '{key}' is not upstream of this task; add it to depends_on"
        if parts[2] == "values" and len(parts) >= 4:
            return None
        if parts[2] in _TASK_FIELDS and len(parts) == 3:
            return None
        return (
            f"'{'.'.join(parts[2:])}' is not a field of a task (use values.<key> or result_state)"
        )
    return "unknown reference; see docs/bundle.md#run-time-references for the ones that exist"
