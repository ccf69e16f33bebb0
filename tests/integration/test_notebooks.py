"""Notebooks run in real IPython kernels, as a notebook task runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from lakestack.errors import TaskError
from lakestack.jobs.context import CONTEXT_ENV, VALUES_FILE, TaskContext
from lakestack.jobs.notebook import NotebookError, run_notebook

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures" / "notebooks"


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TaskContext:
    """A bundle folder holding the fixture notebooks, and a task context for the kernel."""
    bundle = tmp_path / "bundle"
    shutil.copytree(FIXTURES, bundle / "notebooks")
    ctx = TaskContext(
        run_id=1,
        job_id="1",
        job_name="notebooks",
        task_key="nb",
        attempt=1,
        target="dev",
        bundle_root=str(bundle),
        workspace_root=str(bundle / ".lakestack"),
        output_dir=str(tmp_path / "attempt"),
    )
    ctx.write(tmp_path / "context.json")
    monkeypatch.setenv(CONTEXT_ENV, str(tmp_path / "context.json"))
    monkeypatch.chdir(bundle)
    return ctx


def _run(ctx: TaskContext, name: str, **params: str) -> str | None:
    bundle = Path(ctx.bundle_root)
    return run_notebook(
        Path("notebooks") / name,
        parameters=params,
        output_path=Path(ctx.output_dir) / "notebook.ipynb",
        cwd=bundle,
        timeout_seconds=120,
    )


def _values(ctx: TaskContext) -> dict[str, object]:
    data: dict[str, object] = json.loads((Path(ctx.output_dir) / VALUES_FILE).read_text())
    return data


def _executed(ctx: TaskContext) -> nbformat.NotebookNode:
    return nbformat.read(str(Path(ctx.output_dir) / "notebook.ipynb"), as_version=4)


def test_parameters_reach_the_parameters_cell_and_widgets(task: TaskContext) -> None:
    assert _run(task, "parameters_cell.ipynb", alpha="0.5") is None
    assert _values(task) == {"result": {"alpha": 0.5, "epochs": 3}}
    executed = _executed(task)
    tags = [cell.metadata.get("tags") for cell in executed.cells]
    assert tags[:4] == [["lakestack-setup"], None, ["parameters"], ["injected-parameters"]]
    assert executed.cells[4].outputs[0]["text"] == "alpha is 0.5\n"


def test_failing_cell_gives_one_line_and_keeps_the_traceback(
    task: TaskContext, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(NotebookError, match=r"^cell 2 raised ValueError: bad value: 42$") as caught:
        _run(task, "failing_cell.ipynb")
    assert caught.value.cell == 2
    executed = _executed(task)
    [error] = executed.cells[3].outputs
    assert error["output_type"] == "error"
    assert error["ename"] == "ValueError"
    assert any("bad value: 42" in line for line in error["traceback"])
    assert executed.cells[4].outputs == []
    assert "ValueError: bad value: 42" in capsys.readouterr().err  # the task log has it too


def test_exit_returns_its_value_and_stops(
    task: TaskContext, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(task, "exit_early.ipynb") == "done"
    assert capsys.readouterr() == ("before exit\n", "")
    assert not (Path(task.output_dir) / VALUES_FILE).exists()
    exit_cell = _executed(task).cells[3]
    assert [out["text"] for out in exit_cell.outputs] == ["Notebook exited: done\n"]


def test_databricks_source_with_md_run_and_sql(task: TaskContext) -> None:
    assert _run(task, "databricks_source.py", greeting="hi") == "HI! 10"
    assert _values(task) == {"total": 10}
    executed = _executed(task)
    assert executed.cells[2].cell_type == "markdown"
    sql_cell = next(c for c in executed.cells if c.source.startswith("# %sql"))
    assert "10" in sql_cell.outputs[0]["data"]["text/plain"]


def test_notebook_run_returns_the_child_exit_value(task: TaskContext) -> None:
    assert _run(task, "calls_child") == "child said done"


def test_timeout_stops_the_notebook(task: TaskContext) -> None:
    with pytest.raises(TaskError, match=r"^notebook exceeded timeout_seconds=2$"):
        run_notebook(
            Path("notebooks/sleepy.ipynb"),
            parameters={},
            output_path=Path(task.output_dir) / "notebook.ipynb",
            cwd=Path(task.bundle_root),
            timeout_seconds=2,
        )
    assert (Path(task.output_dir) / "notebook.ipynb").exists()


def test_unknown_kernel(task: TaskContext) -> None:
    with pytest.raises(TaskError, match="no Jupyter kernel named 'cobol'; install ipykernel"):
        run_notebook(
            Path("notebooks/empty.ipynb"),
            parameters={},
            output_path=Path(task.output_dir) / "notebook.ipynb",
            cwd=Path(task.bundle_root),
            kernel_name="cobol",
        )
