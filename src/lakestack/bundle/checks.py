"""Checks that span several keys: job DAGs, run-time references, links between resources."""

from __future__ import annotations

import json
from typing import Any

from lakestack.bundle.paths import iter_tasks
from lakestack.bundle.specs.jobs import TASK_KINDS, JobSpec, TaskSpec
from lakestack.bundle.specs.resources import ResourcesSpec
from lakestack.errors import ConfigError, CycleError, Location, ReferenceError_, did_you_mean
from lakestack.utils.dag import DAG
from lakestack.utils.refs import check_ref, find_refs
from lakestack.utils.yaml import YamlList, YamlMap, location_of

__all__ = [
    "UNSUPPORTED_TASK_KINDS",
    "check_resources",
    "check_task_kinds",
    "deployment_job_warnings",
]

UNSUPPORTED_TASK_KINDS = (
    "pipeline_task",
    "dbt_task",
    "spark_jar_task",
    "spark_submit_task",
    "clean_rooms_notebook_task",
    "dashboard_task",
    "power_bi_task",
    "gen_ai_compute_task",
    "alert_task",
)


def _loc(raw: Any, *path: str | int) -> Location | None:
    where = location_of(raw, tuple(path))
    return Location(where.file, where.line) if where else None


def check_task_kinds(resources: Any) -> None:
    """Reject task kinds lakestack cannot run, before validation hides them as unknown keys."""
    for job_key, task, _ in iter_tasks(resources):
        for kind in UNSUPPORTED_TASK_KINDS:
            if kind in task:
                where = task.location(kind) if isinstance(task, YamlMap) else None
                raise ConfigError(
                    f"job '{job_key}', task '{task.get('task_key')}': {kind} is not supported "
                    f"by lakestack; use one of {', '.join(TASK_KINDS)}",
                    location=Location(where.file, where.line) if where else None,
                )


def check_resources(resources: ResourcesSpec, raw: Any) -> None:
    """Cross-checks of validated resources; ``raw`` is the data they came from (positions).

    Raises:
        ConfigError: A dangling depends_on, a bad outcome or for_each input, an unknown job.
        CycleError: depends_on has a cycle.
        ReferenceError_: A ``{{...}}`` reference that cannot resolve where it is written.
    """
    for key, job in resources.jobs.items():
        _check_job(key, job, raw, set(resources.jobs))
    for key, model in resources.registered_models.items():
        if model.deployment_job is not None and model.deployment_job not in resources.jobs:
            _unknown_job(
                model.deployment_job,
                resources,
                f"registered model '{key}': deployment_job",
                _loc(raw, "registered_models", key, "deployment_job"),
            )


def _unknown_job(name: str, resources: ResourcesSpec, what: str, where: Location | None) -> None:
    hint = did_you_mean(name, resources.jobs)
    defined = ", ".join(sorted(resources.jobs)) or "none"
    raise ConfigError(
        f"{what} '{name}' is not a job of the bundle (jobs: {defined})"
        + (f"; did you mean '{hint}'?" if hint else "; use ${resources.jobs.<key>.id}"),
        location=where,
    )


