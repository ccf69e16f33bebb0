"""Unknown keys, wrong values, job DAGs, run-time references and cross-resource checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lakestack.bundle import load_bundle
from lakestack.errors import ConfigError, CycleError, ReferenceError_, UnknownKeyError

from .conftest import FIXTURES, USER, Loader, Writer


def _job(tasks: str, extra: str = "") -> str:
    return f"bundle: {{name: demo}}\nresources:\n  jobs:\n    etl:\n{extra}      tasks:\n{tasks}"


WHEEL = "python_wheel_task: {package_name: pkg, entry_point: main}"


def test_unknown_key_in_lakestack_yml_is_an_error(tmp_path: Path) -> None:
    text = (FIXTURES / "unknown_key" / "databricks.yml").read_text()
    (tmp_path / "lakestack.yml").write_text(text)
    with pytest.raises(
        UnknownKeyError,
        match=r"^lakestack.yml:10: unknown key 'depend_on' in resources.jobs.etl.tasks\[1\]; "
        r"did you mean 'depends_on'\?",
    ):
        load_bundle(tmp_path, environ={}, user=USER)


def test_unknown_key_in_databricks_yml_is_a_warning(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "unknown_key", tmp_path / "b")
    bundle = load_bundle(tmp_path / "b", environ={}, user=USER)
    assert bundle.warnings == [
        "databricks.yml:10: unknown key 'depend_on' in resources.jobs.etl.tasks[1]; "
        "did you mean 'depends_on'? (ignored)"
    ]
    assert bundle.job("etl").tasks[1].depends_on == []
    with pytest.raises(UnknownKeyError, match=r"databricks.yml:10: .*did you mean 'depends_on'"):
        load_bundle(tmp_path / "b", strict=True, environ={}, user=USER)


def test_top_level_unknown_key(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": "bundle: {name: d}\nresorces: {}\n"})
    with pytest.raises(UnknownKeyError, match=r"lakestack.yml:2: .*did you mean 'resources'"):
        load()


def test_wrong_type_and_bad_enum(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": _job(f"        - {{task_key: a, timeout_seconds: abc, {WHEEL}}}\n")})
    with pytest.raises(
        ConfigError,
        match=r"^lakestack.yml:6: resources.jobs.etl.tasks\[0\].timeout_seconds: "
        r"expected an integer, got 'abc'$",
    ):
        load()
    write({"lakestack.yml": _job(f"        - {{task_key: a, run_if: SOMETIMES, {WHEEL}}}\n")})
    with pytest.raises(ConfigError, match=r"tasks\[0\].run_if: input should be 'ALL_SUCCESS'"):
        load()


def test_dangling_depends_on(write: Writer, load: Loader) -> None:
    tasks = (
        f"        - {{task_key: train, {WHEEL}}}\n        - task_key: b\n"
        f"          depends_on: [{{task_key: trian}}]\n          {WHEEL}\n"
    )
    write({"lakestack.yml": _job(tasks)})
    with pytest.raises(
        ConfigError,
        match=r"^lakestack.yml:8: job 'etl', task 'b' depends on 'trian', which is not a task "
        r"of the job; did you mean 'train'\?",
    ):
        load()


def test_cycle_is_printed() -> None:
    with pytest.raises(
        CycleError, match=r"lakestack.yml:8: job 'etl': depends_on has a cycle: a -> c -> b -> a"
    ):
        load_bundle(FIXTURES / "cyclic_job", environ={}, user=USER)


def test_outcome_only_after_a_condition_task(write: Writer, load: Loader) -> None:
    tasks = (
        f"        - {{task_key: a, {WHEEL}}}\n        - task_key: b\n"
        f"          depends_on: [{{task_key: a, outcome: true}}]\n          {WHEEL}\n"
    )
    write({"lakestack.yml": _job(tasks)})
    with pytest.raises(
        ConfigError,
        match=r"outcome is only allowed on a dependency that is a "
        r"condition_task, and 'a' is not",
    ):
        load()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{{tasks.a.values.x}}", r"task 'a' is not upstream of this task; add it to depends_on"),
        ("{{tasks.zz.values.x}}", r"task 'zz' does not exist"),
        ("{{job.parameters.nope}}", r"job parameter 'nope' is not declared \(declared: p\)"),
        ("{{input}}", r"only defined inside for_each_task.task"),
    ],
)
def test_run_time_references_are_checked(
    write: Writer, load: Loader, value: str, message: str
) -> None:
    tasks = (
        f"        - {{task_key: a, {WHEEL}}}\n"
        "        - task_key: b\n"
        "          python_wheel_task:\n"
        "            package_name: pkg\n"
        "            entry_point: main\n"
        f'            parameters: ["--x", "{value}"]\n'
    )
    write({"lakestack.yml": _job(tasks, "      parameters: [{name: p, default: '1'}]\n")})
    with pytest.raises(
        ReferenceError_, match=r"^lakestack.yml:12: job 'etl', task 'b': .*" + message
    ):
        load()


@pytest.mark.parametrize(
    ("default", "message"),
    [
        ("{{tasks.a.values.x}}", "a job parameter cannot refer to tasks or to other parameters"),
        ("{{job.parameters.p}}", "a job parameter cannot refer to tasks or to other parameters"),
        ("{{task.name}}", "a job parameter cannot refer to tasks or to other parameters"),
        ("{{job.nope}}", "unknown reference"),
    ],
)
def test_job_parameter_defaults_may_only_use_job_references(
    write: Writer, load: Loader, default: str, message: str
) -> None:
    tasks = f"        - {{task_key: a, {WHEEL}}}\n"
    extra = f"      parameters:\n        - {{name: p, default: '1'}}\n        - {{name: q, default: '{default}'}}\n"
    write({"lakestack.yml": _job(tasks, extra)})
    with pytest.raises(
        ReferenceError_,
        match=r"^lakestack.yml:7: job 'etl', parameter 'q': .*" + message,
    ):
        load()


def test_job_parameter_defaults_with_job_references_load(write: Writer, load: Loader) -> None:
    tasks = f"        - {{task_key: a, {WHEEL}}}\n"
    extra = "      parameters: [{name: day, default: 'run-{{job.start_time.iso_date}}'}]\n"
    write({"lakestack.yml": _job(tasks, extra)})
    assert load().resources.jobs["etl"].parameters[0].default == "run-{{job.start_time.iso_date}}"


def test_for_each_inputs_and_input_reference(write: Writer, load: Loader) -> None:
    tasks = (
        "        - task_key: loop\n"
        "          for_each_task:\n"
        "            inputs: 'INPUTS'\n"
        "            task:\n"
        "              task_key: inner\n"
        "              python_wheel_task: {package_name: p, entry_point: m, "
        "parameters: ['{{input}}']}\n"
    )
    write({"lakestack.yml": _job(tasks.replace("INPUTS", '["a", "b"]'))})
    assert load().job("etl").tasks[0].for_each_task is not None
    write({"lakestack.yml": _job(tasks.replace("INPUTS", "a,b"))})
    with pytest.raises(ConfigError, match=r"lakestack.yml:8: .*inputs must be a JSON list or one"):
        load()


def test_unsupported_task_kind_and_git_source(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": _job("        - {task_key: a, pipeline_task: {pipeline_id: x}}\n")})
    with pytest.raises(ConfigError, match=r"task 'a': pipeline_task is not supported by lakestack"):
        load()
    tasks = "        - task_key: a\n          notebook_task: {notebook_path: nb, source: GIT}\n"
    write({"lakestack.yml": _job(tasks)})
    with pytest.raises(ConfigError, match=r"lakestack.yml:7: git_source is not supported"):
        load()


def test_notebook_extension_is_resolved(write: Writer, load: Loader, tmp_path: Path) -> None:
    tasks = "        - task_key: a\n          notebook_task: {notebook_path: nb/train}\n"
    write({"lakestack.yml": _job(tasks)})
    with pytest.raises(
        ConfigError,
        match=r"nb/train does not exist \(looked for .*train.ipynb, "
        r".*train.py\); fix the path",
    ):
        load()
    write({"nb/train.py": "# Databricks notebook source\n"})
    path = load().job("etl").tasks[0].notebook_task.notebook_path  # type: ignore[union-attr]
    assert path == str(tmp_path / "nb" / "train.py")
    write({"nb/train.ipynb": "{}"})
    path = load().job("etl").tasks[0].notebook_task.notebook_path  # type: ignore[union-attr]
    assert path == str(tmp_path / "nb" / "train.ipynb")


def test_workspace_file_path_maps_to_the_bundle_root(
    write: Writer, load: Loader, tmp_path: Path
) -> None:
    tasks = (
        "        - task_key: a\n"
        "          spark_python_task: {python_file: '${workspace.file_path}/src/t.py'}\n"
    )
    write({"lakestack.yml": _job(tasks), "src/t.py": "print(1)\n"})
    task = load().job("etl").tasks[0]
    assert task.spark_python_task is not None
    assert task.spark_python_task.python_file == str(tmp_path / "src" / "t.py")


def test_dev_mode_and_presets(write: Writer, load: Loader) -> None:
    write(
        {
            "lakestack.yml": _job(
                f"        - {{task_key: a, {WHEEL}}}\n",
                "      name: etl\n      schedule: {quartz_cron_expression: '0 0 * * * ?'}\n",
            )
            + "targets:\n  dev: {default: true, mode: development}\n"
            "  ci: {presets: {name_prefix: '[ci] ', tags: {ci: 'yes'}}}\n"
            "  prod: {mode: production}\n"
        }
    )
    dev = load().job("etl")
    assert dev.name == "[dev jane_doe] etl"
    assert dev.schedule is not None and dev.schedule.pause_status == "PAUSED"
    ci = load(target="ci").job("etl")
    assert ci.name == "[ci] etl" and ci.tags == {"ci": "yes"}
    prod = load(target="prod").job("etl")
    assert prod.name == "etl"
    assert prod.schedule is not None and prod.schedule.pause_status == "UNPAUSED"


def test_ignored_compute_keys_reported_once(write: Writer, load: Loader) -> None:
    tasks = f"        - {{task_key: a, job_cluster_key: c, {WHEEL}}}\n"
    write(
        {
            "databricks.yml": _job(tasks, "      job_clusters: [{job_cluster_key: c}]\n")
            + "workspace: {host: https://x}\nrun_as: {user_name: me}\n"
        }
    )
    bundle = load()
    assert bundle.ignored == [
        "workspace.host",
        "run_as",
        "resources.jobs.etl.tasks[a].job_cluster_key",
        "resources.jobs.etl.job_clusters",
    ]
    assert bundle.warnings == []


def test_content_hash(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": _job(f"        - {{task_key: a, {WHEEL}}}\n")})
    first, second = load(), load()
    assert first.content_hash == second.content_hash and len(first.content_hash) == 64
    write({"lakestack.yml": _job(f"        - {{task_key: b, {WHEEL}}}\n")})
    assert load().content_hash != first.content_hash


def test_unsupported_resource_type_warns(write: Writer, load: Loader) -> None:
    write({"databricks.yml": "bundle: {name: d}\nresources:\n  pipelines:\n    p: {name: x}\n"})
    assert load().warnings == [
        "databricks.yml:3: resource type pipelines is not supported by lakestack and is ignored"
    ]


RESOURCES = """
bundle: {name: demo}
resources:
  jobs:
    deploy:
      tasks: [{task_key: a, run_job_task: {job_id: "123"}}]
  registered_models:
    m: {name: m, catalog_name: c, schema_name: s, deployment_job: DEPLOY}
  model_serving_endpoints:
    ep:
      name: ep
      config:
        served_entities:
          - {name: champion, entity_name: c.s.m, alias: champion}
          - {name: challenger, entity_name: c.s.m, entity_version: 2}
        traffic_config:
          routes:
            - {served_entity_name: champion, traffic_percentage: 90}
            - {served_entity_name: challenger, traffic_percentage: PCT}
  quality_monitors:
    mon:
      table_name: TABLE
      output_schema_name: c.s
      inference_log: {problem_type: PROBLEM_TYPE_REGRESSION, prediction_col: p,
                      timestamp_col: ts, model_id_col: mid, granularities: [1 day]}
  schemas:
    s: {name: s, catalog_name: c}
  volumes:
    v: {name: v, catalog_name: c, schema_name: s}
