"""What task code sees: the native API, and ``dbutils`` for code written for Databricks.

``from lakestack import dbutils`` gives the Databricks utilities (widgets, task values, notebook
exit and run, files on volumes, secrets). ``lakestack.runtime.context()`` is the native way to
learn which run, task and target the code runs for. Both work outside a job too, so one file
serves the job and the interactive session.
"""

from __future__ import annotations

from pathlib import Path

from lakestack.jobs.context import TaskContext, current_context
from lakestack.runtime.locate import find_workspace_root

__all__ = ["TaskContext", "context", "local_path", "workspace_root"]


def context() -> TaskContext | None:
    """The task context of this process, or None outside a job.

    Inside a job task this holds the run id, job, task key, attempt, target, the task's
    parameters and the task values of its upstream tasks.

    Returns:
        The ``TaskContext`` the orchestrator wrote for this task, or None when the code runs
        from a plain ``python`` or an interactive notebook.
    """
    return current_context()


def workspace_root() -> Path:
    """The workspace root: the job's, or ``.lakestack`` beside the nearest bundle file."""
    ctx = current_context()
    return Path(ctx.workspace_root) if ctx is not None else find_workspace_root()


def local_path(path: str) -> Path:
    """The local file for a path as Databricks code writes it.

    ``/Volumes/<catalog>/<schema>/<volume>/...`` (and ``dbfs:/Volumes/...``) map into the
    workspace's warehouse; ``file:`` and plain paths are returned as they are. Use it where
    Databricks code would open a volume path directly, e.g. ``pd.read_csv(local_path(p))``.
    """
    from lakestack.lake.volumes import resolve_path

    return resolve_path(path, workspace_root())