def _check_job(key: str, job: JobSpec, raw: Any, jobs: set[str]) -> None:
    tasks = {t.task_key: t for t in job.tasks}
    dag: DAG[str] = DAG()
    for i, task in enumerate(job.tasks):
        for j, dep in enumerate(task.depends_on):
            where = _loc(raw, "jobs", key, "tasks", i, "depends_on", j)
            if dep.task_key not in tasks:
                hint = did_you_mean(dep.task_key, tasks)
                raise ConfigError(
                    f"job '{key}', task '{task.task_key}' depends on '{dep.task_key}', which "
                    "is not a task of the job"
                    + (f"; did you mean '{hint}'?" if hint else f" (tasks: {', '.join(tasks)})"),
                    location=where,
                )
            if dep.outcome is not None and tasks[dep.task_key].condition_task is None:
                raise ConfigError(
                    f"job '{key}', task '{task.task_key}': outcome is only allowed on a "
                    f"dependency that is a condition_task, and '{dep.task_key}' is not",
                    location=where,
                )
        dag.add(task.task_key, [d.task_key for d in task.depends_on])
        if task.run_job_task is not None:
            job_id = task.run_job_task.job_id
            if job_id not in jobs and not job_id.isdigit():
                hint = did_you_mean(job_id, jobs)
                raise ConfigError(
                    f"job '{key}', task '{task.task_key}': run_job_task.job_id '{job_id}' is "
                    f"not a job of the bundle (jobs: {', '.join(sorted(jobs))})"
                    + (f"; did you mean '{hint}'?" if hint else ""),
                    location=_loc(raw, "jobs", key, "tasks", i, "run_job_task", "job_id"),
                )
    cycle = dag.cycle()
    if cycle:
        first = job.tasks.index(tasks[cycle[0]])
        raise CycleError(
            cycle,
            what=f"job '{key}': depends_on",
            location=_loc(raw, "jobs", key, "tasks", first, "depends_on"),
        )
    params = {p.name for p in job.parameters}
    for i, param in enumerate(job.parameters):
        for ref in find_refs(param.default):
            problem = check_ref(ref.path, task_keys=(), upstream=(), parameters=())
            if ref.path.startswith(("task.", "tasks.", "job.parameters.")):
                problem = "a job parameter cannot refer to tasks or to other parameters"
            if problem is not None:
                raise ReferenceError_(
                    f"job '{key}', parameter '{param.name}': {ref.raw}: {problem}; a job "
                    "parameter default may use {{job.*}}, {{bundle.target}} and {{workspace.*}}",
                    location=_loc(raw, "jobs", key, "parameters", i, "default"),
                )
    for i, task in enumerate(job.tasks):
        upstream = dag.ancestors(task.task_key)
        node = location_of(raw, ("jobs", key, "tasks", i))
        raw_task = _node(raw, "jobs", key, "tasks", i)
        _check_refs(raw_task, node, key, task, tasks, upstream, params)
        if task.for_each_task is not None:
            _check_inputs(task, _loc(raw, "jobs", key, "tasks", i, "for_each_task", "inputs"), key)


def _node(raw: Any, *path: str | int) -> Any:
    node = raw
    for part in path:
        if isinstance(node, (dict, list)):
            node = node[part]  # type: ignore[index]
    return node


def _check_inputs(task: TaskSpec, where: Location | None, job_key: str) -> None:
    assert task.for_each_task is not None
    inputs = task.for_each_task.inputs
    if not isinstance(inputs, str):
        return
    text = inputs.strip()
    refs = find_refs(text)
    if len(refs) == 1 and refs[0].raw == text:
        return
    try:
        if isinstance(json.loads(text), list):
            return
    except ValueError:
        pass
    raise ConfigError(
        f"job '{job_key}', task '{task.task_key}': for_each_task.inputs must be a JSON list or "
        f"one {{{{...}}}} reference, got {inputs!r}",
        location=where,
    )


def _check_refs(
    node: Any,
    where: Location | None,
    job_key: str,
    task: TaskSpec,
    tasks: dict[str, TaskSpec],
    upstream: set[str],
    params: set[str],
    in_for_each: bool = False,
) -> None:
    if isinstance(node, str):
        for ref in find_refs(node):
            problem = check_ref(
                ref.path,
                task_keys=tasks,
                upstream=upstream,
                parameters=params,
                in_for_each=in_for_each,
            )
            if problem:
                raise ReferenceError_(
                    f"job '{job_key}', task '{task.task_key}': {ref.raw}: {problem}",
                    location=Location(where.file, where.line) if where else None,
                )
    elif isinstance(node, dict):
        for key, value in node.items():
            inner = in_for_each or (key == "task" and "inputs" in node)
            sub = node.location(key) if isinstance(node, YamlMap) else where
            _check_refs(value, sub, job_key, task, tasks, upstream, params, inner)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            sub = node.location(i) if isinstance(node, YamlList) else where
            _check_refs(value, sub, job_key, task, tasks, upstream, params, in_for_each)


def deployment_job_warnings(resources: ResourcesSpec) -> list[str]:
    """Deployment jobs that do not declare ``model_name`` and ``model_version``: a new version
    could not start them. A warning, not an error: MLOps Stacks links its training job, and a
    real Databricks bundle must validate unchanged."""
    warnings = []
    for key, model in resources.registered_models.items():
        job = resources.jobs.get(model.deployment_job or "")
        if job is None:
            continue
        declared = {p.name for p in job.parameters}
        missing = [p for p in ("model_name", "model_version") if p not in declared]
        if missing:
            warnings.append(
                f"job '{model.deployment_job}' is the deployment_job of registered model "
                f"'{key}' but does not declare the parameter(s) {', '.join(missing)}: new "
                "versions cannot start it; add model_name and model_version to its parameters"
            )
    return warnings