"""


def _resources(deploy: str = "deploy", pct: str = "10", table: str = "c.s.t") -> str:
    return RESOURCES.replace("DEPLOY", deploy).replace("PCT", pct).replace("TABLE", table)


def test_resource_specs_and_cross_checks(write: Writer, load: Loader) -> None:
    write({"lakestack.yml": _resources()})
    bundle = load()
    served = bundle.resources.model_serving_endpoints["ep"].config.served_entities
    assert served[0].entity_version_alias == "champion"
    assert served[1].entity_version == "2"
    assert bundle.resources.volumes["v"].full_name == "c.s.v"
    write({"lakestack.yml": _resources(deploy="deplyo")})
    with pytest.raises(
        ConfigError,
        match=r"lakestack.yml:7: registered model 'm': deployment_job "
        r"'deplyo' is not a job of the bundle \(jobs: deploy\); did you mean",
    ):
        load()
    write({"lakestack.yml": _resources(pct="20")})
    with pytest.raises(ConfigError, match=r"lakestack.yml:11: .*percentages sum to 110, not 100"):
        load()
    write({"lakestack.yml": _resources(table="t")})
    with pytest.raises(ConfigError, match=r"lakestack.yml:21: .*table_name must be a three-level"):
        load()
    write({"lakestack.yml": _resources().replace('"123"', "other")})
    with pytest.raises(ConfigError, match=r"run_job_task.job_id 'other' is not a job"):
        load()


def test_auto_approve_only_in_development_targets(write: Writer, load: Loader) -> None:
    write(
        {
            "lakestack.yml": "bundle: {name: d}\nlakestack: {auto_approve: true}\n"
            "targets:\n  dev: {default: true, mode: development}\n  prod: {mode: production}\n"
        }
    )
    dev = load()
    assert dev.auto_approve and dev.task_environment["LAKESTACK_AUTO_APPROVE"] == "1"
    assert dev.warnings == []
    prod = load(target="prod")
    assert not prod.auto_approve and prod.task_environment["LAKESTACK_AUTO_APPROVE"] == "0"
    assert prod.warnings == [
        "target prod: lakestack.auto_approve is ignored because the target is not in mode: "
        "development (approval tasks wait for a person)"
    ]


def test_a_deployment_job_without_the_version_parameters_is_a_warning(
    write: Writer, load: Loader
) -> None:
    write(
        {
            "lakestack.yml": "bundle: {name: d}\nresources:\n  registered_models:\n"
            "    m: {name: m, catalog_name: c, schema_name: s, deployment_job: deploy}\n"
            "  jobs:\n    deploy:\n      parameters: [{name: model_name, default: x}]\n"
            f"      tasks: [{{task_key: a, {WHEEL}}}]\n"
        }
    )
    assert load().warnings == [
        "job 'deploy' is the deployment_job of registered model 'm' but does not declare the "
        "parameter(s) model_version: new versions cannot start it; add model_name and "
        "model_version to its parameters"
    ]


def test_dev_mode_pauses_monitor_schedules(write: Writer, load: Loader) -> None:
    monitor = (
        "resources:\n  quality_monitors:\n    m:\n      table_name: main.ml.t\n"
        "      output_schema_name: main.ml\n      snapshot: {}\n"
        "      schedule: {quartz_cron_expression: '0 0 8 * * ?'}\n"
    )
    write(
        {
            "lakestack.yml": "bundle: {name: b}\n" + monitor + "targets:\n"
            "  dev: {default: true, mode: development}\n  prod: {mode: production}\n"
        }
    )
    dev = load().resources.quality_monitors["m"].schedule
    prod = load(target="prod").resources.quality_monitors["m"].schedule
    assert dev is not None and dev.pause_status == "PAUSED"
    assert prod is not None and prod.pause_status == "UNPAUSED"
