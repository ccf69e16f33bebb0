"""The façade: one bundle target bound to its state store and its executor.

The CLI and Python users call this; it loads the bundle, opens the backends the target names,
and delegates to the layers below. It stays small on purpose.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakestack.bundle import Bundle, load_bundle
from lakestack.bundle.specs.jobs import JobSpec
from lakestack.console import Console, NoopConsole
from lakestack.errors import ConfigError, JobError, RunError
from lakestack.jobs.notify import NotifyConfig, SmtpConfig
from lakestack.jobs.preload import preload_modules
from lakestack.jobs.reconcile import reconcile_runs
from lakestack.jobs.service import JobService, RunOptions, merge_parameters
from lakestack.state import open_state_store, redact_url
from lakestack.state.base import StateStore
from lakestack.state.models import DeploymentRecord, RunRecord, TaskRunRecord

if TYPE_CHECKING:
    from lakestack.jobs.scheduler import Scheduler
    from lakestack.lake import Catalog
    from lakestack.lifecycle.service import ApprovalResult, ModelLifecycle
    from lakestack.monitoring.refresh import RefreshResult
    from lakestack.registry.client import (
        DeployResult,
        ModelRegistry,
        ModelVersionInfo,
        RegisteredModelInfo,
    )

__all__ = ["Workspace", "run_to_dict", "task_run_to_dict"]


class Workspace:
    """One target of a bundle with its workspace state."""

    def __init__(self, bundle: Bundle, *, console: Console | None = None) -> None:
        self.bundle = bundle
        self.console = console or NoopConsole()
        self._state: StateStore | None = None
        self._variables: dict[str, str] = {}
        self._catalog: Catalog | None = None
        self._lifecycle: ModelLifecycle | None = None

    @classmethod
    def open(
        cls,
        path: Path | str | None = None,
        *,
        target: str | None = None,
        variables: Mapping[str, str] | None = None,
        strict: bool = False,
        console: Console | None = None,
    ) -> Workspace:
        """Load the bundle at ``path`` (default: the current folder or a parent) for ``target``."""
        root = (
            path
            or os.environ.get("LAKESTACK_BUNDLE_ROOT")
            or os.environ.get("DATABRICKS_BUNDLE_ROOT")
        )
        bundle = load_bundle(
            Path(root) if root else None, target=target, variables=variables, strict=strict
        )
        workspace = cls(bundle, console=console)
        workspace._variables = dict(variables or {})
        return workspace

    @property
    def state(self) -> StateStore:
        """The workspace state store (opened on first use)."""
        if self._state is None:
            self._state = open_state_store(self.bundle.state_url)
        return self._state

    def close(self) -> None:
        """Release the state store."""
        if self._state is not None:
            self._state.close()
            self._state = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # bundle ------------------------------------------------------------------------------

    def report_load_notes(self) -> None:
        """Show the loader's warnings and, once, the keys that are accepted but ignored."""
        for warning in self.bundle.warnings:
            self.console.warning(warning)
        if self.bundle.ignored:
            keys = ", ".join(sorted(self.bundle.ignored))
            self.console.info(f"Ignored (no meaning on this machine): {keys}")

    def validate(self) -> dict[str, Any]:
        """The validated bundle's summary (loading validated the rest).

        Raises:
            ConfigError: A job schedule or trigger that cannot work (a bad Quartz expression,
                time zone or period), named with its job.
        """
        b = self.bundle
        self._check_triggers()
        self._check_monitors()
        return {
            "name": b.name,
            "target": b.target,
            "mode": b.mode,
            "file": str(b.file),
            "workspace_root": str(b.workspace_root),
            "resources": {kind: sorted(items) for kind, items in _resources(b).items() if items},
            "warnings": list(b.warnings),
            "ignored": sorted(b.ignored),
            "content_hash": b.content_hash,
        }

    def deploy(self) -> DeploymentRecord:
        """Register the target's jobs in the workspace state."""
        b = self.bundle
        if b.settings.compute.engine != "local":
            raise ConfigError(
                f"lakestack.compute.engine '{b.settings.compute.engine}' is not available yet; "
                "use engine: local"
            )
        jobs = {
            key: (_job_name(key, spec), spec.model_dump(mode="json", exclude_none=True))
            for key, spec in b.resources.jobs.items()
        }
        self._check_triggers()
        self._deploy_catalog()
        self._deploy_registry()
        if b.has_deployment_jobs:
            for link in self.lifecycle.deployments.baseline():
                self.console.info(
                    f"Linked deployment job {link.job_key} to model {link.model_name}: "
                    "its new versions start a run"
                )
        return self.state.record_deployment(
            target=b.target,
            bundle_name=b.name,
            content_hash=b.content_hash,
            git_commit=b.git.commit,
            git_branch=b.git.branch,
            user=b.user,
            jobs=jobs,
        )

    def _check_triggers(self) -> None:
        from lakestack.jobs.scheduler import check_triggers

        for key, spec in self.bundle.resources.jobs.items():
            problems = check_triggers(key, spec)
            if problems:
                raise ConfigError(problems[0])

    def _check_monitors(self) -> None:
        """Monitor problems visible without their tables: granularities, metrics, schedules."""
        from lakestack.monitoring.monitor import check_monitor
        from lakestack.monitoring.schedule import check_schedule

        for key, spec in self.bundle.resources.quality_monitors.items():
            problems = check_monitor(key, spec)
            schedule = check_schedule(key, spec)
            if schedule is not None:
                problems.append(schedule)
            if problems:
                raise ConfigError(problems[0])

    def needs_deploy(self) -> bool:
        """Whether the bundle changed since the target's last deployment."""
        last = self.state.last_deployment(self.bundle.target)
        return last is None or last.content_hash != self.bundle.content_hash

    def destroy(self) -> dict[str, list[str]]:
        """Remove the target's jobs and deployments from the state (runs are kept), drop the
        bundle's volumes and schemas with what they hold, and delete the experiments and
        registered models this target created (others are kept, and said so)."""
        b = self.bundle
        self._end_paused_runs(f"target {b.target} was destroyed")
        registry = self._destroy_registry()
        volumes = [v.full_name for v in b.resources.volumes.values()]
        schemas = [s.full_name for s in b.resources.schemas.values()]
        for name in volumes:
            self.catalog.drop_volume(name)
        for name in schemas:
            if self.catalog.schema_exists(name):
                self.catalog.drop_schema(name, cascade=True)
        jobs = self.state.destroy_target(b.target, user=b.user)
        return {"jobs": jobs, "schemas": schemas, "volumes": volumes, **registry}

    def _end_paused_runs(self, message: str) -> None:
        """Runs paused for approval in this target end: nothing may resume them any more."""
        from lakestack.jobs.states import RunState

        service = self._service()
        for run in self.state.list_runs(
            target=self.bundle.target, states=(RunState.WAITING_FOR_APPROVAL.value,), limit=10_000
        ):
            service.end_paused(run.run_id, RunState.CANCELED, message)

    @property
    def catalog(self) -> Catalog:
        """The target's catalog: Delta tables and volumes in its warehouse."""
        if self._catalog is None:
            from lakestack.lake import Catalog

            self._catalog = Catalog(self.bundle.warehouse, self.bundle.settings.storage_options)
        return self._catalog

    def _deploy_catalog(self) -> None:
        """Create the bundle's schemas and volumes (existing ones are kept as they are)."""
        b = self.bundle
        for spec in b.resources.schemas.values():
            if not self.catalog.schema_exists(spec.full_name):
                self.catalog.create_schema(spec.full_name, comment=spec.comment)
                self.console.info(f"Created schema {spec.full_name}")
        for volume in b.resources.volumes.values():
            if volume.full_name not in self.catalog.list_volumes(
                f"{volume.catalog_name}.{volume.schema_name}"
            ):
                self.catalog.create_volume(volume.full_name, comment=volume.comment)
                self.console.info(f"Created volume {volume.full_name}")

    def _deploy_registry(self) -> None:
        """Create or update the bundle's experiments and registered models (aliases untouched)."""
        from lakestack.registry.resources import deploy_registry, has_registry_resources

        if has_registry_resources(self.bundle):
            for name in deploy_registry(self.registry, self.bundle).done:
                self.console.info(f"Created {name}")

    def _destroy_registry(self) -> dict[str, list[str]]:
        from lakestack.registry.resources import destroy_registry, has_registry_resources

        if not has_registry_resources(self.bundle):
            return {"deleted_registry": [], "kept_registry": []}
        changes = destroy_registry(self.registry, self.bundle)
        for name in changes.done:
            self.console.info(f"Deleted {name}")
        for name in changes.kept:
            self.console.info(f"Kept {name}: target {self.bundle.target} did not create it")
        return {"deleted_registry": changes.done, "kept_registry": changes.kept}

    # models ------------------------------------------------------------------------------

    @functools.cached_property
    def registry(self) -> ModelRegistry:
        """The target's MLflow model registry (``lakestack.tracking_uri``, default SQLite)."""
        from lakestack.registry.client import ModelRegistry
        from lakestack.registry.config import Tracking

        b = self.bundle
        registry = b.registry_uri if b.registry_uri != b.tracking_uri else None
        return ModelRegistry(Tracking(b.tracking_uri, registry))

    def model_name(self, name: str) -> str:
        """A model's three-level name, from itself or its key in the bundle's registered_models."""
        from lakestack.lifecycle.service import model_full_name

        return model_full_name(self.bundle, name)

    def models_list(self, prefix: str | None = None) -> list[RegisteredModelInfo]:
        """The registered models (whose name starts with ``prefix``)."""
        return self.registry.list_models(prefix)

    def model_versions(self, name: str) -> list[ModelVersionInfo]:
        """The versions of a registered model, newest first."""
        return self.registry.versions(self.model_name(name))

    def approve(
        self, name: str, version: int, *, comment: str | None = None, wait: bool = True
    ) -> ApprovalResult:
        """Approve a version that a deployment run waits for (as ``LAKESTACK_USER`` or the OS
        user), then resume the runs that wait for it."""
        return self.lifecycle.approve(
            name, version, user=self.bundle.user, comment=comment, wait=wait
        )

    def reject(self, name: str, version: int, *, comment: str | None = None) -> ApprovalResult:
        """Reject a version that a deployment run waits for: the runs fail, challenger goes."""
        return self.lifecycle.reject(name, version, user=self.bundle.user, comment=comment)

    def rollback(self, name: str) -> DeployResult:
        """Make the previous champion of ``name`` the champion again."""
        return self.registry.rollback(self.model_name(name))

    def promote(
        self, name: str, version: int | str, to_target: str, to_name: str | None = None
    ) -> ModelVersionInfo:
        """Copy a version into ``to_target``'s registry as a new version of ``to_name`` (default:
        the same registered-model resource of the bundle in that target); the copy starts the
        deployment job linked to it there, like any new version."""
        from lakestack.registry.resources import promoted_name

        name = self.model_name(name)
        self.registry.get_version(name, version)  # a missing source is the first thing to say
        with Workspace.open(self.bundle.file, target=to_target, variables=self._variables) as to:
            dest = to_name or promoted_name(self.bundle, to.bundle, name)
            copy = self.registry.copy_version(name, version, dest, to=to.registry)
            if to.bundle.has_deployment_jobs:
                try:
                    to.lifecycle.trigger(copy.name, copy.version)  # its deployment job, there
                except JobError as exc:
                    self.console.warning(
                        f"{copy.name} version {copy.version} started no deployment run: {exc}"
                    )
            return copy

    def serve(
        self,
        *,
        endpoint: str | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        workers: int = 1,
    ) -> None:
        """Serve the target's model_serving_endpoints (or one) until SIGTERM or SIGINT."""
        from lakestack.serving.server import serve

        serve(
            self.bundle,
            endpoint=endpoint,
            host=host,
            port=port,
            workers=workers,
            variables=self._variables,
        )

    def summary(self) -> dict[str, Any]:
        """The bundle, its resources and what is deployed."""
        b = self.bundle
        last = self.state.last_deployment(b.target)
        deployed = {job.job_key for job in self.state.list_jobs(b.target)}
        return {
            "bundle": {"name": b.name, "target": b.target, "mode": b.mode, "file": str(b.file)},
            "workspace": {"root": str(b.workspace_root), "state": redact_url(b.state_url)},
            "deployment": None
            if last is None
            else {
                "id": last.id,
                "deployed_at": last.deployed_at,
                "deployed_by": last.deployed_by,
                "git_commit": last.git_commit,
                "up_to_date": last.content_hash == b.content_hash,
            },
            "resources": {
                "jobs": {
                    key: {
                        "name": _job_name(key, spec),
                        "tasks": len(spec.tasks),
                        "deployed": key in deployed,
                    }
                    for key, spec in b.resources.jobs.items()
                },
                **{
                    kind: sorted(items)
                    for kind, items in _resources(b).items()
                    if kind != "jobs" and items
                },
            },
        }

    # jobs and runs -----------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        """The jobs deployed to this target."""
        return [
            {
                "job_id": job.job_key,
                "name": job.name,
                "tasks": len(job.definition.get("tasks", [])),
                "schedule": (job.definition.get("schedule") or {}).get("quartz_cron_expression"),
                "updated_at": job.updated_at,
            }
            for job in self.state.list_jobs(self.bundle.target)
        ]

    def run(
        self,
        job_key: str,
        parameters: Mapping[str, str] | None = None,
        *,
        wait: bool = True,
        deploy: bool = True,
    ) -> RunRecord:
        """Run a job (deploying first when the bundle changed); wait for it unless told not to."""
        merge_parameters(job_key, self.bundle.job(job_key), parameters or {})  # fail before writing
        service = self._service()
        if wait:
            service.warm_up()
        deployment = self.state.last_deployment(self.bundle.target)
        if deploy and self.needs_deploy():
            deployment = self.deploy()
            self.console.info(f"Deployed target {self.bundle.target} (deployment {deployment.id})")
        run = service.submit(
            job_key, parameters or {}, deployment_id=deployment.id if deployment else None
        )
        if not wait:
            service.start_background(run, self._execute_argv(run.run_id))
            self.console.info(f"Run {run.run_id} of job {job_key} started in the background")
            return self.state.get_run(run.run_id) or run
        return service.execute(run.run_id)

    def execute_run(self, run_id: int) -> RunRecord:
        """Drive a QUEUED run in this process (the background half of ``run(wait=False)``)."""
        return self._service().execute(run_id)

    def repair(self, run_id: int, *, tasks: Iterable[str] = (), wait: bool = True) -> RunRecord:
        """Re-run the tasks of a finished run that did not succeed (and ``tasks``)."""
        service = self._service()
        run = service.repair(run_id, tasks=tasks)
        if not wait:
            service.start_background(run, self._execute_argv(run_id))
            return run
        return service.execute(run_id)

    def cancel(self, run_id: int) -> RunRecord:
        """Cancel an active run."""
        return self._service().cancel(run_id)

    def list_runs(self, *, job_key: str | None = None, limit: int = 20) -> list[RunRecord]:
        """Runs of this target, newest first."""
        reconcile_runs(self.state)
        return self.state.list_runs(target=self.bundle.target, job_key=job_key, limit=limit)

    def get_run(self, run_id: int) -> dict[str, Any]:
        """A run with every task attempt and the task values."""
        reconcile_runs(self.state, run_ids=[run_id])
        run = self.state.get_run(run_id)
        if run is None:
            raise RunError(f"run {run_id} does not exist; list runs with: lakestack runs list")
        data = run_to_dict(run)
        data["tasks"] = [task_run_to_dict(t) for t in self.state.list_task_runs(run_id)]
        data["task_values"] = self.state.get_task_values(run_id)
        data["child_runs"] = [
            r.run_id for r in self.state.list_runs(limit=1000) if r.parent_run_id == run_id
        ]
        return data

    def logs(
        self, run_id: int, task_key: str | None = None, *, attempt: int | None = None
    ) -> list[tuple[TaskRunRecord, str]]:
        """The output of each attempt of ``task_key`` (default: every task) of a run."""
        details = self.state.list_task_runs(run_id)
        if not details and self.state.get_run(run_id) is None:
            raise RunError(f"run {run_id} does not exist; list runs with: lakestack runs list")
        keys = sorted({t.task_key for t in details})
        if task_key is not None and task_key not in keys:
            raise RunError(f"run {run_id} has no task '{task_key}' (tasks: {', '.join(keys)})")
        selected = [
            t
            for t in details
            if t.log_dir
            and (task_key is None or t.task_key == task_key)
            and (attempt is None or t.attempt == attempt)
        ]
        out = []
        for record in selected:
            path = Path(record.log_dir or "") / "output.log"
            text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
            out.append((record, text))
        return out

    # monitors ----------------------------------------------------------------------------

    def monitors(self) -> list[dict[str, Any]]:
        """The bundle's quality monitors: table, profile, windows, output tables, schedule."""
        from lakestack.monitoring.monitor import MonitorConfig

        out = []
        for key, spec in self.bundle.resources.quality_monitors.items():
            config = MonitorConfig.from_spec(key, spec)
            exists = self.catalog.table_exists(config.profile_table)
            out.append(
                {
                    "monitor": key,
                    "table_name": config.table_name,
                    "profile_type": config.profile_type,
                    "granularities": [g.text for g in config.granularities],
                    "profile_table": config.profile_table,
                    "drift_table": config.drift_table,
                    "refreshed": exists,
                    "schedule": spec.schedule.quartz_cron_expression if spec.schedule else None,
                }
            )
        return out

    def refresh_monitor(self, name: str, *, full: bool = False) -> RefreshResult:
        """Refresh a monitor (by bundle key or table name): its profile and drift tables.

        Only windows whose rows changed since the last refresh are recomputed, unless ``full``.
        """
        from lakestack.monitoring.monitor import find_monitor
        from lakestack.monitoring.refresh import refresh_monitor

        config = find_monitor(self.bundle.resources.quality_monitors, name)
        return refresh_monitor(config, self.catalog, full=full)

    def _launch_refresh(self, key: str) -> None:
        """Refresh a monitor in a detached process; its output goes to ``monitors/<key>.log``."""
        import subprocess
        import sys
        import threading

        log = self.bundle.workspace_root / "monitors" / f"{key}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "lakestack", "monitors", "refresh", key]
        argv += ["-t", self.bundle.target]
        for name, value in self._variables.items():
            argv += ["--var", f"{name}={value}"]
        env = {**os.environ, "LAKESTACK_BUNDLE_ROOT": str(self.bundle.root)}
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                cwd=self.bundle.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # reap it when it ends, so that a long-lived scheduler collects no zombies
        threading.Thread(target=process.wait, daemon=True).start()

    # scheduler ---------------------------------------------------------------------------

    def scheduler(self, *, clock: Callable[[], float] | None = None) -> Scheduler:
        """The target's scheduler: deployed jobs' cron schedules, periodic and file-arrival
        triggers, and the registry: deployment runs of new model versions however they were
        registered, and paused runs whose version got a decision through MLflow."""
        import time

        from lakestack.jobs.scheduler import Fired, Scheduler, Source

        service = self._service()
        jobs = {
            record.job_key: JobSpec.model_validate(record.definition)
            for record in self.state.list_jobs(self.bundle.target)
        }

        def start_run(job_key: str, parameters: Mapping[str, str], trigger: str) -> RunRecord:
            run = service.submit(job_key, parameters, trigger_type=trigger)
            service.start_background(run, self._execute_argv(run.run_id))
            return run

        sources: list[Source] = []
        if self.bundle.has_deployment_jobs:
            lifecycle = self._lifecycle_of(service)

            def model_versions(_now: float) -> list[Fired]:
                fired = [
                    Fired(r.job_key, r.trigger_type, "model-version", r.run_id, "new version")
                    for r in lifecycle.trigger()
                ]
                for run in lifecycle.resume_decided():
                    fired.append(Fired(run.job_key, "APPROVAL", "decision", run.run_id, run.state))
                return fired

            sources.append(model_versions)
        monitors = self.bundle.resources.quality_monitors
        if any(spec.schedule is not None for spec in monitors.values()):
            from lakestack.monitoring.schedule import MonitorSchedules

            sources.append(
                MonitorSchedules(
                    monitors,
                    self.state,
                    self.bundle.target,
                    self._launch_refresh,
                    console=self.console,
                    started=(clock or time.time)(),
                )
            )
        return Scheduler(
            self.state,
            self.bundle.target,
            jobs,
            start_run,
            console=self.console,
            sources=sources,
            clock=clock or time.time,
            catalog=self.catalog,
            base_dir=self.bundle.root,
        )

    # internals ---------------------------------------------------------------------------

    def _service(self) -> JobService:
        b = self.bundle
        settings = b.settings
        smtp = None
        if settings.smtp is not None:
            s = settings.smtp
            smtp = SmtpConfig(
                host=s.host,
                port=s.port,
                sender=s.sender or "lakestack@localhost",
                username=s.username,
                password=os.environ.get(s.password_env) if s.password_env else None,
                starttls=s.starttls,
                ssl=s.ssl,
            )
        destinations = {
            name: dest.model_dump(mode="json")
            for name, dest in settings.notification_destinations.items()
        }
        options = RunOptions(
            target=b.target,
            bundle_root=b.root,
            workspace_root=b.workspace_root,
            user=b.user,
            max_parallel=settings.compute.max_parallel_tasks or os.cpu_count() or 1,
            preload=preload_modules(b.resources.jobs.values(), b.root, settings.preload),
            notify=NotifyConfig(destinations=destinations, smtp=smtp),
            task_env=b.task_environment,
        )
        service = JobService(self.state, self.console, options, self._load_deployed_job)
        if b.has_deployment_jobs:  # deployment runs and their states on model versions
            self._lifecycle = self._lifecycle_of(service)
        return service

    def _lifecycle_of(self, service: JobService) -> ModelLifecycle:
        from lakestack.lifecycle.service import ModelLifecycle

        def start_background(run: RunRecord) -> RunRecord:
            service.start_background(run, self._execute_argv(run.run_id))
            return self.state.get_run(run.run_id) or run

        return ModelLifecycle(
            self.bundle,
            self.state,
            service,
            lambda: self.registry,
            self.console,
            start_background=start_background,
        )

    @property
    def lifecycle(self) -> ModelLifecycle:
        """Approvals and deployment runs of this target (with a job service of its own)."""
        service = self._service()
        if self._lifecycle is None or self._lifecycle.jobs is not service:
            self._lifecycle = self._lifecycle_of(service)
        return self._lifecycle

    def _load_deployed_job(self, job_id: str) -> tuple[str, str, JobSpec]:
        record = self.state.get_job(self.bundle.target, job_id)
        if record is None:
            known = ", ".join(j.job_key for j in self.state.list_jobs(self.bundle.target)) or "none"
            raise JobError(
                f"job '{job_id}' is not deployed to target {self.bundle.target} "
                f"(deployed: {known}); "
                "job ids are job keys: use ${resources.jobs.<key>.id}"
            )
        return record.job_key, record.name, JobSpec.model_validate(record.definition)

    def _execute_argv(self, run_id: int) -> list[str]:
        argv = ["runs", "execute", str(run_id), "-t", self.bundle.target]
        for name, value in self._variables.items():
            argv += ["--var", f"{name}={value}"]
        return argv


