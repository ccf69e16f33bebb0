"""A task context written to tmp_path, as the orchestrator writes it, and no job by default."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lakestack.jobs.context import CONTEXT_ENV, TaskContext
from lakestack.runtime.dbutils import DBUtils

MakeContext = Callable[..., TaskContext]


@pytest.fixture(autouse=True)
def outside_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CONTEXT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def dbutils() -> DBUtils:
    return DBUtils()


@pytest.fixture
def in_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MakeContext:
    """Write a TaskContext and point LAKESTACK_TASK_CONTEXT at it."""
    counter = iter(range(1000))

    def make(**fields: Any) -> TaskContext:
        folder = tmp_path / f"attempt{next(counter)}"
        values: dict[str, Any] = {
            "run_id": 7,
            "job_id": "1",
            "job_name": "training",
            "task_key": "train",
            "attempt": 1,
            "target": "dev",
            "bundle_root": str(tmp_path),
            "workspace_root": str(tmp_path / ".lakestack"),
            "output_dir": str(folder / "out"),
        }
        values.update(fields)
        ctx = TaskContext(**values)
        ctx.write(folder / "context.json")
        monkeypatch.setenv(CONTEXT_ENV, str(folder / "context.json"))
        return ctx

    return make
