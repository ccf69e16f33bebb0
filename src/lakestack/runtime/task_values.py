"""``dbutils.jobs.taskValues``: small values passed from a task to the tasks after it.

A task sets values into ``task_values.json`` in its output folder; the orchestrator records them
and hands the values of upstream tasks to the next tasks in their context. Limits and the
behaviour outside a job are the Databricks ones, so code that works here works there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lakestack.errors import LakestackError, TerminalError
from lakestack.jobs.context import VALUES_FILE, current_context, read_json_file, write_json_atomic

__all__ = ["MAX_VALUE_BYTES", "TaskValueDebugError", "TaskValueError", "TaskValuesUtils"]

MAX_VALUE_BYTES = 48 * 1024


class TaskValueError(LakestackError, TerminalError):
    """A task value that cannot be set (not JSON, too large) or is not there to get."""


class TaskValueDebugError(TaskValueError, TypeError):
    """``taskValues.get`` outside a job without a ``debugValue``, as Databricks rejects it."""


class TaskValuesUtils:
    """The ``dbutils.jobs.taskValues`` API."""

    def set(self, key: str, value: Any) -> None:
        """Set a task value for the tasks that depend on this one.

        Outside a job this does nothing, as on Databricks.

        Args:
            key: The name of the value.
            value: Any JSON-serialisable value, at most 48 KiB serialised.

        Raises:
            TaskValueError: not JSON-serialisable, or larger than 48 KiB.
        """
        if not isinstance(key, str) or not key:
            raise TaskValueError(f"a task value key must be a non-empty string, got {key!r}")
        try:
            text = json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TaskValueError(
                f"task value '{key}' is not JSON-serialisable ({exc}); "
                "set a string, number, boolean, list or dict"
            ) from exc
        size = len(text.encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            raise TaskValueError(
                f"task value '{key}' is {size} bytes as JSON, over the limit of "
                f"{MAX_VALUE_BYTES} bytes (48 KiB); store large data in a table or a volume "
                "and pass its name"
            )
        ctx = current_context()
        if ctx is None:
            return
        path = Path(ctx.output_dir) / VALUES_FILE
        values = _read_values(path)
        values[key] = json.loads(text)
        write_json_atomic(path, values)

    def get(
        self,
        taskKey: str,  # noqa: N803
        key: str,
        default: Any = None,
        debugValue: Any = None,  # noqa: N803
    ) -> Any:
        """A value set by an upstream task.

        Args:
            taskKey: The task that set the value.
            key: The name of the value.
            default: Returned when the task did not set ``key`` (if not None).
            debugValue: Returned outside a job; required there.

        Raises:
            TaskValueError: the value is missing and no default was given.
            TaskValueDebugError: called outside a job without a ``debugValue``.
        """
        ctx = current_context()
        if ctx is None:
            if debugValue is None:
                raise TaskValueDebugError(
                    f"taskValues.get('{taskKey}', '{key}') ran outside a job: pass debugValue=... "
                    "to use there (debugValue cannot be None)"
                )
            return debugValue
        if taskKey == ctx.task_key:
            values = _read_values(Path(ctx.output_dir) / VALUES_FILE)
        else:
            values = ctx.task_values.get(taskKey, {})
        if key in values:
            return values[key]
        if default is not None:
            return default
        if taskKey != ctx.task_key and taskKey not in ctx.task_values:
            known = ", ".join(sorted(ctx.task_values)) or "none"
            raise TaskValueError(
                f"task '{taskKey}' set no task values visible to task '{ctx.task_key}' "
                f"(tasks with values: {known}); make '{ctx.task_key}' depend on it, "
                "or pass default=..."
            )
        present = ", ".join(sorted(values)) or "none"
        raise TaskValueError(
            f"task '{taskKey}' did not set task value '{key}' (it set: {present}); "
            "pass default=... to use a fallback"
        )


def _read_values(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = read_json_file(path)
    return dict(data) if isinstance(data, dict) else {}
