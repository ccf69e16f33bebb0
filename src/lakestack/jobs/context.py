"""What a task process knows about the run it belongs to.

The orchestrator writes a ``TaskContext`` as JSON into the attempt's folder and points the task
process at it with the ``LAKESTACK_TASK_CONTEXT`` environment variable. Task code reads it through
``dbutils`` or ``lakestack.runtime``; what the task reports back (task values, the notebook exit
value, its error) it writes as files into ``output_dir``, which the orchestrator reads when the
process ends. No database connection is needed inside a task.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CONTEXT_ENV",
    "RESULT_FILE",
    "VALUES_FILE",
    "WAITING_KEY",
    "TaskContext",
    "current_context",
    "parameter_flag",
    "publish_task_values",
    "read_json_file",
    "request_approval",
    "write_json_atomic",
]

CONTEXT_ENV = "LAKESTACK_TASK_CONTEXT"
VALUES_FILE = "task_values.json"
RESULT_FILE = "result.json"


@dataclass
class TaskContext:
    """The run, task and parameters a task process runs for."""

    run_id: int
    job_id: str
    job_name: str
    task_key: str
    attempt: int
    target: str
    bundle_root: str
    workspace_root: str
    output_dir: str
    parameters: dict[str, str] = field(default_factory=dict)
    job_parameters: dict[str, str] = field(default_factory=dict)
    task_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    iteration: int | None = None

    def write(self, path: Path) -> None:
        """Write the context as JSON (atomically)."""
        write_json_atomic(path, asdict(self))

    @classmethod
    def read(cls, path: Path) -> TaskContext:
        """Read a context written by ``write``."""
        return cls(**read_json_file(path))


_cached: tuple[str, TaskContext] | None = None


def current_context() -> TaskContext | None:
    """The context of the task this process runs, or None outside a job."""
    global _cached
    path = os.environ.get(CONTEXT_ENV)
    if not path:
        return None
    if _cached is None or _cached[0] != path:
        _cached = (path, TaskContext.read(Path(path)))
    return _cached[1]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json_file(path: Path) -> Any:
    """Read a JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def publish_task_values(values: Mapping[str, Any]) -> bool:
    """Merge ``values`` into this task's task values (for built-in tasks; user code has dbutils).

    Returns:
        False outside a job, where there is nobody to read them.
    """
    ctx = current_context()
    if ctx is None:
        return False
    path = Path(ctx.output_dir) / VALUES_FILE
    try:
        current = read_json_file(path)
    except (OSError, ValueError):
        current = {}
    current = current if isinstance(current, dict) else {}
    current.update(json.loads(json.dumps(dict(values), default=str)))
    write_json_atomic(path, current)
    return True


WAITING_KEY = "waiting_for_approval"


def request_approval(details: Mapping[str, Any]) -> bool:
    """Mark this task as waiting for a person's approval; the task then exits normally.

    The orchestrator sees the mark when the process ends: the task becomes
    WAITING_FOR_APPROVAL and, once nothing else can run, the run pauses in that state with no
    process alive. Approving (``lakestack models approve``) repairs the run, which runs the task
    again; it then finds the approval and succeeds.

    Args:
        details: What the task waits for (``model_name``, ``model_version``, a message); kept on
            the task run so that an approval finds the runs it resumes.

    Returns:
        False outside a job, where nothing can pause.
    """
    ctx = current_context()
    if ctx is None:
        return False
    path = Path(ctx.output_dir) / RESULT_FILE
    write_json_atomic(path, {WAITING_KEY: json.loads(json.dumps(dict(details), default=str))})
    return True


def parameter_flag(text: str) -> bool:
    """A task's true/false named parameter (``argparse`` type): true/1/yes, false/0/no/empty.

    Raises:
        argparse.ArgumentTypeError: Anything else, with what to write instead.
    """
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no", ""):
        return False
    raise argparse.ArgumentTypeError(f"'{text}' is not a boolean; use true or false")