def _job_name(key: str, spec: JobSpec) -> str:
    return spec.name or key


def _resources(bundle: Bundle) -> dict[str, Any]:
    data = bundle.resources.model_dump(exclude_none=True)
    return {kind: items for kind, items in data.items() if isinstance(items, dict)}


def run_to_dict(run: RunRecord) -> dict[str, Any]:
    """A run as JSON-able data."""
    return {
        "run_id": run.run_id,
        "job_id": run.job_key,
        "job_name": run.job_name,
        "target": run.target,
        "state": run.state,
        "state_message": run.state_message,
        "trigger_type": run.trigger_type,
        "parameters": run.parameters,
        "created_by": run.created_by,
        "created_at": run.created_at,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "parent_run_id": run.parent_run_id,
        "parent_task_key": run.parent_task_key,
        "repair_count": run.repair_count,
        "orchestrator_pid": run.owner_pid,
    }


def task_run_to_dict(task: TaskRunRecord) -> dict[str, Any]:
    """A task attempt as JSON-able data."""
    return {
        "task_key": task.task_key,
        "iteration": task.iteration,
        "attempt": task.attempt,
        "repair_index": task.repair_index,
        "state": task.state,
        "outcome": task.outcome,
        "start_time": task.start_time,
        "end_time": task.end_time,
        "exit_code": task.exit_code,
        "error": task.error,
        "log_dir": task.log_dir,
        "child_run_id": task.child_run_id,
        "details": task.details,
    }
