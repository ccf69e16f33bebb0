"""The batch_inference entry point, as a job task runs it: workspace catalog and MLflow from the
environment the orchestrator sets, results as task values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakestack.errors import UsageError
from lakestack.inference.task import main, model_uri_of
from lakestack.jobs.context import CONTEXT_ENV, VALUES_FILE, TaskContext
from lakestack.lake import Catalog
from lakestack.registry import Tracking

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture
def task_env(
    catalog: Catalog, tracking: Tracking, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The environment of a task process; returns the task's output folder."""
    output = tmp_path / "task-output"
    context = TaskContext(
        run_id=7,
        job_id="batch_inference_job",
        job_name="batch inference",
        task_key="batch_inference",
        attempt=0,
        target="dev",
        bundle_root=str(tmp_path),
        workspace_root=str(tmp_path),
        output_dir=str(output),
    )
    context.write(tmp_path / "context.json")
    monkeypatch.setenv(CONTEXT_ENV, str(tmp_path / "context.json"))
    monkeypatch.setenv("LAKESTACK_WAREHOUSE", catalog.root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.tracking_uri)
    return output


def test_the_task_scores_with_the_champion_and_sets_task_values(
    catalog: Catalog,
    classifier: dict,
    input_table: str,
    task_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["--model_name", classifier["name"], "--input_table", input_table]
    assert main([*argv, "--output_table", "main.s.inferences"]) == 0

    values = json.loads((task_env / VALUES_FILE).read_text())
    assert {k: values[k] for k in ("rows", "output_table", "output_version", "model_version")} == {
        "rows": 1_000,
        "output_table": "main.s.inferences",
        "output_version": 1,
        "model_version": 1,  # champion
    }
    assert values["model_id"] == "main.ml.iris/1"
    assert "scored 1000 rows of main.s.flowers with main.ml.iris/1" in capsys.readouterr().out

    main(
        [
            *argv,
            "--model_version",
            "2",
            "--output_table",
            "main.s.inferences",
            "--mode",
            "overwrite",
        ]
    )
    values = json.loads((task_env / VALUES_FILE).read_text())
    assert (values["model_version"], values["output_version"]) == (2, 2)
    out = catalog.table("main.s.inferences").read()
    assert out.num_rows == 1_000
    assert out.column("model_id").unique().to_pylist() == ["main.ml.iris/2"]


def test_model_parameters() -> None:
    assert model_uri_of(None, "m.s.x", None, None) == "models:/m.s.x@champion"
    assert model_uri_of(None, "m.s.x", "3", None) == "models:/m.s.x/3"
    assert model_uri_of(None, "m.s.x", None, "challenger") == "models:/m.s.x@challenger"
    assert model_uri_of("runs:/abc/model", None, None, None) == "runs:/abc/model"
    with pytest.raises(UsageError, match=r"^pass --model_version or --alias for model m.s.x, not"):
        model_uri_of(None, "m.s.x", "3", "champion")
    with pytest.raises(UsageError, match=r"^pass --model_name \(with --model_version or --alias\)"):
        model_uri_of(None, None, None, None)
    with pytest.raises(UsageError, match=r"^pass --model_uri, or --model_name .*not both$"):
        model_uri_of("models:/m.s.x/1", "m.s.x", None, None)


def test_the_task_as_a_process(
    catalog: Catalog, tracking: Tracking, classifier: dict, input_table: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "LAKESTACK_WAREHOUSE": catalog.root,
        "MLFLOW_TRACKING_URI": tracking.tracking_uri,
    }
    env.pop(CONTEXT_ENV, None)
    command = [sys.executable, "-m", "lakestack.inference.task", "--input_table", input_table]
    done = subprocess.run(
        [*command, "--model_uri", "models:/main.ml.iris@champion", "--output_table", "main.s.out"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert catalog.table("main.s.out").read().num_rows == 1_000

    failed = subprocess.run(
        [*command, "--model_name", "main.ml.nope", "--output_table", "main.s.out2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1
    assert (
        failed.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: model main.ml.nope does not exist")
    )
    assert not catalog.table_exists("main.s.out2")
