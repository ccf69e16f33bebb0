"""The ``lakestack`` command line: thin commands over ``lakestack.workspace.Workspace``.

Each command reads its options, calls one façade method and turns the result into output and an
exit code. ``command`` is the one place where lakestack errors become ``Error: ...`` and exit 1
(``--debug`` shows the traceback). Nothing heavy is imported at module level, so
``lakestack --help`` is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from lakestack.console import Console
    from lakestack.state.models import TaskRunRecord

__all__ = ["cli", "main"]

from lakestack.cli.common import bundle_options, command, open_workspace, parse_pairs
from lakestack.cli.lake import sql, tables
from lakestack.cli.models import models
from lakestack.cli.monitors import monitors
from lakestack.cli.scheduler import scheduler
from lakestack.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="lakestack")
def cli(debug: bool) -> None:
    """lakestack: the Databricks MLOps workflow on open-source parts."""


cli.add_command(tables)
cli.add_command(sql)
cli.add_command(models)
cli.add_command(scheduler)
cli.add_command(serve)
cli.add_command(monitors)


@cli.group()
def bundle() -> None:
    """Validate, deploy, run and destroy the bundle's resources."""


@bundle.command("validate")
@bundle_options
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@command
def bundle_validate(
    console: Console, target: str | None, variables: tuple[str, ...], output: str, strict: bool
) -> None:
    """Load and check the bundle for a target."""
    with open_workspace(console, target, variables, strict=strict) as ws:
        result = ws.validate()
        if output == "json":
            console.result({**result, "config": ws.bundle.to_dict()})
        else:
            console.result(
                {
                    "Name": result["name"],
                    "Target": result["target"],
                    "File": result["file"],
                    "Workspace": result["workspace_root"],
                },
                title="Validation OK",
            )


@bundle.command("deploy")
@bundle_options
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@command
def bundle_deploy(
    console: Console, target: str | None, variables: tuple[str, ...], output: str, strict: bool
) -> None:
    """Register the target's jobs in the workspace."""
    with open_workspace(console, target, variables, strict=strict) as ws:
        deployment = ws.deploy()
        console.info(
            f"Deployed {len(deployment.job_keys)} jobs to target {deployment.target} "
            f"(deployment {deployment.id})"
        )
        console.result(
            {
                "deployment_id": deployment.id,
                "target": deployment.target,
                "jobs": list(deployment.job_keys),
                "content_hash": deployment.content_hash,
            }
        )


@bundle.command("run")
@click.argument("job_key")
@bundle_options
@click.option(
    "--params",
    "params",
    multiple=True,
    metavar="K=V[,K=V]",
    help="Job parameters, e.g. --params catalog=dev,limit=10.",
)
@click.option("--no-wait", is_flag=True, help="Start the run in the background and return.")
@click.option("--no-deploy", is_flag=True, help="Run what is deployed, even if the bundle changed.")
@command
def bundle_run(
    console: Console,
    job_key: str,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
    params: tuple[str, ...],
    no_wait: bool,
    no_deploy: bool,
) -> int:
    """Run a job; exit 0 only if the run succeeded."""
    from lakestack.workspace import run_to_dict

    parameters = parse_pairs(params, "--params", commas=True)
    with open_workspace(console, target, variables) as ws:
        run = ws.run(job_key, parameters, wait=not no_wait, deploy=not no_deploy)
        console.result(
            ws.get_run(run.run_id)
            if output == "json"
            else run_to_dict(run)
            if no_wait
            else f"Logs: lakestack runs logs {run.run_id}"
        )
        return 0 if no_wait or run.state == "SUCCESS" else 1


