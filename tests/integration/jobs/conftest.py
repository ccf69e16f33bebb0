"""A factory for small bundles written into tmp_path, run through the real Workspace."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakestack.console import NoopConsole
from lakestack.workspace import Workspace


class BundleDir:
    """A bundle folder: write task files and the bundle, then open a Workspace on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.console = NoopConsole()
        self._open: list[Workspace] = []

    def file(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def bundle(self, jobs: dict[str, Any], **top: Any) -> None:
        data = {"bundle": {"name": "t"}, **top, "resources": {"jobs": jobs}}
        (self.root / "lakestack.yml").write_text(
            yaml.safe_dump(data, sort_keys=False), encoding="utf-8"
        )

    def workspace(self, **kwargs: Any) -> Workspace:
        ws = Workspace.open(self.root, console=self.console, **kwargs)
        self._open.append(ws)
        return ws

    def close(self) -> None:
        for ws in self._open:
            ws.close()


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Iterator[BundleDir]:
    directory = BundleDir(tmp_path / "project")
    directory.root.mkdir()
    yield directory
    directory.close()


def py_task(key: str, file: str, *params: str, **extra: Any) -> dict[str, Any]:
    """A spark_python_task entry."""
    return {
        "task_key": key,
        "spark_python_task": {"python_file": file, "parameters": list(params)},
        **extra,
    }


def states(ws: Workspace, run_id: int) -> dict[str, str]:
    """The state of the latest attempt of each task (iterations left out)."""
    result: dict[str, str] = {}
    for task in ws.get_run(run_id)["tasks"]:
        if task["iteration"] is None:
            result[task["task_key"]] = task["state"]
    return result


@pytest.fixture
def deps(request: pytest.FixtureRequest) -> Callable[..., list[dict[str, str]]]:
    def make(*keys: str) -> list[dict[str, str]]:
        return [{"task_key": k} for k in keys]

    return make
