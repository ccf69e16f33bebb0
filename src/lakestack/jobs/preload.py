"""Which modules the warm worker imports before it forks tasks.

By default: the third-party packages that the job's Python files import at their top level
(found by parsing them, never by running them), plus the bundle's ``lakestack.preload`` list.
Modules that live inside the bundle are never preloaded: importing the user's own code may have
side effects. Notebooks are left out: they run in a Jupyter kernel, a process of its own.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from lakestack.bundle.specs.jobs import JobSpec, TaskSpec

__all__ = ["detect_imports", "preload_modules"]


def _task_files(task: TaskSpec) -> list[Path]:
    files: list[Path] = []
    for spec in (task.spark_python_task, task.python_file_task):
        if spec is not None:
            files.append(Path(spec.python_file))
    # notebooks are left out: they run in a Jupyter kernel, a process of its own
    if task.for_each_task is not None:
        files.extend(_task_files(task.for_each_task.task))
    return files


def _sources(path: Path) -> Iterable[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(text).get("cells", [])
        except ValueError:
            return []
        return [
            "".join(c.get("source", ""))
            if isinstance(c.get("source"), list)
            else c.get("source", "")
            for c in cells
            if c.get("cell_type") == "code"
        ]
    return text.split("# COMMAND ----------")


def detect_imports(paths: Iterable[Path]) -> set[str]:
    """Top-level module names imported at the top level of these Python files or notebooks."""
    names: set[str] = set()
    for path in paths:
        for source in _sources(path):
            lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
            try:
                tree = ast.parse("\n".join(lines))
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module)
    return names


def _is_installed_outside(name: str, bundle_root: Path) -> bool:
    top = name.split(".")[0]
    if top in sys.builtin_module_names or top in sys.stdlib_module_names:
        return False
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return False
    origin = Path(spec.origin).resolve()
    return bundle_root.resolve() not in origin.parents


def preload_modules(
    jobs: Iterable[JobSpec], bundle_root: Path, setting: bool | list[str]
) -> list[str]:
    """The modules to preload for ``jobs``, given the bundle's ``lakestack.preload`` setting."""
    if setting is False:
        return []
    chosen: set[str] = set(setting) if isinstance(setting, list) else set()
    files = [path for job in jobs for task in job.tasks for path in _task_files(task)]
    for name in detect_imports(files):
        if _is_installed_outside(name, bundle_root):
            chosen.add(name)
    if any(task.notebook_task for job in jobs for task in job.tasks):
        chosen.add("lakestack.jobs.notebook")
    return sorted(chosen)