@bundle.command("destroy")
@bundle_options
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@command
def bundle_destroy(
    console: Console,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
    auto_approve: bool,
) -> None:
    """Remove the target's deployed resources (run history is kept)."""
    with open_workspace(console, target, variables) as ws:
        if not auto_approve and sys.stdin.isatty():
            schemas = [s.full_name for s in ws.bundle.resources.schemas.values()]
            tables = f" and drop schemas {', '.join(schemas)} with their tables" if schemas else ""
            click.confirm(
                f"Destroy everything deployed to target {ws.bundle.target}{tables}?", abort=True
            )
        removed = ws.destroy()
        console.info(
            f"Destroyed target {ws.bundle.target}: removed jobs "
            f"{', '.join(removed['jobs']) or 'none'}"
            + "".join(
                f"; dropped {kind} {', '.join(names)}"
                for kind in ("volumes", "schemas")
                if (names := removed[kind])
            )
        )
        console.result(
            {
                "target": ws.bundle.target,
                "removed_jobs": removed["jobs"],
                "dropped_schemas": removed["schemas"],
                "dropped_volumes": removed["volumes"],
            }
        )


@bundle.command("summary")
@bundle_options
@command
def bundle_summary(
    console: Console, target: str | None, variables: tuple[str, ...], output: str
) -> None:
    """Show the bundle's resources and what is deployed."""
    with open_workspace(console, target, variables) as ws:
        summary = ws.summary()
        if output == "json":
            console.result(summary)
            return
        console.result({**summary["bundle"], **summary["workspace"]}, title="Bundle")
        jobs = [{"job": k, **v} for k, v in summary["resources"]["jobs"].items()]
        console.table(jobs, columns=["job", "name", "tasks", "deployed"], title="Jobs")
        for kind, keys in summary["resources"].items():
            if kind != "jobs":
                console.info(f"{kind}: {', '.join(keys)}")


@cli.group()
def runs() -> None:
    """Inspect, repair and cancel job runs."""


@runs.command("list")
@bundle_options
@click.option("--job", "job_key", default=None, help="Only runs of this job.")
@click.option("--limit", default=20, show_default=True, help="How many runs.")
@command
def runs_list(
    console: Console,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
    job_key: str | None,
    limit: int,
) -> None:
    """List runs, newest first."""
    from lakestack.workspace import run_to_dict

    with open_workspace(console, target, variables) as ws:
        rows = [run_to_dict(r) for r in ws.list_runs(job_key=job_key, limit=limit)]
        if output == "json":
            console.result(rows)
        else:
            shown = [
                {**r, "started": _when(r["start_time"]), "duration": _duration(r)} for r in rows
            ]
            console.table(
                shown,
                columns=[
                    "run_id",
                    "job_id",
                    "state",
                    "trigger_type",
                    "started",
                    "duration",
                    "state_message",
                ],
                title="Runs",
            )


@runs.command("get")
@click.argument("run_id", type=int)
@bundle_options
@command
def runs_get(
    console: Console, run_id: int, target: str | None, variables: tuple[str, ...], output: str
) -> None:
    """Show a run with every task attempt."""
    with open_workspace(console, target, variables) as ws:
        data = ws.get_run(run_id)
        if output == "json":
            console.result(data)
            return
        head = {
            k: data[k]
            for k in (
                "run_id",
                "job_id",
                "state",
                "state_message",
                "trigger_type",
                "parameters",
                "repair_count",
            )
        }
        head["started"], head["duration"] = _when(data["start_time"]), _duration(data)
        if data["parent_run_id"]:
            head["parent_run_id"] = data["parent_run_id"]
        console.result(head, title=f"Run {run_id}")
        tasks = [
            {
                **t,
                "task": t["task_key"]
                + (f"[{t['iteration']}]" if t["iteration"] is not None else ""),
                "duration": _duration(t),
            }
            for t in data["tasks"]
        ]
        console.table(
            tasks,
            columns=["task", "attempt", "state", "outcome", "duration", "error"],
            title="Tasks",
        )
        if data["task_values"]:
            console.result(data["task_values"], title="Task values")


