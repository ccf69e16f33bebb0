"""Bundle-time ``${...}`` substitutions and target overrides merged by key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lakestack.errors import ConfigError, ReferenceError_

from .conftest import Loader, Writer

SUBST = """
bundle:
  name: demo
  git: {origin_url: https://example.com/repo.git, branch: main, commit: abc123}
variables:
  catalog: {default: main}
workspace:
  host: https://adb-1.azuredatabricks.net
resources:
  jobs:
    train:
      name: train-${bundle.name}
      tasks:
        - task_key: t
          notebook_task:
            notebook_path: ./nb.py
            base_parameters:
              target: ${bundle.target}
              legacy: ${bundle.environment}
              user: ${workspace.current_user.userName}
              short: ${workspace.current_user.short_name}
              root: ${workspace.root_path}
              files: ${workspace.file_path}
              host: ${workspace.host}
              git: "${bundle.git.origin_url} ${bundle.git.branch} ${bundle.git.commit}"
              job_id: ${resources.jobs.train.id}
              model_id: ${resources.registered_models.m.id}
              exp: ${resources.experiments.e.id}
              other_name: ${resources.jobs.other.name}
              runtime: "{{job.run_id}}"
    other:
      name: other-${var.catalog}
      tasks:
        - task_key: o
          run_job_task: {job_id: "${resources.jobs.train.id}"}
  registered_models:
    m: {name: model, catalog_name: "${var.catalog}", schema_name: s,
        deployment_job: "${resources.jobs.train.id}"}
  experiments:
    e: {name: "/Users/${workspace.current_user.userName}/exp"}
targets:
  dev: {default: true}
"""


def test_every_substitution(write: Writer, load: Loader, notebook: Callable[[str], Path]) -> None:
    write({"databricks.yml": SUBST})
    notebook("nb.py")
    bundle = load()
    params = bundle.job("train").tasks[0].notebook_task.base_parameters  # type: ignore[union-attr]
    root = "/Workspace/Users/jane.doe@example.com/.bundle/demo/dev"
    assert params == {
        "target": "dev",
        "legacy": "dev",
        "user": "jane.doe@example.com",
        "short": "jane_doe",
        "root": root,
        "files": f"{root}/files",
        "host": "https://adb-1.azuredatabricks.net",
        "git": "https://example.com/repo.git main abc123",
        "job_id": "train",
        "model_id": "main.s.model",
        "exp": "/Users/jane.doe@example.com/exp",
        "other_name": "other-main",
        "runtime": "{{job.run_id}}",
    }
    assert bundle.git.commit == "abc123"
    assert bundle.workspace["root_path"] == root
    assert bundle.resources.registered_models["m"].deployment_job == "train"
    assert bundle.to_dict()["resources"]["jobs"]["train"]["name"] == "train-demo"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "${var.catalgo}",
            r"variable 'catalgo' is not defined \(defined: catalog\); "
            r"did you mean 'catalog'\?",
        ),
        (
            "${resources.jobs.trian.id}",
            r"'trian' does not exist in resources.jobs "
            r"\(there: train\); did you mean 'train'\?",
        ),
        ("${bundel.name}", r"references start with .*did you mean 'bundle'\?"),
        ("${workspace.current_user.username}", r"did you mean 'userName'\?"),
    ],
)
def test_unresolved_reference(write: Writer, load: Loader, ref: str, message: str) -> None:
    write(
        {
            "lakestack.yml": f"""
            bundle: {{name: demo}}
            variables:
              catalog: {{default: main}}
            resources:
              jobs:
                train:
                  name: "x-{ref}"
            """
        }
    )
    with pytest.raises(ReferenceError_, match=r"^lakestack.yml:7: name: \$\{.*" + message):
        load()


def test_complex_variable_inside_a_string(write: Writer, load: Loader) -> None:
    write(
        {
            "lakestack.yml": """
            bundle: {name: demo}
            variables:
              c: {type: complex, default: [1, 2]}
            resources:
              experiments:
                e: {name: "a-${var.c}"}
            """
        }
    )
    with pytest.raises(ReferenceError_, match=r"lakestack.yml:6: .*complex value"):
        load()


OVERRIDE_BASE = """
bundle: {name: demo}
include: [resources/jobs.yml]
targets:
  dev: {default: true}
  prod:
    resources:
      jobs:
        train:
          parameters:
            - {name: catalog, default: prod}
            - {name: extra, default: x}
          tasks:
            - task_key: a
              max_retries: 3
              notebook_task: {base_parameters: {mode: prod}}
            - task_key: c
              depends_on: [{task_key: a}]
              spark_python_task: {python_file: ../missing.py}
          tags: {env: prod}
"""

OVERRIDE_JOBS = """
resources:
  jobs:
    train:
      parameters:
        - {name: catalog, default: dev}
        - {name: schema, default: s}
      tags: {team: ml}
      tasks:
        - task_key: a
          notebook_task: {notebook_path: ../nb.py, base_parameters: {mode: dev, keep: "1"}}
        - task_key: b
          depends_on: [{task_key: a}]
          notebook_task: {notebook_path: ../nb.py}
"""


def test_target_overrides_merge_by_key(
    write: Writer, load: Loader, notebook: Callable[[str], Path], tmp_path: Path
) -> None:
    write({"proj/lakestack.yml": OVERRIDE_BASE, "proj/resources/jobs.yml": OVERRIDE_JOBS})
    notebook("proj/nb.py")
    proj = tmp_path / "proj"
    with pytest.raises(
        ConfigError,
        match=r"^lakestack.yml:18: spark_python_task.python_file: "
        r"../missing.py does not exist \(looked for .*missing.py\); fix the path",
    ):
        load(proj, target="prod")
        load(proj, target="prod")
    (proj / "missing.py").write_text("print(1)\n")
    with pytest.raises(ConfigError, match=r"does not exist"):
        load(proj, target="prod")  # relative to the file that wrote it: lakestack.yml's folder
    (tmp_path / "missing.py").write_text("print(1)\n")
    job = load(proj, target="prod").job("train")
    assert [(p.name, p.default) for p in job.parameters] == [
        ("catalog", "prod"),
        ("schema", "s"),
        ("extra", "x"),
    ]
    assert [t.task_key for t in job.tasks] == ["a", "b", "c"]
    assert job.tasks[0].max_retries == 3
    assert job.tasks[0].notebook_task is not None
    assert job.tasks[0].notebook_task.base_parameters == {"mode": "prod", "keep": "1"}
    assert job.tasks[0].notebook_task.notebook_path == str(proj / "nb.py")
    assert job.tags == {"team": "ml", "env": "prod"}
    dev = load(proj).job("train")
    assert [t.task_key for t in dev.tasks] == ["a", "b"]


def test_override_keeps_positions_for_errors(
    write: Writer, load: Loader, notebook: Callable[[str], Path], tmp_path: Path
) -> None:
    (tmp_path / "missing.py").write_text("print(1)\n")
    write(
        {
            "proj/lakestack.yml": OVERRIDE_BASE.replace("max_retries: 3", "max_retries: abc"),
            "proj/resources/jobs.yml": OVERRIDE_JOBS.replace('keep: "1"}}', 'keep: "1"}, bad: 1}'),
        }
    )
    notebook("proj/nb.py")
    proj = tmp_path / "proj"
    with pytest.raises(ConfigError, match=r"^resources/jobs.yml:10: unknown key 'bad'"):
        load(proj, target="prod")
    write({"proj/resources/jobs.yml": OVERRIDE_JOBS})
    with pytest.raises(
        ConfigError,
        match=r"^lakestack.yml:14: resources.jobs.train.tasks\[0\]"
        r".max_retries: expected an integer, got 'abc'",
    ):
        load(proj, target="prod")
