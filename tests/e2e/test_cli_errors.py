"""Bad input through the CLI: one line saying what is wrong and what to do, exit code 1, and
nothing written to the workspace state."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.e2e.conftest import lakestack

pytestmark = pytest.mark.e2e

TASK = "spark_python_task: {python_file: task.py}"


def write(root: Path, text: str, name: str = "lakestack.yml") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    (root / "task.py").write_text("print('ok')\n", encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        (
            "bundle: {name: x}\nresources:\n  jobs:\n    j:\n      tasks: [{task_key: a\n",
            r"^Error: lakestack\.yml:\d+: malformed YAML: .*; fix the syntax at this line$",
        ),
        (
            f"bundle: {{name: x}}\nresources:\n  jobs:\n    j:\n      tasks:\n        - task_key: a\n          depend_on: []\n          {TASK}\n",
            r"^Error: lakestack\.yml:7: unknown key 'depend_on' in resources\.jobs\.j\.tasks\[0\]; did you mean 'depends_on'\?$",
        ),
        (
            f"bundle: {{name: x}}\nresources:\n  jobs:\n    j:\n      max_concurrent_runs: lots\n      tasks:\n        - task_key: a\n          {TASK}\n",
            r"^Error: lakestack\.yml:5: resources\.jobs\.j\.max_concurrent_runs: expected an integer, got 'lots'$",
        ),
        (
            f"bundle: {{name: x}}\nvariables:\n  catalog: {{description: c}}\nresources:\n  jobs:\n    j:\n      name: ${{var.catalog}}\n      tasks:\n        - task_key: a\n          {TASK}\n",
            r"^Error: lakestack\.yml:3: catalog: variable 'catalog' has no value; set a default, a target override, --var catalog=\.\.\. or BUNDLE_VAR_catalog$",
        ),
        (
            f"bundle: {{name: x}}\nresources:\n  jobs:\n    j:\n      name: ${{var.nope}}\n      tasks:\n        - task_key: a\n          {TASK}\n",
            r"^Error: lakestack\.yml:5: .*variable 'nope' is not defined \(defined: none\); declare it under variables$",
        ),
        (
            "bundle: {name: x}\nresources:\n  jobs:\n    j:\n      tasks:\n        - task_key: a\n          spark_python_task: {python_file: task.py, parameters: ['{{tasks.b.values.x}}']}\n        - task_key: b\n          spark_python_task: {python_file: task.py}\n",
            r"^Error: lakestack\.yml:7: .*\{\{tasks\.b\.values\.x\}\}: task 'b' is not upstream of this task; add it to depends_on$",
        ),
        (
            f"bundle: {{name: x}}\nresources:\n  jobs:\n    j:\n      tasks:\n        - {{task_key: a, depends_on: [{{task_key: c}}], {TASK}}}\n        - {{task_key: b, depends_on: [{{task_key: a}}], {TASK}}}\n        - {{task_key: c, depends_on: [{{task_key: b}}], {TASK}}}\n",
            r"^Error: lakestack\.yml:\d+: job 'j': depends_on has a cycle: a -> c -> b -> a; remove one of these depends_on entries$",
        ),
        (
            f"bundle: {{name: x}}\nresources:\n  jobs:\n    j:\n      tasks:\n        - {{task_key: a, depends_on: [{{task_key: z}}], {TASK}}}\n",
            r"^Error: lakestack\.yml:6: job 'j', task 'a' depends on 'z', which is not a task of the job \(tasks: a\)$",
        ),
        (
            "bundle: {name: x}\nresources:\n  jobs:\n    j:\n      tasks:\n        - {task_key: a, spark_python_task: {python_file: src/train.py}}\n",
            r"^Error: lakestack\.yml:6: spark_python_task\.python_file: src/train\.py does not exist \(looked for .*/src/train\.py\); fix the path$",
        ),
    ],
    ids=[
        "malformed_yaml",
        "unknown_key",
        "wrong_type",
        "missing_variable",
        "undefined_variable",
        "dangling_reference",
        "cycle",
        "missing_dependency",
        "missing_task_file",
    ],
)
@pytest.mark.parametrize(
    "command", [["bundle", "validate"], ["bundle", "deploy"], ["bundle", "run", "j"]]
)
def test_bad_bundle_is_one_line_exit_1_and_writes_nothing(
    tmp_path: Path, bundle: str, message: str, command: list[str]
) -> None:
    root = write(tmp_path / "p", bundle)
    result = lakestack(*command, cwd=root)
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert re.search(message, lines[0]), lines[0]
    assert result.out == ""
    assert not (root / ".lakestack").exists()


def test_unknown_key_in_databricks_yml_is_a_warning_unless_strict(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        f"bundle: {{name: x}}\nresources:\n  jobs:\n    j:\n      tasks:\n        - task_key: a\n          git_source_info: x\n          {TASK}\n",
        name="databricks.yml",
    )
    lenient = lakestack("bundle", "validate", cwd=root)
    assert lenient.code == 0
    assert (
        "Warning: databricks.yml:7: unknown key 'git_source_info' in resources.jobs.j.tasks[0]"
        in lenient.err
    )
    strict = lakestack("bundle", "validate", "--strict", cwd=root)
    assert strict.code == 1
    assert strict.err.startswith("Error: databricks.yml:7: unknown key 'git_source_info'")


def test_ignored_compute_keys_are_reported_once(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        f"""
        bundle: {{name: x}}
        resources:
          jobs:
            j:
              job_clusters: [{{job_cluster_key: c, new_cluster: {{spark_version: 15.3.x}}}}]
              tasks:
                - {{task_key: a, job_cluster_key: c, {TASK}}}
                - {{task_key: b, job_cluster_key: c, {TASK}}}
        """,
    )
    result = lakestack("bundle", "validate", cwd=root)
    assert result.code == 0
    [line] = [ln for ln in result.out.splitlines() if ln.startswith("Ignored")]
    assert line.count("job_clusters") == 1
    assert "tasks[a].job_cluster_key" in line and "tasks[b].job_cluster_key" in line


def test_bad_run_requests(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        f"bundle: {{name: x}}\nresources:\n  jobs:\n    j:\n      parameters: [{{name: p, default: '1'}}]\n      tasks:\n        - task_key: a\n          {TASK}\n",
    )
    unknown_job = lakestack("bundle", "run", "jj", cwd=root)
    assert (unknown_job.code, unknown_job.err.strip()) == (
        1,
        "Error: job 'jj' is not defined in bundle 'x' (target default); defined jobs: j; did you mean 'j'?",
    )
    unknown_param = lakestack("bundle", "run", "j", "--params", "q=1", cwd=root)
    assert (unknown_param.code, unknown_param.err.strip()) == (
        1,
        "Error: job 'j' has no parameter 'q' (parameters: p)",
    )
    assert not (root / ".lakestack").exists()
    missing_run = lakestack("runs", "get", "99", cwd=root)
    assert (missing_run.code, missing_run.err.strip()) == (
        1,
        "Error: run 99 does not exist; list runs with: lakestack runs list",
    )
    usage = lakestack("runs", "get", "abc", cwd=root)
    assert usage.code == 2
    unknown_target = lakestack("bundle", "validate", "-t", "prd", cwd=root)
    assert unknown_target.code == 1 and "prd" in unknown_target.err


def test_a_task_that_raises_fails_the_run_with_its_message(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        f"bundle: {{name: x}}\nresources:\n  jobs:\n    j:\n      tasks:\n        - task_key: a\n          {TASK}\n",
    )
    (root / "task.py").write_text("raise KeyError('customer_id')\n")
    result = lakestack("bundle", "run", "j", cwd=root)
    assert result.code == 1
    assert "FAILED" in result.out
    detail = lakestack("runs", "get", "1", "-o", "json", cwd=root).json()
    assert detail["state"] == "FAILED"
    assert detail["tasks"][0]["error"] == "KeyError: 'customer_id'"
    assert detail["state_message"] == "task a FAILED: KeyError: 'customer_id'"


def test_help_is_fast_and_lists_the_commands(tmp_path: Path) -> None:
    result = lakestack("--help", cwd=tmp_path)
    assert result.code == 0
    for group in ("bundle", "runs", "jobs"):
        assert group in result.out


def test_mlops_stacks_bundle_validates_unchanged_through_the_cli() -> None:
    stacks = Path(__file__).parents[1] / "fixtures" / "bundles" / "mlops_stacks"
    for target in ("dev", "staging", "prod", "test"):
        result = lakestack("bundle", "validate", "-t", target, "-o", "json", cwd=stacks)
        assert result.code == 0, result.err
        data = result.json()
        assert data["target"] == target
        assert set(data["resources"]["jobs"]) >= {
            "model_training_job",
            "batch_inference_job",
            "retraining_job",
        }
        # the template's stray keys are warnings, never errors, in a databricks.yml bundle
        assert all(line.startswith('{"warning"') for line in result.err.splitlines())
    assert not (stacks / ".lakestack").exists()
