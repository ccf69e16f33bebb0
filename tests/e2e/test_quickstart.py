"""The quickstart example bundle, end to end through the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import lakestack

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).parents[2] / "examples" / "quickstart"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".lakestack"))
    return target


def test_quickstart_end_to_end(project: Path) -> None:
    validated = lakestack("bundle", "validate", "--output", "json", cwd=project)
    assert validated.code == 0, validated.err
    assert validated.json()["resources"]["jobs"] == ["daily_pipeline", "nightly"]

    deployed = lakestack("bundle", "deploy", cwd=project)
    assert deployed.code == 0, deployed.err
    assert "Deployed 2 jobs to target dev" in deployed.out
    assert "Created schema main.quickstart" in deployed.out
    assert "Created volume main.quickstart.raw" in deployed.out

    listed = lakestack("jobs", "list", "-o", "json", cwd=project)
    assert [j["job_id"] for j in listed.json()] == ["daily_pipeline", "nightly"]
    assert listed.json()[0]["name"].startswith("[dev ")

    run = lakestack(
        "bundle", "run", "daily_pipeline", "--params", "rows=300", "-o", "json", cwd=project
    )
    assert run.code == 0, run.out + run.err
    result = run.json()
    assert result["state"] == "SUCCESS"
    latest = {t["task_key"]: t["state"] for t in result["tasks"] if t["iteration"] is None}
    assert latest == {
        "ingest": "SUCCESS",
        "profile": "SUCCESS",
        "train": "SUCCESS",
        "good_enough": "SUCCESS",
        "score_segments": "SUCCESS",
        "alert_low_accuracy": "EXCLUDED",
        "summary": "SUCCESS",
    }
    assert result["task_values"]["ingest"]["rows"] == 300
    assert result["task_values"]["train"]["accuracy"] >= 0.8
    run_id = result["run_id"]

    logs = lakestack("runs", "logs", str(run_id), "--task", "profile", cwd=project)
    assert logs.code == 0
    assert "setosa | 100" in logs.out

    summary_logs = lakestack(
        "runs", "logs", str(run_id), "--task", "summary", "-o", "json", cwd=project
    )
    [entry] = summary_logs.json()
    executed = Path(entry["log_dir"]) / "notebook.ipynb"
    assert executed.exists()
    assert "setosa.csv" in executed.read_text()

    tables = lakestack("tables", "list", "main.quickstart", "-o", "json", cwd=project).json()
    [flowers] = tables
    assert flowers["name"] == "main.quickstart.flowers"
    assert flowers["primary_keys"] == ["flower_id"]
    shown = lakestack("tables", "show", "main.quickstart.flowers", cwd=project)
    assert shown.code == 0 and "flower_id" in shown.out and "NOT NULL" in shown.out
    history = lakestack("tables", "history", "main.quickstart.flowers", "-o", "json", cwd=project)
    assert [h["operation"] for h in history.json()] == ["WRITE", "CREATE TABLE"]
    counted = lakestack(
        "sql",
        "SELECT count(*) AS n FROM main.quickstart.flowers VERSION AS OF 1 WHERE species = :s",
        "--param",
        "s=setosa",
        "-o",
        "json",
        cwd=project,
    )
    assert counted.json() == [{"n": 100}]
    missing = lakestack("sql", "SELECT * FROM main.quickstart.nope", cwd=project)
    assert missing.code == 1
    assert missing.err.strip() == (
        "Error: table main.quickstart.nope does not exist (tables in main.quickstart: flowers)"
    )

    text = lakestack("runs", "get", str(run_id), cwd=project)
    assert text.code == 0
    assert "score_segments" in text.out and "EXCLUDED" in text.out

    runs = lakestack("runs", "list", "-o", "json", cwd=project)
    assert [r["run_id"] for r in runs.json()] == [run_id]

    summary = lakestack("bundle", "summary", "-o", "json", cwd=project)
    assert summary.json()["deployment"]["up_to_date"] is True

    destroyed = lakestack("bundle", "destroy", "--auto-approve", cwd=project)
    assert destroyed.code == 0
    assert "dropped schemas main.quickstart" in destroyed.out
    assert lakestack("tables", "list", "-o", "json", cwd=project).json() == []
    assert lakestack("jobs", "list", "-o", "json", cwd=project).json() == []
    assert (
        lakestack("runs", "get", str(run_id), "-o", "json", cwd=project).json()["state"]
        == "SUCCESS"
    )


def test_nightly_runs_the_pipeline_as_a_child_run(project: Path) -> None:
    run = lakestack("bundle", "run", "nightly", "-t", "ci", "-o", "json", cwd=project)
    assert run.code == 0, run.out + run.err
    [child] = run.json()["child_runs"]
    child_run = lakestack("runs", "get", str(child), "-t", "ci", "-o", "json", cwd=project).json()
    assert child_run["parameters"]["rows"] == "2000"
    assert child_run["parent_run_id"] == run.json()["run_id"]

    text_run = lakestack("bundle", "run", "nightly", "-t", "ci", cwd=project)
    assert text_run.code == 0, text_run.out + text_run.err
    lines = text_run.out.splitlines()
    assert lines[0].startswith("Run ") and "of job nightly started" in lines[0]
    assert any("child run" in line and "daily_pipeline" in line for line in lines)
    assert any(line.strip().startswith("daily_pipeline.train") for line in lines)
    assert "[green]" not in text_run.out
    nightly_id = lines[0].split()[1]
    notes = lakestack("runs", "logs", nightly_id, "-t", "ci", cwd=project)
    assert f"its output: lakestack runs logs {int(nightly_id) + 1}" in notes.out
    loop = lakestack(
        "runs", "logs", str(child), "-t", "ci", "--task", "score_segments", cwd=project
    )
    assert "iterations succeeded; each is listed as score_segments[i]" in loop.out
    condition = lakestack(
        "runs", "logs", str(child), "-t", "ci", "--task", "good_enough", cwd=project
    )
    assert "(condition evaluated to true)" in condition.out
