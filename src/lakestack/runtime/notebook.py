"""``dbutils.notebook``: end a notebook with a value, or run another notebook.

``exit`` records the value and stops the code with ``NotebookExit``, a ``SystemExit`` with code 0:
a plain Python task ends successfully, and the notebook runner recognises it by name and stops
executing cells. Inside a notebook run by lakestack, the runner tells this module where to write
the value; in a Python task it goes to the task's ``result.json``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lakestack.errors import TaskError
from lakestack.jobs.context import RESULT_FILE, current_context, write_json_atomic
from lakestack.runtime.locate import find_workspace_root

__all__ = ["NotebookExit", "NotebookUtils"]

_counter = itertools.count(1)


class NotebookExit(SystemExit):
    """Raised by ``dbutils.notebook.exit``: a successful end with an exit value."""

    def __init__(self, value: str) -> None:
        super().__init__(0)
        self.value = value

    def __str__(self) -> str:
        return self.value


class NotebookUtils:
    """The ``dbutils.notebook`` API."""

    def __init__(self) -> None:
        self._exit_file: Path | None = None
        self._notebook_path: Path | None = None

    def _bind(self, *, notebook_path: str | None, exit_file: str | None) -> None:
        """Set by the notebook runner: the running notebook and where its exit value goes."""
        self._notebook_path = Path(notebook_path) if notebook_path else None
        self._exit_file = Path(exit_file) if exit_file else None

    def exit(self, value: Any) -> None:
        """End the notebook (or script) successfully, with ``str(value)`` as its exit value.

        Raises:
            NotebookExit: always; it ends the code with exit code 0.
        """
        text = str(value)
        target = self._exit_file
        if target is None:
            ctx = current_context()
            target = Path(ctx.output_dir) / RESULT_FILE if ctx is not None else None
        if target is not None:
            write_json_atomic(target, {"exit_value": text})
        raise NotebookExit(text)

    def run(
        self,
        path: str,
        timeout_seconds: int = 0,
        arguments: Mapping[str, Any] | None = None,
    ) -> str:
        """Run another notebook in its own kernel and return its exit value.

        Args:
            path: The notebook, relative to the running notebook's folder (else to the working
                directory); ``.ipynb`` or ``.py`` may be left off, as on Databricks.
            timeout_seconds: Stop the notebook after this many seconds; 0 means no limit.
            arguments: Widget values for the notebook.

        Returns:
            The value the notebook passed to ``dbutils.notebook.exit``, or "" if it did not.

        Raises:
            TaskError: the notebook is missing, failed or timed out.
        """
        from lakestack.jobs.notebook import find_notebook, run_notebook

        base = self._notebook_path.parent if self._notebook_path is not None else Path.cwd()
        notebook = find_notebook(path, base)
        ctx = current_context()
        if ctx is not None:
            out_dir = Path(ctx.output_dir)
        else:
            out_dir = find_workspace_root() / "runs" / "interactive"
        output_path = (
            out_dir / "notebooks" / f"{notebook.stem}-{os.getpid()}-{next(_counter)}.ipynb"
        )
        try:
            value = run_notebook(
                notebook,
                parameters={str(k): str(v) for k, v in (arguments or {}).items()},
                output_path=output_path,
                cwd=Path.cwd(),
                timeout_seconds=timeout_seconds or None,
            )
        except TaskError as exc:
            raise TaskError(
                f"notebook {path} failed: {exc} (executed copy: {output_path})"
            ) from exc
        return value if value is not None else ""
