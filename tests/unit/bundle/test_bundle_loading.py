"""Finding the bundle file, includes, targets and the MLOps Stacks bundle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lakestack.bundle import load_bundle
from lakestack.errors import ConfigError, JobError, TargetError

from .conftest import FIXTURES, USER, Loader, Writer

BASE = """
bundle: {name: demo}
targets:
  dev: {default: true}
  prod: {}
"""


def test_folder_and_parents_are_searched(write: Writer, load: Loader, tmp_path: Path) -> None:
    write({"lakestack.yml": BASE})
    (tmp_path / "src" / "deep").mkdir(parents=True)
    bundle = load(tmp_path / "src" / "deep")
    assert bundle.file == tmp_path / "lakestack.yml"
    assert bundle.root == tmp_path
    assert bundle.flavor == "lakestack"
    assert bundle.target == "dev"


def test_two_bundle_files_in_one_folder(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": BASE, "databricks.yml": BASE})
    with pytest.raises(ConfigError, match=r"lakestack.yml and databricks.yml"):
        load()


def test_no_bundle_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no bundle file"):
        load_bundle(tmp_path, environ={}, user=USER)


def test_includes_sorted_deduplicated_and_empty_globs(write: Writer, load: Loader) -> None:
    write(
        {
            "databricks.yml": """
            bundle: {name: demo}
            include: [resources/*.yml, resources/b.yml, nothing/*.yml]
            """,
            "resources/b.yml": "resources: {experiments: {b: {name: exp-b}}}",
            "resources/a.yml": "resources: {experiments: {a: {name: exp-a}}}",
        }
    )
    bundle = load()
    assert list(bundle.resources.experiments) == ["a", "b"]
    assert bundle.target == "default"


def test_resource_defined_twice_names_both_files(write: Writer, load: Loader) -> None:
    write(
        {
            "lakestack.yml": "bundle: {name: demo}\ninclude: ['*.yaml']\n",
            "one.yaml": "resources:\n  experiments:\n    e: {name: x}\n",
            "two.yaml": "# second\nresources:\n  experiments:\n    e: {name: y}\n",
        }
    )
    with pytest.raises(ConfigError, match=r"defined twice: at one.yaml:3 and at two.yaml:4"):
        load()


def test_explicit_target_and_legacy_environments(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": "bundle: {name: demo}\nenvironments:\n  a: {}\n  b: {}\n"})
    assert load(target="b").target == "b"


def test_unknown_target_names_valid_ones_and_nearest(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": BASE})
    with pytest.raises(
        TargetError,
        match=r"'prdo' is not defined; valid targets: dev, prod; "
        r"did you mean 'prod'\?",
    ):
        load(target="prdo")


def test_two_default_targets(write: Writer, load: Loader) -> None:
    write(
        {
            "lakestack.yml": "bundle: {name: d}\n"
            "targets:\n  a: {default: true}\n  b: {default: true}\n"
        }
    )
    with pytest.raises(TargetError, match=r"several targets are marked default: true \(a, b\)"):
        load()


def test_job_lookup_error(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": BASE})
    bundle = load()
    with pytest.raises(
        JobError, match=r"job 'trian' is not defined in bundle 'demo' \(target dev\)"
    ):
        bundle.job("trian")


def test_settings_and_workspace_root(write: Writer, load: Loader, tmp_path: Path) -> None:
    write(
        {
            "lakestack.yml": """
            bundle: {name: demo}
            lakestack: {compute: {engine: local, max_parallel_tasks: 2}}
            targets:
              dev: {default: true}
              team:
                lakestack:
                  root: shared
                  state_url: postgresql://db/lakestack
                  compute: {engine: ray}
            """
        }
    )
    dev = load()
    assert dev.workspace_root == tmp_path / ".lakestack"
    assert dev.state_url == f"sqlite:///{tmp_path / '.lakestack' / 'state.db'}"
    team = load(target="team")
    assert team.workspace_root == tmp_path / "shared"
    assert team.settings.compute.engine == "ray"
    assert team.settings.compute.max_parallel_tasks == 2
    assert team.state_url == "postgresql://db/lakestack"


def test_mlops_stacks_bundle_validates_unchanged(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "mlops_stacks", tmp_path / "proj")
    bundle = load_bundle(tmp_path / "proj", environ={}, user=USER)
    assert bundle.flavor == "databricks"
    assert bundle.mode == "development"
    assert set(bundle.resources.jobs) == {
        "model_training_job",
        "batch_inference_job",
        "write_feature_table_job",
        "retraining_job",
    }
    train = bundle.job("model_training_job")
    assert train.name == "[dev jane_doe] dev-my_mlops_project-model-training-job"
    assert train.schedule is not None and train.schedule.pause_status == "PAUSED"
    assert [t.task_key for t in train.tasks] == ["Train", "ModelValidation", "ModelDeployment"]
    nb = train.tasks[0].notebook_task
    assert nb is not None
    assert nb.notebook_path == str(tmp_path / "proj" / "training" / "notebooks" / "Train.py")
    assert nb.base_parameters["git_source_info"].startswith("url:")
    retrain = bundle.job("retraining_job")
    assert retrain.tasks[2].run_job_task is not None
    assert retrain.tasks[2].run_job_task.job_id == "model_training_job"
    model = bundle.resources.registered_models["model"]
    assert model.full_name == "dev.my_mlops_project.my_mlops_project-model"
    assert bundle.resources.quality_monitors
    assert any("git_source_info" in w and "monitoring-resource.yml:" in w for w in bundle.warnings)
    assert any("'new_cluster'" in w for w in bundle.warnings)
    assert "resources.jobs.model_training_job.job_clusters" in bundle.ignored
    assert len(bundle.ignored) == len(set(bundle.ignored))
    staging = load_bundle(tmp_path / "proj", target="staging", environ={}, user=USER)
    assert staging.job("model_training_job").name == "staging-my_mlops_project-model-training-job"
    assert staging.variables["catalog_name"] == "staging"
    with pytest.raises(ConfigError, match=r"resource.yml:1: unknown key .new_cluster."):
        load_bundle(tmp_path / "proj", strict=True, environ={}, user=USER)