@runs.command("logs")
@click.argument("run_id", type=int)
@bundle_options
@click.option("--task", "task_key", default=None, help="Only this task.")
@click.option("--attempt", type=int, default=None, help="Only this attempt (0 is the first).")
@command
def runs_logs(
    console: Console,
    run_id: int,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
    task_key: str | None,
    attempt: int | None,
) -> None:
    """Show the output of a run's tasks."""
    with open_workspace(console, target, variables) as ws:
        logs = ws.logs(run_id, task_key, attempt=attempt)
        if output == "json":
            console.result(
                [
                    {
                        "task_key": r.task_key,
                        "iteration": r.iteration,
                        "attempt": r.attempt,
                        "log_dir": r.log_dir,
                        "output": text,
                    }
                    for r, text in logs
                ]
            )
            return
        for record, text in logs:
            name = record.task_key + (
                f"[{record.iteration}]" if record.iteration is not None else ""
            )
            path = Path(record.log_dir or "") / "output.log"
            where = f" {path}" if path.exists() else ""
            console.info(f"==> {name} attempt {record.attempt} ({record.state}){where}")
            console.result(text.rstrip("\n") or _no_output(record))


def _no_output(record: TaskRunRecord) -> str:
    """What to show for an attempt that printed nothing: a note for tasks run by lakestack."""
    details = record.details or {}
    if details.get("child_run_id") is not None:
        child = details["child_run_id"]
        return f"(ran job as run {child}; its output: lakestack runs logs {child})"
    if "iterations" in details:
        return (
            f"({details.get('succeeded', 0)} of {details['iterations']} iterations succeeded; "
            f"each is listed as {record.task_key}[i])"
        )
    if record.outcome is not None:
        return f"(condition evaluated to {record.outcome})"
    return "(no output)"


@runs.command("repair")
@click.argument("run_id", type=int)
@bundle_options
@click.option("--task", "tasks", multiple=True, help="Also re-run this task (repeatable).")
@click.option("--no-wait", is_flag=True, help="Repair in the background and return.")
@command
def runs_repair(
    console: Console,
    run_id: int,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
    tasks: tuple[str, ...],
    no_wait: bool,
) -> int:
    """Re-run the failed, canceled and skipped tasks of a finished run."""
    with open_workspace(console, target, variables) as ws:
        run = ws.repair(run_id, tasks=tasks, wait=not no_wait)
        if output == "json":
            console.result(ws.get_run(run_id))
        elif not no_wait:
            console.result(f"Logs: lakestack runs logs {run_id}")
        return 0 if no_wait or run.state == "SUCCESS" else 1


@runs.command("cancel")
@click.argument("run_id", type=int)
@bundle_options
@command
def runs_cancel(
    console: Console, run_id: int, target: str | None, variables: tuple[str, ...], output: str
) -> None:
    """Cancel an active run."""
    from lakestack.workspace import run_to_dict

    with open_workspace(console, target, variables) as ws:
        run = ws.cancel(run_id)
        console.info(f"Cancel requested for run {run_id}")
        console.result(run_to_dict(run))


@runs.command("execute", hidden=True)
@click.argument("run_id", type=int)
@bundle_options
@command
def runs_execute(
    console: Console, run_id: int, target: str | None, variables: tuple[str, ...], output: str
) -> int:
    """Drive a queued run in this process (used by --no-wait)."""
    with open_workspace(console, target, variables) as ws:
        run = ws.execute_run(run_id)
        return 0 if run.state == "SUCCESS" else 1


@cli.group()
def jobs() -> None:
    """The jobs deployed to a target."""


@jobs.command("list")
@bundle_options
@command
def jobs_list(
    console: Console, target: str | None, variables: tuple[str, ...], output: str
) -> None:
    """List the deployed jobs."""
    with open_workspace(console, target, variables) as ws:
        rows = ws.jobs()
        if output == "json":
            console.result(rows)
        else:
            console.table(rows, columns=["job_id", "name", "tasks", "schedule"], title="Jobs")


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _duration(row: dict[str, Any]) -> str:
    start, end = row.get("start_time"), row.get("end_time")
    if not start or not end:
        return ""
    return f"{(end - start) / 1000:.2f}s"


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="lakestack")
