"""Task file paths: written relative to the YAML file, made absolute and checked.

Two steps, because a path may hold ``${...}``: when a file is loaded, a relative path gets the
file's folder in front (only that file knows it); after substitution, the path is normalised,
a ``${workspace.file_path}/...`` path is mapped back to the bundle root, a notebook without an
extension gets ``.ipynb`` or ``.py``, and a missing file is an error with its location.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lakestack.errors import ConfigError, Location
from lakestack.utils.yaml import YamlMap

__all__ = ["PATH_FIELDS", "PathRewriter", "iter_tasks"]

PATH_FIELDS: tuple[tuple[str, ...], ...] = (
    ("notebook_task", "notebook_path"),
    ("spark_python_task", "python_file"),
    ("python_file_task", "python_file"),
    ("sql_task", "file", "path"),
)
"""Where task specs hold file paths."""


def iter_tasks(resources: Any) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Every task mapping of ``resources.jobs`` as (job key, task, inside for_each)."""
    jobs = resources.get("jobs") if isinstance(resources, dict) else None
    if not isinstance(jobs, dict):
        return
    for job_key, job in jobs.items():
        tasks = job.get("tasks") if isinstance(job, dict) else None
        for task in tasks if isinstance(tasks, list) else []:
            if isinstance(task, dict):
                yield job_key, task, False
                inner = task.get("for_each_task")
                if isinstance(inner, dict) and isinstance(inner.get("task"), dict):
                    yield job_key, inner["task"], True


def _holder(task: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = task
    for name in fields[:-1]:
        node = node.get(name) if isinstance(node, dict) else None
    return node if isinstance(node, dict) and isinstance(node.get(fields[-1]), str) else None


class PathRewriter:
    """Rewrites task paths of one bundle; remembers how each path was written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._written: dict[str, str] = {}

    def anchor(self, resources: Any, folder: Path) -> None:
        """Prefix the relative task paths of one file's ``resources`` with its folder."""
        for _, task, _ in iter_tasks(resources):
            for fields in PATH_FIELDS:
                holder = _holder(task, fields)
                if holder is None:
                    continue
                value: str = holder[fields[-1]]
                if value.startswith(("/", "${", "~")) or "://" in value:
                    continue
                anchored = f"{folder.as_posix()}/{value}"
                self._written[anchored] = value
                holder[fields[-1]] = anchored

    def resolve(self, resources: Any, file_path: str | None) -> None:
        """Make every task path absolute and existing, after substitution (in place)."""
        for _, task, _ in iter_tasks(resources):
            for fields in PATH_FIELDS:
                holder = _holder(task, fields)
                if holder is not None:
                    holder[fields[-1]] = self._one(holder, fields, file_path)

    def _one(self, holder: dict[str, Any], fields: tuple[str, ...], file_path: str | None) -> str:
        value: str = holder[fields[-1]]
        written = self._written.get(value, value)
        where = holder.location(fields[-1]) if isinstance(holder, YamlMap) else None
        if holder.get("source") == "GIT":
            raise ConfigError(
                "git_source is not supported; use a path in the bundle",
                location=Location(where.file, where.line) if where else None,
            )
        path = value
        if file_path and (path == file_path or path.startswith(file_path.rstrip("/") + "/")):
            path = str(self.root / path[len(file_path) :].lstrip("/"))
        candidate = Path(os.path.normpath(path))
        if not candidate.is_absolute():
            candidate = Path(os.path.normpath(self.root / candidate))
        looked = [candidate]
        if fields[0] == "notebook_task" and not candidate.suffix:
            looked = [candidate.with_suffix(".ipynb"), candidate.with_suffix(".py")]
        for option in looked:
            if option.is_file():
                return str(option)
        tried = ", ".join(str(p) for p in looked)
        raise ConfigError(
            f"{'.'.join(fields)}: {written} does not exist (looked for {tried}); fix the path",
            location=Location(where.file, where.line) if where else None,
        )
